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
from mmseg_fusion.models.decode_heads import RCCA3DHead, RCCAHead

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
    'ccnet_r18-d8_1xb8-1k_synthetic-video-64x64.py',
    'ccnet3d_r18-d8_1xb8-1k_synthetic-video-64x64.py',
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
    video_3d = osp.basename(path).startswith('ccnet3d')
    assert cfg.model.decode_head.type == ('RCCA3DHead' if video_3d else 'RCCAHead')
    model = MODELS.build(cfg.model)
    assert isinstance(model.decode_head, RCCA3DHead if video_3d else RCCAHead)
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


VIDEO_2D = osp.join(CCNET, 'ccnet_r18-d8_1xb8-1k_synthetic-video-64x64.py')
VIDEO_3D = osp.join(CCNET, 'ccnet3d_r18-d8_1xb8-1k_synthetic-video-64x64.py')


def test_video_configs_share_the_state_dict_and_the_clips():
    register_all_modules()
    cfg2d, cfg3d = load(VIDEO_2D), load(VIDEO_3D)
    assert cfg3d.model.decode_head.clip_length == cfg3d.clip_length == 4
    for cfg in (cfg2d, cfg3d):
        assert cfg.train_dataloader.sampler == dict(type='ClipSampler', clip_length=4,
                                                    shuffle=True)
        assert cfg.val_dataloader.sampler.shuffle is False
        assert cfg.train_dataloader.batch_size % 4 == 0 and cfg.val_dataloader.batch_size == 4
        # no per-sample random geometric transform: the frames of a clip stay aligned
        assert [t['type'] for t in cfg.train_dataloader.dataset.pipeline] == [
            'LoadCheckedImageFromFile', 'LoadCheckedAnnotations', 'PackSegInputs']
    a = MODELS.build(cfg2d.model).state_dict()
    b = MODELS.build(cfg3d.model).state_dict()
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}


@pytest.mark.slow  # ~1 min of CPU: 4 iterations, validation, then tools/test.py
def test_video_config_trains_and_tests_through_the_tools(tmp_path, run_tool):
    from mmseg_fusion.datasets import generate_video_dataset
    data = str(tmp_path / 'video')
    generate_video_dataset(data, num_train=2, num_val=1, num_frames=8, image_size=64, seed=0)
    work = str(tmp_path / 'work')
    opts = [f'{loader}.{key}' for loader in ('train_dataloader', 'val_dataloader',
                                             'test_dataloader')
            for key in (f'dataset.data_root={data}', 'num_workers=0',
                        'persistent_workers=False')]
    opts += ['train_cfg.max_iters=4', 'train_cfg.val_interval=4', 'param_scheduler.0.end=4',
             'default_hooks.checkpoint.interval=4', 'default_hooks.logger.interval=1']
    out = run_tool([osp.join(ROOT, 'tools', 'train.py'), VIDEO_3D, '--work-dir', work,
                    '--cfg-options', *opts])
    ckpt = osp.join(work, 'iter_4.pth')
    assert osp.isfile(ckpt), out.stdout[-3000:]
    losses = [float(v) for v in re.findall(r'Iter\(train\).*?\sloss: ([-0-9.e+naif]+)',
                                           out.stdout)]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses))), out.stdout[-3000:]
    # 8 validation frames in 2 clips of 4: every frame evaluated once
    assert re.search(r'Iter\(val\) \[2/2\]', out.stdout), out.stdout[-3000:]
    # the 3D checkpoint evaluates with the 2D config too (same state dict)
    for config in (VIDEO_3D, VIDEO_2D):
        out = run_tool([osp.join(ROOT, 'tools', 'test.py'), config, ckpt, '--work-dir',
                        str(tmp_path / 'test'), '--cfg-options', *opts])
        assert re.search(r'mIoU: [0-9.]+', out.stdout), out.stdout[-3000:]
