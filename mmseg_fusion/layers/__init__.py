"""Unregistered primitive ``nn.Module``s built on :mod:`mmseg_fusion.functional`."""

from .afa import ChannelAttention, SpatialAttention

__all__ = ['ChannelAttention', 'SpatialAttention']
