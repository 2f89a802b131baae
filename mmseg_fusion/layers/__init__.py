"""Unregistered primitive ``nn.Module``s built on :mod:`mmseg_fusion.functional`."""

from .afa import BiAFA, ChannelAttention, MultiAFA, SpatialAttention
from .criss_cross import CrissCrossAttention
from .criss_cross_3d import CrissCrossAttention3d
from .double_attention import DoubleAttention
from .em_attention import EMAttention, em_iterations
from .ms_cam import AFF, IAFF, MSCAM

__all__ = [
    'AFF', 'BiAFA', 'ChannelAttention', 'CrissCrossAttention', 'CrissCrossAttention3d',
    'DoubleAttention', 'EMAttention',
    'IAFF', 'MSCAM', 'MultiAFA', 'SpatialAttention', 'em_iterations'
]
