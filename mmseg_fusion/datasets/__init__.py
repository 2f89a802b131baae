"""Datasets (``mmseg.registry.DATASETS``) and checked loading transforms (``TRANSFORMS``)."""
from .synthetic_generator import CLASSES, PALETTE, generate_dataset, generate_sample
from .synthetic_scales import SyntheticScalesDataset
from .transforms import LoadCheckedAnnotations, LoadCheckedImageFromFile, UnreadableImageError

__all__ = [
    'CLASSES', 'LoadCheckedAnnotations', 'LoadCheckedImageFromFile', 'PALETTE',
    'SyntheticScalesDataset', 'UnreadableImageError', 'generate_dataset', 'generate_sample'
]
