"""configs/afa: the official configs reproduce the official input resizing (dla_resize)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OFFICIAL = sorted(glob.glob(osp.join(ROOT, 'configs', 'afa', 'afa-official*.py')))


def test_official_configs_collected():
    assert len(OFFICIAL) == 3, OFFICIAL


@pytest.mark.parametrize('path', OFFICIAL, ids=osp.basename)
def test_official_configs_resize_to_multiples(path):
    """dla-afa resizes inputs up to multiples of 64 (training) / 128 (testing)."""
    cfg = Config.fromfile(path)
    assert cfg.model.type == 'SSREncoderDecoder'
    assert cfg.model.test_cfg.size_divisor_resize == 128
    assert cfg.model.train_cfg.size_divisor_resize == 64
    assert cfg.model.test_cfg.mode == 'whole' and 1.0 in cfg.model.test_cfg.scales
