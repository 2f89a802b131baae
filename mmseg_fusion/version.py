"""Version of mmseg_fusion."""
__version__ = '0.1.0'
