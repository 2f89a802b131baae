"""configs/ccnet: every config builds with RCCAHead; mmseg-compatible keys; a tiny one trains."""
import glob
import os.path as osp
import re

import mmseg
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import mmseg_fusion  # noqa: F401
from mmseg_fusion.models.decode_heads import RCCAHead

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CCNET = osp.join(ROOT, 'configs', 'ccnet')
CONFIGS = sorted(glob.glob(osp.join(CCNET, '*.py')))


def load(path):
    cfg = Config.fromfile(path)
    cfg.model.pretrained = None
    return cfg


OURS = (
    'ccnet_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    'ccnet_r101-d8_4xb2-80k_cityscapes-512x1024.py',
    'ccnet-ccl_r101-d8_4xb2-80k_cityscapes-512x1024.py',
    'ccnet_r50-d8_4xb4-160k_ade20k-512x512.py',
    'ccnet_r101-d8_4xb4-160k_ade20k-512x512.py',
    'ccnet_r18-d8_1xb8-600_synthetic-128x128.py',
    'ccnet-ccl_r18-d8_1xb8-600_synthetic-128x128.py',
)


def test_configs_collected():
    names = [osp.basename(p) for p in CONFIGS]
    assert set(OURS) <= set(names), names
    assert len(names) >= len(OURS)


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds(path):
    register_all_modules()
    cfg = load(path)
    assert 'mmseg_fusion' in cfg.custom_imports['imports']
    assert cfg.model.decode_head.type == 'RCCAHead'
    model = MODELS.build(cfg.model)
    assert isinstance(model.decode_head, RCCAHead)
    assert model.decode_head.recurrence == 2
    uses_ccl = 'ccnet-ccl' in osp.basename(path)
    assert (model.decode_head.ccl_proj is not None) == uses_ccl


def test_state_dict_matches_mmseg_ccnet():
    register_all_modules()
    ours = MODELS.build(load(osp.join(CCNET, 'ccnet_r50-d8_4xb2-80k_cityscapes-512x1024.py')).model)
    ref_cfg = Config.fromfile(osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', 'ccnet',
                                       'ccnet_r50-d8_4xb2-80k_cityscapes-512x1024.py'))
    ref_cfg.model.pretrained = None
    ref = MODELS.build(ref_cfg.model)
    assert type(ref.decode_head).__name__ == 'CCHead'
    a, b = ours.state_dict(), ref.state_dict()
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    ours.load_state_dict(b, strict=True)


def test_readme_links_exist():
    with open(osp.join(CCNET, 'README.md')) as f:
        text = f.read()
    links = re.findall(r'\]\(([^)\s]+\.py)\)', text)
    assert links
    for link in links:
        assert osp.isfile(osp.join(CCNET, link)), link
    for path in CONFIGS:
        assert osp.basename(path) in text, osp.basename(path)


@pytest.mark.slow  # ~20 s of CPU (3 iterations, one validation)
def test_tiny_ccnet_trains_end_to_end(tmp_path, synthetic_root, tiny_options, run_tool):
    config = osp.join(CCNET, 'ccnet-ccl_r18-d8_1xb8-600_synthetic-128x128.py')
    work = str(tmp_path / 'work')
    out = run_tool([osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', work,
                    '--cfg-options', *tiny_options(synthetic_root, iters=3, ckpt_interval=3)])
    ckpt = osp.join(work, 'iter_3.pth')
    assert osp.isfile(ckpt), out.stdout[-3000:]
    losses = [float(v) for v in re.findall(r'Iter\(train\).*?\sloss: ([-0-9.e+naif]+)',
                                           out.stdout)]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses))), out.stdout[-3000:]
    ccl = re.findall(r'decode\.loss_ccl: ([-0-9.e+naif]+)', out.stdout)
    assert ccl and all(torch.isfinite(torch.tensor([float(v) for v in ccl])))
    state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    assert 'decode_head.cca.gamma.scale' in state and 'decode_head.ccl_proj.weight' in state
