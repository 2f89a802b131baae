"""Registered fusion modules: pair, level and scale fusions chosen by a config dict."""
from .afa_fusion import AFAFusion, MultiAFAFusion
from .aff_fusion import AFFFusion, IAFFFusion
from .basic_fusions import AddFusion, ConcatFusion
from .builder import (
    PAIR_FUSIONS,
    SCALE_FUSIONS,
    FoldFusion,
    build_fusion,
    build_level_fusion,
    fusion_cfg,
)
from .scale_fusions import (
    BaseScaleFusion,
    HMAScaleFusion,
    MaxScaleFusion,
    MeanScaleFusion,
    SoftmaxScaleFusion,
    SSRScaleFusion,
)

__all__ = [
    'PAIR_FUSIONS', 'SCALE_FUSIONS', 'AFAFusion', 'AFFFusion', 'AddFusion', 'BaseScaleFusion',
    'ConcatFusion', 'FoldFusion', 'HMAScaleFusion', 'IAFFFusion', 'MaxScaleFusion',
    'MeanScaleFusion', 'MultiAFAFusion', 'SSRScaleFusion', 'SoftmaxScaleFusion',
    'build_fusion', 'build_level_fusion', 'fusion_cfg'
]
