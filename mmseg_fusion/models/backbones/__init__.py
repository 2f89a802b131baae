"""Registered backbones."""
from .dla import DLA

__all__ = ['DLA']
