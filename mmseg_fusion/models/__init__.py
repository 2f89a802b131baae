"""Registered components (``mmseg.registry.MODELS``), thin compositions of ``layers``."""
from . import backbones, decode_heads, losses, necks, segmentors
