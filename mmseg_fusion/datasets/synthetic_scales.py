"""The synthetic multi-scale dataset (see :mod:`.synthetic_generator`)."""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .synthetic_generator import CLASSES, PALETTE

__all__ = ['SyntheticScalesDataset']


@DATASETS.register_module()
class SyntheticScalesDataset(BaseSegDataset):
    """Generated objects at very different scales, in mmseg's folder layout.

    Images and label maps are PNG files with the same stem (``img_suffix='.png'``,
    ``seg_map_suffix='.png'``); label 0 is a real class (``background``), so
    ``reduce_zero_label`` is False. Generate the data with
    ``python tools/dataset_converters/synthetic_scales.py data/synthetic_scales``.
    """

    METAINFO = dict(classes=CLASSES, palette=[list(c) for c in PALETTE])

    def __init__(self, img_suffix: str = '.png', seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False, **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)
