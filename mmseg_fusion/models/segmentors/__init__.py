"""Registered segmentors and test-time-augmentation models (SSR, HMA, ...)."""
from .ssr_encoder_decoder import SSREncoderDecoder
from .ssr_tta import SSRTTAModel

__all__ = ['SSREncoderDecoder', 'SSRTTAModel']
