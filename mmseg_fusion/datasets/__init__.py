"""Datasets (``DATASETS``), checked loading transforms (``TRANSFORMS``), the clip sampler."""
from .clip_sampler import ClipSampler
from .synthetic_generator import (
    CLASSES,
    PALETTE,
    STYLES,
    SampleStyle,
    generate_dataset,
    generate_sample,
)
from .synthetic_scales import SyntheticScalesDataset
from .synthetic_video import (
    SyntheticVideoDataset,
    generate_video,
    generate_video_dataset,
    read_degraded,
)
from .transforms import LoadCheckedAnnotations, LoadCheckedImageFromFile, UnreadableImageError

__all__ = [
    'CLASSES', 'ClipSampler', 'LoadCheckedAnnotations', 'LoadCheckedImageFromFile', 'PALETTE',
    'STYLES', 'SampleStyle', 'SyntheticScalesDataset', 'SyntheticVideoDataset',
    'UnreadableImageError',
    'generate_dataset', 'generate_sample', 'generate_video', 'generate_video_dataset',
    'read_degraded'
]
