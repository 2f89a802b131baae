"""FPN whose top-down merges are attentional feature fusions (AFF / iAFF).

Paper: Dai, Gieseke, Oehmcke, Wu, Barnard, "Attentional Feature Fusion", WACV 2021,
https://arxiv.org/abs/2009.14082 (the "long skip connection" / FPN scenario). Official code
(MXNet, consulted, not copied): https://github.com/YimianDai/open-aff. The FPN skeleton
follows mmseg's :class:`~mmseg.models.necks.FPN` (its arguments, module names and extra
levels), so that ``fusion='add'`` is a drop-in replacement: the same checkpoints load with
``strict=True`` and give the same outputs.

Differences: the official repository fuses inside ResNet blocks (classification) and ships no
segmentation neck; here a registered pair fusion (:mod:`mmseg_fusion.models.fusions`; iAFF by
default) replaces the ``+`` of FPN's top-down path: ``lateral_{i-1} = fuse(lateral_{i-1},
up(lateral_i))`` with X = the lateral (low-level) feature and Y = the upsampled top-down
(high-level) feature, as the paper assigns X and Y.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmseg.models.utils import resize
from mmseg.registry import MODELS

from ...utils.checks import check_int, is_int
from ..fusions.builder import PAIR_FUSIONS, build_fusion, fusion_cfg, takes_argument

__all__ = ['IAFFNeck']

_EXTRA_SOURCES = ('on_input', 'on_lateral', 'on_output')


@MODELS.register_module()
class IAFFNeck(BaseModule):
    """FPN with iAFF / AFF / add merges in the top-down path.

    Takes the multi-level features of a backbone, shallowest first, and returns
    ``num_outs`` maps of ``out_channels`` channels, finest first (output ``i`` at the size of
    input ``start_level + i``; the extra levels halve the size each time).

    Args:
        in_channels (Sequence[int]): Channels of each input level.
        out_channels (int): Channels of every output (and of the fusions).
        num_outs (int): Number of outputs.
        fusion (str | dict): The top-down merge, a pair fusion
            (:mod:`mmseg_fusion.models.fusions`): a config dict, e.g.
            ``dict(type='AFAFusion', reduction=4)``, or a shorthand: ``'iaff'``, ``'aff'``,
            ``'add'`` (exactly mmseg's ``FPN``), ``'afa'``, ``'concat'``. Built once per merge
            with ``channels=out_channels`` and the offered ``reduction``, ``scale`` (=
            ``aff_scale``), ``conv_cfg``, ``norm_cfg`` (= ``fusion_norm_cfg``) and ``act_cfg``
            (= ``fusion_act_cfg``), those its constructor takes. Defaults to ``'iaff'``.
        reduction (int): Channel reduction r offered to the fusion (MS-CAM's r); must divide
            ``out_channels`` when the fusion takes it. Defaults to 4.
        aff_scale (float): Offered as ``scale`` (the factor of AFF: 2.0 in the official code,
            1.0 in the paper's formula). Defaults to 2.0.
        fusion_norm_cfg (dict): Norm offered to the fusion (the paper's BN; FPN itself has no
            norm by default). Defaults to ``dict(type='BN')``.
        fusion_act_cfg (dict): Hidden activation offered to the fusion. Defaults to
            ``dict(type='ReLU')``.
        start_level (int): First input level used. Defaults to 0.
        end_level (int): Last input level used (exclusive); -1 means all. Defaults to -1.
        add_extra_convs (bool | str): Extra levels by stride-2 convs instead of max pooling:
            False, True (= ``'on_output'``), ``'on_input'``, ``'on_lateral'``,
            ``'on_output'``. Defaults to False.
        extra_convs_on_inputs (bool): Legacy mmseg switch: with ``add_extra_convs=True``,
            means ``'on_input'``. Defaults to False.
        relu_before_extra_convs (bool): ReLU before the 2nd and later extra convs.
            Defaults to False.
        no_norm_on_lateral (bool): No norm on the lateral convs. Defaults to False.
        conv_cfg (dict, optional): Conv config of the FPN convs. Defaults to None.
        norm_cfg (dict, optional): Norm config of the FPN convs. Defaults to None.
        act_cfg (dict, optional): Activation of the FPN convs. Defaults to None.
        upsample_cfg (dict): ``resize`` arguments of the top-down path. Defaults to
            ``dict(mode='nearest')``.
        init_cfg (dict | list[dict], optional): Initialisation config (mmseg FPN's).
            Defaults to ``dict(type='Xavier', layer='Conv2d', distribution='uniform')``.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int,
                 num_outs: int,
                 fusion: Union[str, dict] = 'iaff',
                 reduction: int = 4,
                 aff_scale: float = 2.0,
                 fusion_norm_cfg: dict = dict(type='BN'),
                 fusion_act_cfg: dict = dict(type='ReLU'),
                 start_level: int = 0,
                 end_level: int = -1,
                 add_extra_convs: Union[bool, str] = False,
                 extra_convs_on_inputs: bool = False,
                 relu_before_extra_convs: bool = False,
                 no_norm_on_lateral: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 upsample_cfg: dict = dict(mode='nearest'),
                 init_cfg: Union[dict, List[dict], None] = dict(
                     type='Xavier', layer='Conv2d', distribution='uniform')) -> None:
        super().__init__(init_cfg)
        name = type(self).__name__
        if (not isinstance(in_channels, (list, tuple)) or len(in_channels) == 0
                or not all(is_int(c, 1) for c in in_channels)):
            raise ValueError(f'{name}: in_channels must be a non-empty list of positive ints '
                             f'(one per input level), got {in_channels!r}')
        check_int(name, 'out_channels', out_channels)
        check_int(name, 'num_outs', num_outs)
        fusion = fusion_cfg(fusion, PAIR_FUSIONS, name)
        if takes_argument(fusion, 'reduction', name) and (
                not is_int(reduction, 1) or out_channels % reduction != 0):
            raise ValueError(f'{name}: reduction must be a positive divisor of out_channels '
                             f'({out_channels}), got {reduction!r}')
        num_ins = len(in_channels)
        if end_level == -1:
            end = num_ins
            if not num_ins - start_level <= num_outs:
                raise ValueError(f'{name}: num_outs must be >= the number of used levels '
                                 f'({num_ins - start_level}), got {num_outs!r}')
        else:
            end = end_level
            if not start_level < end_level <= num_ins:
                raise ValueError(f'{name}: end_level must be in ({start_level}, {num_ins}] '
                                 f'for {num_ins} in_channels, got {end_level!r}')
            if num_outs != end_level - start_level:
                raise ValueError(f'{name}: num_outs must equal end_level - start_level '
                                 f'({end_level - start_level}), got {num_outs!r}')
        if not 0 <= start_level < num_ins:
            raise ValueError(f'{name}: start_level must be in [0, {num_ins}), '
                             f'got {start_level!r}')
        if isinstance(add_extra_convs, str):
            if add_extra_convs not in _EXTRA_SOURCES:
                raise ValueError(f'{name}: add_extra_convs must be a bool or one of '
                                 f'{_EXTRA_SOURCES}, got {add_extra_convs!r}')
        elif add_extra_convs:
            add_extra_convs = 'on_input' if extra_convs_on_inputs else 'on_output'
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_ins = num_ins
        self.num_outs = num_outs
        self.start_level = start_level
        self.end_level = end_level
        self.backbone_end_level = end
        self.add_extra_convs = add_extra_convs
        self.relu_before_extra_convs = relu_before_extra_convs
        self.upsample_cfg = dict(upsample_cfg)

        conv = dict(conv_cfg=conv_cfg, act_cfg=act_cfg, inplace=False)
        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for i in range(start_level, end):
            self.lateral_convs.append(ConvModule(
                in_channels[i], out_channels, 1,
                norm_cfg=None if no_norm_on_lateral else norm_cfg, **conv))
            self.fpn_convs.append(ConvModule(out_channels, out_channels, 3, padding=1,
                                             norm_cfg=norm_cfg, **conv))
        extra_levels = num_outs - end + start_level
        if add_extra_convs and extra_levels >= 1:
            for i in range(extra_levels):
                src = (in_channels[end - 1] if i == 0 and add_extra_convs == 'on_input'
                       else out_channels)
                self.fpn_convs.append(ConvModule(src, out_channels, 3, stride=2, padding=1,
                                                 norm_cfg=norm_cfg, **conv))
        # one fusion per top-down merge ('add' has no parameters: FPN checkpoints load
        # strictly)
        self.fusions = nn.ModuleList([
            build_fusion(fusion, name, channels=out_channels, reduction=reduction,
                         scale=aff_scale, conv_cfg=conv_cfg, norm_cfg=fusion_norm_cfg,
                         act_cfg=fusion_act_cfg) for _ in range(end - start_level - 1)
        ])

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        """Build the pyramid.

        Args:
            inputs (Sequence[Tensor]): One feature per entry of ``in_channels``, input ``i``
                of shape (N, in_channels[i], H_i, W_i), shallowest first.

        Returns:
            tuple[Tensor]: ``num_outs`` maps; output ``i`` of shape
            (N, out_channels, H_{start_level+i}, W_{start_level+i}) for the used levels,
            then the extra levels at half the previous size.
        """
        if len(inputs) != self.num_ins:
            raise ValueError(f'{type(self).__name__}: expected {self.num_ins} inputs (one per '
                             f'in_channels), got {len(inputs)}')
        laterals = [conv(inputs[i + self.start_level])
                    for i, conv in enumerate(self.lateral_convs)]
        used = len(laterals)
        for i in range(used - 1, 0, -1):
            if 'scale_factor' in self.upsample_cfg:
                top_down = resize(laterals[i], **self.upsample_cfg)
            else:
                top_down = resize(laterals[i], size=laterals[i - 1].shape[2:],
                                  **self.upsample_cfg)
            # X = the lateral (low-level) feature, Y = the top-down (high-level) one
            laterals[i - 1] = self.fusions[i - 1](laterals[i - 1], top_down)
        outs = [self.fpn_convs[i](laterals[i]) for i in range(used)]
        if self.num_outs > used:
            if not self.add_extra_convs:
                for _ in range(self.num_outs - used):
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                source = {'on_input': inputs[self.backbone_end_level - 1],
                          'on_lateral': laterals[-1],
                          'on_output': outs[-1]}[self.add_extra_convs]
                outs.append(self.fpn_convs[used](source))
                for i in range(used + 1, self.num_outs):
                    last = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
                    outs.append(self.fpn_convs[i](last))
        return tuple(outs)
