"""Batch sizes match the config names: ``..._<N>xb<M>-...`` trains M images per process.

mmseg names a config after its recipe (``8xb1`` = 8 GPUs x 1 image); a user who trains on
fewer GPUs scales from that name, so ``train_dataloader.batch_size`` must equal M, and the
metafile's ``Batch Size`` (the total) must equal N x M. Counts are asserted so that a moved
folder cannot make the test pass on nothing.
"""
import glob
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

import pytest
import yaml
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: ``<N>xb<M>`` between separators of a config name, e.g. ``afa_mit-b0_8xb1-160k_...``
NAME_BATCH = re.compile(r'(?:^|[_-])(\d+)xb(\d+)(?=[_-])')


def name_batch(name: str) -> Optional[Tuple[int, int]]:
    """``(GPUs, images per GPU)`` written in a config name, or None."""
    found = NAME_BATCH.findall(osp.splitext(osp.basename(name))[0])
    assert len(found) <= 1, f'{name}: more than one <N>xb<M> in the name'
    return (int(found[0][0]), int(found[0][1])) if found else None


CONFIGS: List[str] = sorted(
    osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                                            recursive=True)
    if '_base_' not in p.split(osp.sep) and name_batch(p) is not None)


def test_name_pattern():
    assert name_batch('afa_mit-b0_8xb1-160k_cityscapes-512x1024.py') == (8, 1)
    assert name_batch('ssr_fcn_r18-d8_1xb8-1500_synthetic-128x128.py') == (1, 8)
    assert name_batch('ccnet3d_r18-d8_1xb8-1k_synthetic-video-64x64.py') == (1, 8)
    assert name_batch('afa-official-iabn_dla102x-ocr-ssr_8xb2-60k_cityscapes-1024x1024') == (8, 2)
    assert name_batch('fcn_r18-d8-w8_synthetic-128x128.py') is None
    assert name_batch('crop-512x1024.py') is None  # a crop size is no batch


def test_configs_collected():
    # every config of configs/ (but _base_) follows mmseg's naming, so all of them are checked
    all_configs = [p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                   if '_base_' not in p.split(osp.sep)]
    assert len(CONFIGS) > 20, CONFIGS
    assert len(CONFIGS) == len(all_configs), sorted(set(
        osp.relpath(p, ROOT) for p in all_configs) - set(CONFIGS))


@pytest.mark.parametrize('rel', CONFIGS)
def test_train_batch_size_is_the_name_s(rel):
    _, per_gpu = name_batch(rel)
    cfg = Config.fromfile(osp.join(ROOT, rel))
    assert cfg.train_dataloader.batch_size == per_gpu, (
        f'{rel}: train_dataloader.batch_size is {cfg.train_dataloader.batch_size}, the name '
        f'says {per_gpu} per GPU')


def _metafile_batch_sizes() -> Dict[str, int]:
    """``config path -> Batch Size`` of every metafile entry that gives one."""
    with open(osp.join(ROOT, 'model-index.yml'), encoding='utf-8') as f:
        metafiles = yaml.safe_load(f)['Import']
    sizes = {}
    for rel in metafiles:
        with open(osp.join(ROOT, rel), encoding='utf-8') as f:
            for model in yaml.safe_load(f)['Models']:
                size = model.get('Metadata', {}).get('Batch Size')
                if size is not None:
                    sizes[model['Config']] = int(size)
    return sizes


def test_metafile_batch_size_is_gpus_times_images():
    sizes = _metafile_batch_sizes()
    checked = 0
    for rel in CONFIGS:
        if rel in sizes:
            gpus, per_gpu = name_batch(rel)
            assert sizes[rel] == gpus * per_gpu, (
                f'{rel}: metafile Batch Size {sizes[rel]}, the name says {gpus}x{per_gpu}')
            checked += 1
    assert checked > 20, checked
