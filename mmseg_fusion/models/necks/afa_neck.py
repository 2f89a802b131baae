"""AFA neck: IDA-Up aggregation with bi-input AFA nodes, then multi-input AFA of the levels.

Paper: Yang, Huang, Sun, Rota Bulò, Kontschieder, Yu, "Dense Prediction with Attentive Feature
Aggregation", WACV 2023, https://arxiv.org/abs/2111.00770. Official code (consulted, not
copied): https://github.com/SysCV/dla-afa (``afa/model/necks/afa_dla_up.py``: ``AFAIDAUp``,
``AFADLAUp``, ``AFADLAUpTrunk.final_feature_fusion``).

Structure (L input levels, shallowest first, level ``j`` with ``in_channels[j]`` channels):
the levels are aggregated from deep to shallow as in DLA-Up; node ``j`` (j = L-2, ..., 0)
takes level ``j`` and the (already aggregated) deeper features, projects each to
``in_channels[j]`` channels (1x1 conv-norm-act where needed), resizes them to level ``j``'s
size and folds them in one by one with a :class:`~mmseg_fusion.layers.BiAFA`
(``x = s (1 - c) x + (1 - s) c F_i``); its running outputs replace the deeper features for the
next node. The outputs of the ``fused_levels`` shallowest nodes are projected to
``fused_channels``, resized to level 0 and fused by a :class:`~mmseg_fusion.layers.MultiAFA`.
With a DLA backbone (levels 1..5) this is exactly the official ``AFADLAUp`` + final fusion
(nodes ``afa_ida_0..3``, fusion of the stride 8, 4, 2 outputs into 32 channels).

Differences from the official code:

- Upsampling inside the nodes: ``upsample='deconv'`` is the official one (a trainable
  depthwise transposed conv per deeper input, kernel 4, stride 2, initialised to bilinear
  interpolation, keys ``up_{i}``); it assumes successive levels differ by a stride of 2 (DLA,
  ResNet without dilation, MiT, HRNet) and, where an odd size makes its output one pixel too
  large, the result is resized to the shallower level. ``upsample='bilinear'`` (the default)
  interpolates to the shallower level's size, has no parameters and works for any backbone
  (dilated ResNets included). The final fusion resizes bilinearly, as the official code does.
  While traced (ONNX export) these resizes are always recorded, so the graph serves every
  input size (at equal sizes a bilinear resize is the identity).
- The fusion is a registered module chosen by ``fusion`` (:mod:`mmseg_fusion.models.fusions`):
  ``'afa'`` (the default) is the official node and final fusion; ``'concat'`` (DLA-Up's IDA-Up
  node, 3x3 conv-norm-act on ``[x, F_i]``, and a 3x3 conv on the concatenated levels) and
  ``'add'`` run the paper's ablation through the same code; any other pair fusion
  (``'iaff'``, ``'aff'``, ``dict(type=...)`` of a user's own) works in the nodes and is folded
  over the levels for the final fusion unless ``final_fusion`` names one.
- Norm and activation are ``norm_cfg``/``act_cfg`` (the official ``bn_relu`` is BN + ReLU or
  InPlace-ABN with leaky ReLU 0.01, depending on the checkpoint).
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmseg.models.utils import resize
from mmseg.registry import MODELS

from ...utils.checks import check_int, is_int
from ...utils.tracing import is_tracing
from ..fusions.builder import (
    PAIR_FUSIONS,
    build_fusion,
    build_level_fusion,
    fusion_cfg,
    takes_argument,
)

__all__ = ['AFANeck']

_UPSAMPLES = ('bilinear', 'deconv')


def bilinear_deconv(channels: int, factor: int = 2) -> nn.ConvTranspose2d:
    """Depthwise transposed conv that upsamples by ``factor`` like bilinear interpolation.

    Kernel ``2 * factor``, stride ``factor``, padding ``factor // 2``, no bias, as the official
    ``up_{i}`` layers, initialised with the separable bilinear kernel (in the interior the output
    equals ``F.interpolate(..., scale_factor=factor, mode='bilinear', align_corners=False)``).

    Args:
        channels (int): Channels C (one group per channel).
        factor (int): Upsampling factor. Defaults to 2.

    Returns:
        nn.ConvTranspose2d: Maps (N, C, H, W) to (N, C, factor * H, factor * W).
    """
    up = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor,
                            padding=factor // 2, groups=channels, bias=False)
    fill_bilinear_(up)
    return up


def fill_bilinear_(up: nn.ConvTranspose2d) -> None:
    """Set every kernel of a depthwise transposed conv to the bilinear kernel, in place."""
    size = up.kernel_size[0]
    f = math.ceil(size / 2)
    center = (2 * f - 1 - f % 2) / (2 * f)
    # (size,) one-dimensional kernel; the 2-D kernel is its outer product
    line = 1 - (torch.arange(size, dtype=torch.float32) / f - center).abs()
    with torch.no_grad():
        up.weight.copy_((line[:, None] * line[None, :]).expand_as(up.weight))


class _IDAUpNode(nn.Module):
    """One IDA-Up aggregation node: project, resize and fold the inputs in one by one.

    Args:
        in_channels (Sequence[int]): Channels of the K >= 2 inputs; input 0 is the shallowest
            and sets the output size.
        channels (int): Output channels C.
        fusion (dict): The pair fusion's config (one module ``node_{i}`` per deeper input).
        upsample (str): ``'bilinear'`` or ``'deconv'`` (see the module docstring).
        align_corners (bool): ``align_corners`` of the bilinear resizing.
        offered (dict): Arguments offered to the fusion (see
            :func:`~mmseg_fusion.models.fusions.build_fusion`).
        conv_cfg (dict, optional): Conv layer config of the projections.
        norm_cfg (dict): Norm layer config of the projections.
        act_cfg (dict): Activation config of the projections.
    """

    def __init__(self, in_channels: Sequence[int], channels: int, fusion: dict,
                 upsample: str, align_corners: bool, offered: dict, conv_cfg: Optional[dict],
                 norm_cfg: dict, act_cfg: dict) -> None:
        super().__init__()
        self.upsample = upsample
        self.align_corners = align_corners
        for i, ch in enumerate(in_channels):
            proj = (nn.Identity() if ch == channels else ConvModule(
                ch, channels, 1, bias=False, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                act_cfg=act_cfg))
            setattr(self, f'proj_{i}', proj)
            if i > 0 and upsample == 'deconv':
                setattr(self, f'up_{i}', bilinear_deconv(channels))
            if i > 0:
                setattr(self, f'node_{i}',
                        build_fusion(fusion, 'AFANeck', channels=channels, **offered))
        self.num_inputs = len(in_channels)

    def forward(self, inputs: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """Aggregate.

        Args:
            inputs (Sequence[Tensor]): K features, input ``i`` of shape
                (N, in_channels[i], H_i, W_i); input 0 sets the size H_0 x W_0.

        Returns:
            list[Tensor]: The K - 1 running aggregates, each of shape (N, C, H_0, W_0); the
            last one is the node's output.
        """
        size = inputs[0].shape[2:]
        feats = [getattr(self, f'proj_{i}')(x) for i, x in enumerate(inputs)]
        x = feats[0]
        outs = []
        for i in range(1, self.num_inputs):
            deep = feats[i]
            if self.upsample == 'deconv':
                deep = getattr(self, f'up_{i}')(deep)
            # traced: always resize (identity at equal sizes), a deconv's output size
            # depends on the parity of the input size
            if deep.shape[2:] != size or is_tracing():
                deep = resize(deep, size=size, mode='bilinear',
                              align_corners=self.align_corners)
            x = getattr(self, f'node_{i}')(x, deep)
            outs.append(x)
        return outs


@MODELS.register_module()
class AFANeck(BaseModule):
    """Attentive Feature Aggregation neck for any multi-level backbone.

    Output layout (L = ``len(in_channels)``): ``outs[0]`` is the fused map of
    ``fused_channels`` channels at the size of input 0 (feed it to the decode head with
    ``in_index=0``); ``outs[1 + j]`` for j < L - 1 is the aggregated feature of level ``j``
    (``in_channels[j]`` channels, size of input ``j``), and ``outs[L]`` the deepest input,
    unchanged. So ``outs[1 + j]`` has the shape of ``inputs[j]`` for every ``j``, which suits
    auxiliary heads (the official deep supervision uses levels 1..4 of DLA's).

    Args:
        in_channels (Sequence[int]): Channels of each input level, shallowest first; at least
            two levels.
        fusion (str | dict): The pair fusion of the aggregation nodes
            (:mod:`mmseg_fusion.models.fusions`): a config dict, e.g.
            ``dict(type='IAFFFusion', reduction=4)``, or a shorthand: ``'afa'`` (the paper),
            ``'concat'`` (DLA-Up's IDA node, the paper's baseline), ``'add'``, ``'aff'``,
            ``'iaff'``. Built once per node input with ``channels`` and the offered
            ``reduction``, ``conv_cfg``, ``norm_cfg``, ``act_cfg`` (those its constructor
            takes). Defaults to ``'afa'``.
        final_fusion (str | dict, optional): The level fusion of the ``fused_levels`` maps.
            Defaults to None: the fusion's own (``MultiAFAFusion`` for AFA, ``ConcatFusion``
            / ``AddFusion`` of all levels), any other pair fusion folded over the levels
            (:class:`~mmseg_fusion.models.fusions.FoldFusion`).
        fused_levels (int): Number of the shallowest aggregated levels fused into ``outs[0]``;
            in [1, L - 1]. The official DLA model fuses 3. Defaults to 3.
        fused_channels (int, optional): Channels of the fused map. Defaults to None
            (= ``in_channels[0]``, as the official ``high_level_ch``).
        reduction (int): Reduction ratio offered to the fusions' channel attentions;
            ``in_channels`` and ``fused_channels`` must be >= it when the fusion takes it.
            Defaults to 16.
        upsample (str): Upsampling in the nodes: ``'bilinear'`` (interpolation, any backbone)
            or ``'deconv'`` (the official trainable depthwise transposed convs, initialised to
            bilinear kernels; levels at successive strides of 2). Defaults to ``'bilinear'``.
        align_corners (bool): ``align_corners`` of the bilinear resizing. Defaults to False.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation config. Defaults to ``dict(type='ReLU')``.
        init_cfg (dict | list[dict], optional): Initialisation config. Defaults to Kaiming
            normal (fan-in, ReLU) on every conv, as the official ``initialize_weights``.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 fusion: Union[str, dict] = 'afa',
                 final_fusion: Union[str, dict, None] = None,
                 fused_levels: int = 3,
                 fused_channels: Optional[int] = None,
                 reduction: int = 16,
                 upsample: str = 'bilinear',
                 align_corners: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg: Union[dict, List[dict], None] = dict(
                     type='Kaiming', layer=['Conv2d'], mode='fan_in',
                     nonlinearity='relu')) -> None:
        super().__init__(init_cfg)
        name = type(self).__name__
        if (not isinstance(in_channels, (list, tuple)) or len(in_channels) < 2
                or not all(is_int(c, 1) for c in in_channels)):
            raise ValueError(f'{name}: in_channels must be a list of at least 2 positive ints '
                             f'(one per backbone level), got {in_channels!r}')
        fusion = fusion_cfg(fusion, PAIR_FUSIONS, name)
        if upsample not in _UPSAMPLES:
            raise ValueError(f'{name}: upsample must be one of {_UPSAMPLES}, '
                             f'got {upsample!r}')
        num_levels = len(in_channels)
        check_int(name, 'fused_levels', fused_levels, 1, num_levels - 1,
                  why=f'for {num_levels} in_channels')
        fused_channels = in_channels[0] if fused_channels is None else fused_channels
        check_int(name, 'fused_channels', fused_channels, optional=True)
        if takes_argument(fusion, 'reduction', name):
            for arg, value in (('in_channels', min(in_channels)),
                               ('fused_channels', fused_channels)):
                if not is_int(reduction, 1, value):
                    raise ValueError(
                        f'{name}: reduction must be in [1, {value}] (the smallest of '
                        f'{arg}), got {reduction!r}')
        self.in_channels = list(in_channels)
        self.fused_levels = fused_levels
        self.fused_channels = fused_channels
        self.align_corners = align_corners
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        offered = dict(reduction=reduction, **common)

        # node j aggregates level j with the deeper features; built deepest first, as in
        # the official code (afa_ida_0 is the deepest node)
        self.ida_nodes = nn.ModuleList()
        for j in range(num_levels - 2, -1, -1):
            node_in = [in_channels[j]] + [in_channels[j + 1]] * (num_levels - 1 - j)
            self.ida_nodes.append(_IDAUpNode(node_in, in_channels[j], fusion, upsample,
                                             align_corners, offered, **common))
        # final fusion of the outputs of nodes fused_levels-1, ..., 0 (deepest first)
        self.fuse_projs = nn.ModuleList([
            nn.Identity() if in_channels[j] == fused_channels
            else ConvModule(in_channels[j], fused_channels, 1, bias=False, **common)
            for j in range(fused_levels - 1, -1, -1)
        ])
        self.final_fusion = build_level_fusion(final_fusion, fusion, fused_levels, name,
                                               channels=fused_channels, **offered)

    def init_weights(self) -> None:
        """Apply ``init_cfg``, then reset the ``'deconv'`` upsamplers to bilinear kernels."""
        super().init_weights()
        for m in self.modules():
            if isinstance(m, nn.ConvTranspose2d):
                fill_bilinear_(m)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        """Aggregate and fuse the levels.

        Args:
            inputs (Sequence[Tensor]): L features, input ``j`` of shape
                (N, in_channels[j], H_j, W_j), shallowest first.

        Returns:
            tuple[Tensor]: L + 1 maps: the fused map of shape (N, fused_channels, H_0, W_0),
            then one map of the shape of each input (aggregated levels, the deepest
            unchanged).
        """
        num_levels = len(self.in_channels)
        if len(inputs) != num_levels:
            raise ValueError(f'{type(self).__name__}: expected {num_levels} inputs (one per '
                             f'in_channels), got {len(inputs)}')
        layers = list(inputs)
        level_outs: List[torch.Tensor] = [None] * num_levels
        level_outs[-1] = inputs[-1]
        for k, node in enumerate(self.ida_nodes):
            j = num_levels - 2 - k
            running = node(layers[j:])
            layers[j + 1:] = running
            level_outs[j] = running[-1]
        size = level_outs[0].shape[2:]
        fused_in = []
        for proj, j in zip(self.fuse_projs, range(self.fused_levels - 1, -1, -1)):
            feat = proj(level_outs[j])
            if feat.shape[2:] != size or is_tracing():
                feat = resize(feat, size=size, mode='bilinear',
                              align_corners=self.align_corners)
            fused_in.append(feat)
        return (self.final_fusion(fused_in), *level_outs)
