"""Registered decode heads."""
from .a2_head import A2Head
from .emau_head import EMAUHead
from .ocr_block_head import OCRBlockHead
from .rcca_head import RCCAHead

__all__ = ['A2Head', 'EMAUHead', 'OCRBlockHead', 'RCCAHead']
