"""Deep Layer Aggregation (DLA) backbone, with the module names of the official code.

Paper: Yu, Wang, Shelhamer, Darrell, "Deep Layer Aggregation", CVPR 2018,
https://arxiv.org/abs/1707.06484. Official code (consulted for the structure and the key
names, not copied): https://github.com/ucbdrive/dla and its copy in
https://github.com/SysCV/dla-afa (``afa/model/backbones/dla.py``), the backbone of AFA.

Why a backbone of our own: timm's DLA would be the natural choice, but timm needs torchvision,
whose PyPI wheel fails to import next to the CPU torch this project targets; mmseg and
mmpretrain ship no DLA. The module names here follow the official ones (``base_layer``,
``level0`` ... ``level5``, ``Tree.tree1``, ``tree2``, ``root``, ``project``, ``Root.conv/bn``,
blocks' ``conv1/bn1``...), so an official state dict maps onto this one by dropping its
prefix and the classifier (``fc``).

Differences: norm layers come from ``norm_cfg`` (BN by default, as in the official backbone, so
SyncBN can be switched on from a config); the classifier (``avgpool``/``fc``) is dropped; the
outputs are the levels listed in ``out_indices``; the ``project`` of trees deeper than one level,
computed but never used by the official code (timm drops it), is kept so that official
checkpoints load strictly, but frozen; the max-pools of ``Tree.downsample`` round up
(``ceil_mode=True``), which changes nothing on sizes divisible by 32 (the only ones the
official model accepts: it resizes its inputs to multiples of 64/128) and makes odd sizes
work.

Shape shorthand: N batch, H x W input size; level ``i`` has stride ``2 ** i`` (level 0 and 1:
1 and 2) and ``channels[i]`` channels.
"""
from typing import List, Optional, Sequence, Tuple, Type, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmseg.registry import MODELS

__all__ = ['DLA']


def _norm(norm_cfg: dict, channels: int) -> nn.Module:
    """The norm layer of ``norm_cfg`` for ``channels`` channels."""
    return build_norm_layer(norm_cfg, channels)[1]


class BasicBlock(nn.Module):
    """Two 3x3 conv-norm layers with a residual (``residual`` defaults to the input).

    Args:
        inplanes (int): Input channels.
        planes (int): Output channels.
        stride (int): Stride of the first conv. Defaults to 1.
        dilation (int): Dilation of both convs. Defaults to 1.
        norm_cfg (dict): Norm config. Defaults to ``dict(type='BN')``.
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=dilation,
                               dilation=dilation, bias=False)
        self.bn1 = _norm(norm_cfg, planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn2 = _norm(norm_cfg, planes)

    def forward(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Block output.

        Args:
            x (Tensor): Input of shape (N, inplanes, H, W).
            residual (Tensor, optional): Residual of shape (N, planes, H/s, W/s).
                Defaults to None (= ``x``).

        Returns:
            Tensor: Output of shape (N, planes, H/s, W/s), s = stride.
        """
        residual = x if residual is None else residual
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + residual)


