"""Benchmark-only variants of the package's components (ablation rows), registered on import.

The product classes keep only what a shipped config uses; the options that exist for an
ablation row live here, as registered subclasses a benchmark config names with ``type=``
(``custom_imports = dict(imports=['mmseg_fusion', 'variants'])`` with ``benchmarks/`` on
``PYTHONPATH``):

- ``NormalizedAFAFusion`` / ``NormalizedMultiAFAFusion``: AFA's fusions divided by the sum of
  their weights, a convex combination of the inputs (not in the paper);
- ``ConvAFAFusion`` / ``ConvMultiAFAFusion``: AFA's fusions followed by a 3x3
  conv-norm-act, as the concat nodes have (not in the paper);
- ``LogProbSSRScaleFusion``: SSR fusing each scale's log-softmax instead of its logits (the
  official non-OCR SSR model fuses ``LogSoftmax`` outputs);
- ``BackboneDensitySSREncoderDecoder``: the scale attention sees the decode head's input (the
  backbone or neck output at its ``in_index``; the official non-OCR model's attention sees the
  AFA neck output) instead of the features the head classifies.
"""
from typing import List, Optional, Sequence, Tuple

import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.registry import MODELS
from torch import Tensor

from mmseg_fusion.functional import afa_bi_fusion, afa_multi_fusion
from mmseg_fusion.models import AFAFusion, MultiAFAFusion, SSREncoderDecoder, SSRScaleFusion

__all__ = [
    'BackboneDensitySSREncoderDecoder', 'ConvAFAFusion', 'ConvMultiAFAFusion',
    'LogProbSSRScaleFusion', 'NormalizedAFAFusion', 'NormalizedMultiAFAFusion'
]


@MODELS.register_module()
class NormalizedAFAFusion(AFAFusion):
    """``(s (1 - c) x + (1 - s) c y) / (s (1 - c) + (1 - s) c)`` (a convex combination)."""

    multi_input_type = 'NormalizedMultiAFAFusion'

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Fuse (N, C, H, W) maps."""
        return afa_bi_fusion(x, y, self.sa(x), self.ca(y), normalize=True)


@MODELS.register_module()
class NormalizedMultiAFAFusion(MultiAFAFusion):
    """Multi-input AFA divided by the sum of its weights."""

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """Fuse K (N, C, H, W) maps, deepest first."""
        return afa_multi_fusion(features, [self.sa(f) for f in features],
                                [self.ca(f) for f in features], normalize=True)


class _WithConv:
    """A 3x3 conv-norm-act (``conv``) after the fusion of the parent class."""

    def _add_conv(self, channels: int, conv_cfg: Optional[dict], norm_cfg: dict,
                  act_cfg: dict) -> None:
        self.conv = ConvModule(channels, channels, 3, padding=1, bias=False,
                               conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)


@MODELS.register_module()
class ConvAFAFusion(_WithConv, AFAFusion):
    """Bi-input AFA, then a 3x3 conv-norm-act."""

    multi_input_type = 'ConvMultiAFAFusion'

    def __init__(self, channels: int, reduction: int = 16, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'), act_cfg: dict = dict(type='ReLU')) -> None:
        super().__init__(channels, reduction, conv_cfg, norm_cfg, act_cfg)
        self._add_conv(channels, conv_cfg, norm_cfg, act_cfg)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Fuse (N, C, H, W) maps."""
        return self.conv(super().forward(x, y))


@MODELS.register_module()
class ConvMultiAFAFusion(_WithConv, MultiAFAFusion):
    """Multi-input AFA, then a 3x3 conv-norm-act."""

    def __init__(self, channels: int, reduction: int = 16, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'), act_cfg: dict = dict(type='ReLU')) -> None:
        super().__init__(channels, reduction, conv_cfg, norm_cfg, act_cfg)
        self._add_conv(channels, conv_cfg, norm_cfg, act_cfg)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """Fuse K (N, C, H, W) maps, deepest first."""
        return self.conv(super().forward(features))


@MODELS.register_module()
class LogProbSSRScaleFusion(SSRScaleFusion):
    """SSR of each scale's log-softmax (N, C, H, W) instead of its logits."""

    def update(self, state: dict, logits: Tensor, density: Optional[Tensor] = None,
               last: bool = False) -> None:
        """Add the next scale's log-softmax (see :meth:`SSRScaleFusion.update`)."""
        if logits.shape[1] > 1:
            logits = F.log_softmax(logits, dim=1)
        super().update(state, logits, density, last)


@MODELS.register_module()
class BackboneDensitySSREncoderDecoder(SSREncoderDecoder):
    """SSR whose scale attention sees the decode head's input (one ``in_index``)."""

    def _density_source(self) -> Tuple[int, str]:
        in_index = getattr(self.decode_head, 'in_index', None)
        if not isinstance(in_index, int):
            raise ValueError(f'{type(self).__name__}: needs a decode head with one input (an '
                             f'int in_index), got {in_index!r}')
        return self.decode_head.in_channels, "decode head's in_channels"

    def _density_features(self, feats: List[Tensor], head_feats: Tensor) -> Tensor:
        return feats[self.decode_head.in_index]
