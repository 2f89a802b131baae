"""Registered components (``mmseg.registry.MODELS``), thin compositions of ``layers``."""
from .backbones import DLA
from .decode_heads import A2Head, EMAUHead, OCRBlockHead, RCCAHead
from .losses import CategoryConsistentLoss
from .necks import AFANeck, IAFFNeck
from .segmentors import SSREncoderDecoder, SSRTTAModel

__all__ = [
    'A2Head', 'AFANeck', 'CategoryConsistentLoss', 'DLA', 'EMAUHead', 'IAFFNeck', 'OCRBlockHead',
    'RCCAHead', 'SSREncoderDecoder', 'SSRTTAModel'
]