class Bottleneck(nn.Module):
    """1x1 - 3x3 - 1x1 bottleneck (``planes // 2`` inner channels; ``cardinality`` groups).

    With ``cardinality > 1`` this is DLA's ``BottleneckX``, whose inner width is
    ``planes * cardinality // 32``.

    Args:
        inplanes (int): Input channels.
        planes (int): Output channels.
        stride (int): Stride of the 3x3 conv. Defaults to 1.
        dilation (int): Dilation of the 3x3 conv. Defaults to 1.
        cardinality (int): Groups of the 3x3 conv; 1 is ``Bottleneck``. Defaults to 1.
        norm_cfg (dict): Norm config. Defaults to ``dict(type='BN')``.
    """

    expansion = 2

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 cardinality: int = 1,
                 norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        inner = planes // self.expansion if cardinality == 1 else planes * cardinality // 32
        self.conv1 = nn.Conv2d(inplanes, inner, 1, bias=False)
        self.bn1 = _norm(norm_cfg, inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride=stride, padding=dilation,
                               dilation=dilation, groups=cardinality, bias=False)
        self.bn2 = _norm(norm_cfg, inner)
        self.conv3 = nn.Conv2d(inner, planes, 1, bias=False)
        self.bn3 = _norm(norm_cfg, planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Block output.

        Args:
            x (Tensor): Input of shape (N, inplanes, H, W).
            residual (Tensor, optional): Residual of shape (N, planes, H/s, W/s).
                Defaults to None (= ``x``).

        Returns:
            Tensor: Output of shape (N, planes, H/s, W/s), s = stride.
        """
        residual = x if residual is None else residual
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + residual)


class Root(nn.Module):
    """Aggregation node: concatenation, conv-norm, optional residual from the first child.

    Args:
        in_channels (int): Channels of the concatenated children.
        out_channels (int): Output channels.
        kernel_size (int): Kernel of the conv (1 in every released DLA).
        residual (bool): Add the first child before the ReLU.
        norm_cfg (dict): Norm config.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, residual: bool,
                 norm_cfg: dict) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size,
                              padding=(kernel_size - 1) // 2, bias=False)
        self.bn = _norm(norm_cfg, out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.residual = residual

    def forward(self, *children: torch.Tensor) -> torch.Tensor:
        """Aggregate the children, each of shape (N, C_k, H, W), into (N, out_channels, H, W)."""
        x = self.bn(self.conv(torch.cat(children, dim=1)))
        if self.residual:
            x = x + children[0]
        return self.relu(x)


class Tree(nn.Module):
    """Hierarchical deep aggregation tree of depth ``levels`` (official ``Tree``).

    Args:
        levels (int): Depth of the tree (1: two blocks and a root).
        block (type): ``BasicBlock`` or ``Bottleneck``.
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first block (and of the max-pooled ``bottom``).
            Defaults to 1.
        level_root (bool): Feed the downsampled input to the root. Defaults to False.
        root_dim (int): Channels entering the root; 0 means ``2 * out_channels``.
            Defaults to 0.
        root_kernel_size (int): Root conv kernel. Defaults to 1.
        dilation (int): Dilation of the blocks. Defaults to 1.
        root_residual (bool): Residual roots. Defaults to False.
        block_cfg (dict, optional): Extra block arguments (``cardinality``). Defaults to None.
        norm_cfg (dict): Norm config. Defaults to ``dict(type='BN')``.
    """

    def __init__(self, levels: int, block: Type[nn.Module], in_channels: int,
                 out_channels: int, stride: int = 1, level_root: bool = False,
                 root_dim: int = 0, root_kernel_size: int = 1, dilation: int = 1,
                 root_residual: bool = False, block_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        block_cfg = dict(block_cfg or {}, norm_cfg=norm_cfg)
        if root_dim == 0:
            root_dim = 2 * out_channels
        if level_root:
            root_dim += in_channels
        sub = dict(root_kernel_size=root_kernel_size, dilation=dilation,
                   root_residual=root_residual, block_cfg=block_cfg, norm_cfg=norm_cfg)
        if levels == 1:
            self.tree1 = block(in_channels, out_channels, stride, dilation, **block_cfg)
            self.tree2 = block(out_channels, out_channels, 1, dilation, **block_cfg)
            self.root = Root(root_dim, out_channels, root_kernel_size, root_residual, norm_cfg)
        else:
            self.tree1 = Tree(levels - 1, block, in_channels, out_channels, stride,
                              root_dim=0, **sub)
            self.tree2 = Tree(levels - 1, block, out_channels, out_channels,
                              root_dim=root_dim + out_channels, **sub)
        self.level_root = level_root
        self.levels = levels
        # ceil_mode: the same as the official floor on even sizes, and on odd sizes it matches
        # the strided convs of the blocks (the official model needs multiples of 32)
        self.downsample = (nn.MaxPool2d(stride, stride=stride, ceil_mode=True)
                           if stride > 1 else None)
        self.project = None
        if in_channels != out_channels:
            self.project = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                         _norm(norm_cfg, out_channels))
            if levels > 1:
                # computed but never used (the nested ``tree1`` recomputes its residual), as
                # in the official code, whose checkpoints hold it; frozen so that DDP does not
                # wait for its gradients
                self.project.requires_grad_(False)

    def forward(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None,
                children: Optional[List[torch.Tensor]] = None) -> torch.Tensor:
        """Tree output.

        Args:
            x (Tensor): Input of shape (N, in_channels, H, W).
            residual (Tensor, optional): Unused (the residual is recomputed here); kept for
                the call signature shared with the blocks. Defaults to None.
            children (list[Tensor], optional): Extra root inputs of the enclosing tree, each
                of shape (N, C_k, H/s, W/s). Defaults to None.

        Returns:
            Tensor: Output of shape (N, out_channels, H/s, W/s), s = stride.
        """
        children = [] if children is None else children
        bottom = self.downsample(x) if self.downsample is not None else x
        residual = self.project(bottom) if self.project is not None else bottom
        if self.level_root:
            children.append(bottom)
        x1 = self.tree1(x, residual)
        if self.levels == 1:
            return self.root(self.tree2(x1), x1, *children)
        children.append(x1)
        return self.tree2(x1, children=children)


@MODELS.register_module()
class DLA(BaseModule):
    """Deep Layer Aggregation backbone (DLA-34, -102, -X-102, -169, ...).

    ``arch`` picks a released architecture; custom ones pass ``levels``, ``channels``,
    ``block``, ``residual_root`` and ``cardinality`` with ``arch=None``.

    ====================  ====================  ===========================  ==========
    arch                  levels                channels                     block
    ====================  ====================  ===========================  ==========
    ``dla34``             1, 1, 1, 2, 2, 1      16, 32, 64, 128, 256, 512    basic
    ``dla60``             1, 1, 1, 2, 3, 1      16, 32, 128, 256, 512, 1024  bottleneck
    ``dla102``            1, 1, 1, 3, 4, 1      16, 32, 128, 256, 512, 1024  bottleneck
    ``dla102x``           1, 1, 1, 3, 4, 1      16, 32, 128, 256, 512, 1024  X, 32 groups
    ``dla169``            1, 1, 2, 3, 5, 1      16, 32, 128, 256, 512, 1024  bottleneck
    ====================  ====================  ===========================  ==========

    (Residual roots for all but ``dla34``.)

    Args:
        arch (str, optional): One of the table. Defaults to ``'dla34'``.
        levels (Sequence[int], optional): Depth of the 6 levels (custom arch).
            Defaults to None.
        channels (Sequence[int], optional): Channels of the 6 levels (custom arch).
            Defaults to None.
        block (str): ``'basic'`` or ``'bottleneck'`` (custom arch). Defaults to ``'basic'``.
        residual_root (bool): Residual roots (custom arch). Defaults to False.
        cardinality (int): Groups of the bottleneck 3x3 convs; > 1 makes ``BottleneckX``
            (custom arch). Defaults to 1.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Levels returned, in [0, 5]. The AFA model uses
            (1, 2, 3, 4, 5) (strides 2 to 32). Defaults to (1, 2, 3, 4, 5).
        norm_cfg (dict): Norm config. Defaults to ``dict(type='BN')``.
        norm_eval (bool): Keep the norm layers in eval mode while training.
            Defaults to False.
        init_cfg (dict | list[dict], optional): Initialisation config (e.g. a ``Pretrained``
            checkpoint converted from the official weights). Defaults to Kaiming on convs and
            constant 1/0 on BN, as the official ``init_weights``.
    """

    arch_settings = {
        'dla34': ((1, 1, 1, 2, 2, 1), (16, 32, 64, 128, 256, 512), 'basic', False, 1),
        'dla60': ((1, 1, 1, 2, 3, 1), (16, 32, 128, 256, 512, 1024), 'bottleneck', False, 1),
        'dla102': ((1, 1, 1, 3, 4, 1), (16, 32, 128, 256, 512, 1024), 'bottleneck', True, 1),
        'dla102x': ((1, 1, 1, 3, 4, 1), (16, 32, 128, 256, 512, 1024), 'bottleneck', True,
                    32),
        'dla169': ((1, 1, 2, 3, 5, 1), (16, 32, 128, 256, 512, 1024), 'bottleneck', True, 1),
    }

    def __init__(self,
                 arch: Optional[str] = 'dla34',
                 levels: Optional[Sequence[int]] = None,
                 channels: Optional[Sequence[int]] = None,
                 block: str = 'basic',
                 residual_root: bool = False,
                 cardinality: int = 1,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (1, 2, 3, 4, 5),
                 norm_cfg: dict = dict(type='BN'),
                 norm_eval: bool = False,
                 init_cfg: Union[dict, List[dict], None] = (
                     dict(type='Kaiming', layer='Conv2d', mode='fan_out'),
                     dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']))
                 ) -> None:
        super().__init__(list(init_cfg) if isinstance(init_cfg, tuple) else init_cfg)
        name = type(self).__name__
        if arch is not None:
            if arch not in self.arch_settings:
                raise ValueError(f'{name}: arch must be one of {sorted(self.arch_settings)} '
                                 f'or None, got {arch!r}')
            levels, channels, block, residual_root, cardinality = self.arch_settings[arch]
        if levels is None or channels is None or len(levels) != 6 or len(channels) != 6:
            raise ValueError(f'{name}: levels and channels must list 6 values each with '
                             f'arch=None, got {levels!r} and {channels!r}')
        if block not in ('basic', 'bottleneck'):
            raise ValueError(f"{name}: block must be 'basic' or 'bottleneck', got {block!r}")
        if not out_indices or not all(0 <= i <= 5 for i in out_indices):
            raise ValueError(f'{name}: out_indices must be a non-empty sequence of levels in '
                             f'[0, 5], got {out_indices!r}')
        self.channels = list(channels)
        self.out_indices = tuple(out_indices)
        self.norm_eval = norm_eval
        block_cls = BasicBlock if block == 'basic' else Bottleneck
        block_cfg = {} if block == 'basic' else dict(cardinality=cardinality)
        self.base_layer = nn.Sequential(
            nn.Conv2d(in_channels, channels[0], 7, padding=3, bias=False),
            _norm(norm_cfg, channels[0]), nn.ReLU(inplace=True))
        self.level0 = self._conv_level(channels[0], channels[0], levels[0], 1, norm_cfg)
        self.level1 = self._conv_level(channels[0], channels[1], levels[1], 2, norm_cfg)
        for i in range(2, 6):
            setattr(self, f'level{i}',
                    Tree(levels[i], block_cls, channels[i - 1], channels[i], 2,
                         level_root=i > 2, root_residual=residual_root,
                         block_cfg=block_cfg, norm_cfg=norm_cfg))

    @staticmethod
    def _conv_level(inplanes: int, planes: int, convs: int, stride: int,
                    norm_cfg: dict) -> nn.Sequential:
        """``convs`` x (3x3 conv, norm, ReLU), the first with ``stride``."""
        modules: List[nn.Module] = []
        for i in range(convs):
            modules += [nn.Conv2d(inplanes, planes, 3, stride=stride if i == 0 else 1,
                                  padding=1, bias=False),
                        _norm(norm_cfg, planes), nn.ReLU(inplace=True)]
            inplanes = planes
        return nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Multi-level features.

        Args:
            x (Tensor): Images of shape (N, in_channels, H, W).

        Returns:
            tuple[Tensor]: For each ``i`` in ``out_indices``, level ``i`` of shape
            (N, channels[i], ~H / 2**i, ~W / 2**i) (sizes rounded as the strided convs and
            max-pools round them).
        """
        outs = []
        x = self.base_layer(x)
        for i in range(6):
            x = getattr(self, f'level{i}')(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'DLA':
        """Set the training mode, keeping the norm layers in eval mode if ``norm_eval``."""
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self
