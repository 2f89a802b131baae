"""Multi-scale channel attention (MS-CAM) and the attentional feature fusions AFF and iAFF.

Paper: Dai, Gieseke, Oehmcke, Wu, Barnard, "Attentional Feature Fusion", WACV 2021,
https://arxiv.org/abs/2009.14082. Official code (MXNet, consulted, not copied):
https://github.com/YimianDai/open-aff (``model/fusion.py``: ``ASKCFuse`` = AFF,
``ResGlobLocaforGlobLocaChaFuse`` = iAFF); community PyTorch port in its ``aff_pytorch/``.

Shape shorthand: N batch, C channels, H x W spatial size, r channel reduction.

Differences from the official code:

- AFF: the official ``ASKCFuse`` multiplies both terms by 2 (``2 X M + 2 Y (1 - M)``, so that
  the total weight equals that of ``X + Y``); the paper writes the formula without it. Here
  the factor is the argument ``scale`` of :class:`AFF`, default 2.0 as in the official code;
  ``scale=1.0`` gives the paper's formula.
- iAFF: the second stage uses its own global branch (``att2``), as the official MXNet code
  does. The community PyTorch port reuses the first stage's global branch (``global_att``) in
  the second stage (open-aff issue #31); weights trained with the port are therefore not
  exactly reproduced here.
- Norm and activation are ``norm_cfg``/``act_cfg`` of :class:`~mmcv.cnn.ConvModule` (BN and
  ReLU by default, as in the paper); the 1x1 convs keep their bias, as in the official code.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule

from ..utils.checks import check_int, is_int

__all__ = ['AFF', 'IAFF', 'MSCAM']


def _check_channels(owner: str, channels: int, reduction: int) -> None:
    """Raise a ValueError unless ``channels`` is a positive multiple of ``reduction``."""
    check_int(owner, 'channels', channels)
    if not is_int(reduction, 1) or channels % reduction != 0:
        raise ValueError(f'{owner}: reduction must be a positive divisor of channels '
                         f'({channels}), got {reduction!r}')


class MSCAM(nn.Module):
    """Multi-scale channel attention module: ``M(X) = sigmoid(L(X) + G(X))``.

    ``L`` (local, per pixel) and ``G`` (global, on the average-pooled (N, C, 1, 1) feature) are
    both ``1x1 conv (C -> C/r) - norm - act - 1x1 conv (C/r -> C) - norm``. :meth:`forward`
    returns ``X * M(X)`` (MS-CAM of the paper), :meth:`attention` returns ``M(X)``, the
    weights AFF and iAFF use. The global branch normalises (N, C/r, 1, 1) tensors: training
    with ``BN`` needs a batch of at least 2 per process (or ``SyncBN``).

    Args:
        channels (int): Channels C of the input and of the attention.
        reduction (int): Reduction r of the hidden layer; must divide ``channels``. The paper
            uses 4 (16 in the ImageNet bottleneck blocks of the official code). Defaults to 4.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Hidden activation. Defaults to ``dict(type='ReLU')``.
    """

    def __init__(self,
                 channels: int,
                 reduction: int = 4,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU')) -> None:
        super().__init__()
        _check_channels('MSCAM', channels, reduction)
        self.channels = channels
        self.reduction = reduction
        hidden = channels // reduction

        def branch() -> nn.Sequential:
            return nn.Sequential(
                ConvModule(channels, hidden, 1, bias=True, conv_cfg=conv_cfg,
                           norm_cfg=norm_cfg, act_cfg=act_cfg),
                ConvModule(hidden, channels, 1, bias=True, conv_cfg=conv_cfg,
                           norm_cfg=norm_cfg, act_cfg=None))

        self.local_att = branch()
        self.global_att = branch()

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """Attention weights ``M(X)``.

        Args:
            x (Tensor): Features of shape (N, C, H, W).

        Returns:
            Tensor: Sigmoid weights of shape (N, C, H, W).
        """
        # (N, C, H, W) + (N, C, 1, 1), broadcast over the pixels
        return (self.local_att(x) + self.global_att(F.adaptive_avg_pool2d(x, 1))).sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """MS-CAM of ``x``: ``X * M(X)``.

        Args:
            x (Tensor): Features of shape (N, C, H, W).

        Returns:
            Tensor: Re-weighted features of shape (N, C, H, W).
        """
        return x * self.attention(x)


class AFF(nn.Module):
    """Attentional feature fusion: ``Z = scale * (X * M(X + Y) + Y * (1 - M(X + Y)))``.

    Args:
        channels (int): Channels C of both inputs.
        reduction (int): Reduction r of the MS-CAM. Defaults to 4.
        scale (float): Factor on both terms. The official code uses 2 (the weights then sum
            to 2, like those of ``X + Y``; BN after the fusion absorbs it); the paper's
            formula is ``scale=1``. Defaults to 2.0.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Hidden activation of the MS-CAM. Defaults to ``dict(type='ReLU')``.
    """

    def __init__(self,
                 channels: int,
                 reduction: int = 4,
                 scale: float = 2.0,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU')) -> None:
        super().__init__()
        _check_channels('AFF', channels, reduction)
        self.scale = float(scale)
        self.att = MSCAM(channels, reduction, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                         act_cfg=act_cfg)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Fuse ``x`` and ``y``.

        Args:
            x (Tensor): First input X of shape (N, C, H, W); weighted by ``M``.
            y (Tensor): Second input Y of shape (N, C, H, W); weighted by ``1 - M``.

        Returns:
            Tensor: Fused features of shape (N, C, H, W).
        """
        weight = self.att.attention(x + y)
        return self.scale * (x * weight + y * (1 - weight))


class IAFF(nn.Module):
    """Iterative attentional feature fusion (two stages, two independent MS-CAMs).

    ``W1 = M1(X + Y)``, ``Xi = X W1 + Y (1 - W1)``, ``W2 = M2(Xi)``,
    ``Z = X W2 + Y (1 - W2)``; no factor 2, as in the official code.

    Args:
        channels (int): Channels C of both inputs.
        reduction (int): Reduction r of both MS-CAMs. Defaults to 4.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Hidden activation of the MS-CAMs. Defaults to ``dict(type='ReLU')``.
    """

    def __init__(self,
                 channels: int,
                 reduction: int = 4,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU')) -> None:
        super().__init__()
        _check_channels('IAFF', channels, reduction)
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.att1 = MSCAM(channels, reduction, **common)
        self.att2 = MSCAM(channels, reduction, **common)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Fuse ``x`` and ``y``.

        Args:
            x (Tensor): First input X of shape (N, C, H, W); weighted by ``W2``.
            y (Tensor): Second input Y of shape (N, C, H, W); weighted by ``1 - W2``.

        Returns:
            Tensor: Fused features of shape (N, C, H, W).
        """
        w1 = self.att1.attention(x + y)
        initial = x * w1 + y * (1 - w1)
        w2 = self.att2.attention(initial)
        return x * w2 + y * (1 - w2)
