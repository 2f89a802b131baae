"""Registered components (``mmseg.registry.MODELS``), thin compositions of ``layers``."""
from . import decode_heads, losses, necks, segmentors
