"""Datasets registered into ``mmseg.registry.DATASETS``."""
from .synthetic_generator import CLASSES, PALETTE, generate_dataset, generate_sample
from .synthetic_scales import SyntheticScalesDataset

__all__ = [
    'CLASSES', 'PALETTE', 'SyntheticScalesDataset', 'generate_dataset', 'generate_sample'
]
