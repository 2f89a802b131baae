"""Registered decode heads."""
from .a2_head import A2Head
from .emau_head import EMAUHead
from .ocr_block_head import OCRBlockHead
from .rcca3d_head import RCCA3DHead
from .rcca_head import RCCAHead

__all__ = ['A2Head', 'EMAUHead', 'OCRBlockHead', 'RCCA3DHead', 'RCCAHead']
