"""Pure functions (no modules, no registry): the math of the fusion methods.

Shapes are documented per function; every function is tested against a naive reference.
"""
from .afa import afa_bi_fusion, afa_multi_fusion, progressive_weights
from .criss_cross import criss_cross_attention
from .criss_cross_3d import criss_cross_attention_3d
from .double_attention import double_attention
from .scale_fusion import (
    FUSION_METHODS,
    finish_fusion,
    fuse_scales,
    hma_weights,
    init_fusion,
    scale_space_weights,
    softmax_scale_weights,
    update_fusion,
)

__all__ = [
    'FUSION_METHODS', 'afa_bi_fusion', 'afa_multi_fusion', 'criss_cross_attention',
    'criss_cross_attention_3d', 'double_attention', 'finish_fusion', 'fuse_scales',
    'hma_weights', 'init_fusion', 'progressive_weights', 'scale_space_weights',
    'softmax_scale_weights', 'update_fusion'
]
