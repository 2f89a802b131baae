from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

import mmseg_fusion  # noqa: F401
from mmseg_fusion.datasets import CLASSES, SyntheticScalesDataset


def test_builds_and_loads(synthetic_root):
    init_default_scope('mmseg')
    ds = DATASETS.build(
        dict(type='SyntheticScalesDataset', data_root=synthetic_root,
             data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
             pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                       dict(type='PackSegInputs')]))
    assert isinstance(ds, SyntheticScalesDataset)
    assert len(ds) == 12
    assert ds.metainfo['classes'] == CLASSES
    assert len(ds.metainfo['palette']) == len(CLASSES)
    sample = ds[0]
    assert tuple(sample['inputs'].shape) == (3, 64, 64)
    assert tuple(sample['data_samples'].gt_sem_seg.data.shape) == (1, 64, 64)
