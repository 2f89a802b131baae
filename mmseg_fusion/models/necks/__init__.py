"""Registered necks."""
from .afa_neck import AFANeck
from .iaff_neck import IAFFNeck

__all__ = ['AFANeck', 'IAFFNeck']
