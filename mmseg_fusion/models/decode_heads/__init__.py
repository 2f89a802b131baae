"""Registered decode heads."""
from .a2_head import A2Head
from .emau_head import EMAUHead
from .rcca_head import RCCAHead

__all__ = ['A2Head', 'EMAUHead', 'RCCAHead']
