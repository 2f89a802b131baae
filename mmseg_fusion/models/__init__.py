"""Registered components (``mmseg.registry.MODELS``), thin compositions of ``layers``."""
from .backbones import DLA
from .decode_heads import A2Head, EMAUHead, OCRBlockHead, RCCA3DHead, RCCAHead
from .fusions import (
    AddFusion,
    AFAFusion,
    AFFFusion,
    BaseScaleFusion,
    ConcatFusion,
    HMAScaleFusion,
    IAFFFusion,
    MaxScaleFusion,
    MeanScaleFusion,
    MultiAFAFusion,
    SoftmaxScaleFusion,
    SSRScaleFusion,
)
from .losses import CategoryConsistentLoss
from .necks import AFANeck, IAFFNeck
from .segmentors import SSREncoderDecoder, SSRTTAModel

__all__ = [
    'A2Head', 'AFAFusion', 'AFANeck', 'AFFFusion', 'AddFusion', 'BaseScaleFusion',
    'CategoryConsistentLoss', 'ConcatFusion', 'DLA', 'EMAUHead', 'HMAScaleFusion',
    'IAFFFusion', 'IAFFNeck', 'MaxScaleFusion', 'MeanScaleFusion', 'MultiAFAFusion',
    'OCRBlockHead', 'RCCA3DHead', 'RCCAHead', 'SSREncoderDecoder', 'SSRScaleFusion',
    'SSRTTAModel', 'SoftmaxScaleFusion'
]
