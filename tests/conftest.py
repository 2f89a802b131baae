"""Shared fixtures.

Test files are collected with ``--import-mode=importlib`` and never import each other (the
mmsegmentation wheel installs a top-level ``tests`` package); shared helpers live here as
fixtures.
"""
import os
import os.path as osp
import socket
import subprocess
import sys
from typing import Callable, Dict, List, Sequence, Tuple

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(ROOT, 'configs', 'synthetic', 'fcn_r18-d8_1xb8-600_synthetic-128x128.py')


@pytest.fixture(scope='session')
def repo_root() -> str:
    """Absolute path of the repository."""
    return ROOT


@pytest.fixture(scope='session')
def demo_config() -> str:
    """Path of the demo config (a small FCN on the synthetic data)."""
    return DEMO_CONFIG


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small synthetic dataset (12 train, 4 val images of 64x64), made once per session."""
    from mmseg_fusion.datasets import generate_dataset
    root = str(tmp_path_factory.mktemp('data') / 'synthetic_scales')
    generate_dataset(root, num_train=12, num_val=4, image_size=64, seed=0)
    return root


@pytest.fixture(scope='session')
def tiny_options() -> Callable[..., List[str]]:
    """``--cfg-options`` that shrink a synthetic-data config to a few CPU iterations.

    Call as ``tiny_options(data_root, iters=4, ckpt_interval=2, crop=64)``.
    """

    def make(data_root: str, iters: int = 4, ckpt_interval: int = 2,
             crop: int = 64) -> List[str]:
        opts = [
            f'train_dataloader.dataset.data_root={data_root}',
            f'val_dataloader.dataset.data_root={data_root}',
            f'test_dataloader.dataset.data_root={data_root}',
            'train_dataloader.batch_size=2',
            f'train_cfg.max_iters={iters}',
            f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={ckpt_interval}',
            'default_hooks.logger.interval=1',
            f'param_scheduler.0.end={iters}',
            f'model.data_preprocessor.size=({crop},{crop})',
            # the synthetic base pipelines: [load, load_ann, RandomResize, RandomCrop, ...]
            f'train_dataloader.dataset.pipeline.2.scale=({crop},{crop})',
            f'train_dataloader.dataset.pipeline.3.crop_size=({crop},{crop})',
            f'val_dataloader.dataset.pipeline.1.scale=({crop},{crop})',
            f'test_dataloader.dataset.pipeline.1.scale=({crop},{crop})',
            'randomness.seed=0',
        ]
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            opts += [f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
        return opts

    return make


@pytest.fixture(scope='session')
def run_tool() -> Callable[..., subprocess.CompletedProcess]:
    """Run a Python script (or ``-m module``) in a fresh interpreter and check its exit code.

    Call as ``run_tool([script, arg, ...], cwd=..., check=True, timeout=600)``; on failure the
    assertion shows the end of the output.
    """

    def run(args: Sequence[str], cwd: str = ROOT, check: bool = True, timeout: int = 600,
            env: dict = None) -> subprocess.CompletedProcess:
        full_env = dict(os.environ, PYTHONUNBUFFERED='1', MMSEG_FUSION_SKIP_VERSION_CHECK='1')
        full_env.pop('LOCAL_RANK', None)
        full_env.update(env or {})
        proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=full_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout)
        if check:
            assert proc.returncode == 0, (
                f'{" ".join(map(str, args))} exited {proc.returncode}:\n{proc.stdout[-6000:]}')
        return proc

    return run


@pytest.fixture
def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# tiny versions of the backbones a neck must serve, with their output channels
TINY_BACKBONES: Dict[str, Tuple[dict, List[int]]] = {
    'ResNetV1c': (dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
                       dilations=(1, 1, 1, 1), strides=(1, 2, 2, 2)), [8, 16, 32, 64]),
    'MixVisionTransformer': (dict(type='MixVisionTransformer', embed_dims=8, num_layers=[1] * 4,
                                  num_heads=[1, 2, 4, 8], mlp_ratio=2), [8, 16, 32, 64]),
    'HRNet': (dict(type='HRNet', extra=dict(
        stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(1, ),
                    num_channels=(8, )),
        stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(1, 1),
                    num_channels=(4, 8)),
        stage3=dict(num_modules=1, num_branches=3, block='BASIC', num_blocks=(1, 1, 1),
                    num_channels=(4, 8, 16)),
        stage4=dict(num_modules=1, num_branches=4, block='BASIC', num_blocks=(1, 1, 1, 1),
                    num_channels=(4, 8, 16, 32)))), [4, 8, 16, 32]),
    'DLA': (dict(type='DLA', arch=None, levels=(1, 1, 1, 2, 1, 1),
                 channels=(4, 8, 16, 16, 32, 32)), [8, 16, 16, 32, 32]),
}


@pytest.fixture(scope='session')
def tiny_backbones() -> Dict[str, Tuple[dict, List[int]]]:
    """Tiny ResNetV1c, MixVisionTransformer, HRNet and DLA configs with their out channels."""
    return TINY_BACKBONES


@pytest.fixture(scope='session')
def segmentor_step() -> Callable[[dict], None]:
    """Build a segmentor config, run a training step and a prediction at an odd size (45x61).

    Asserts a finite loss that back-propagates and a prediction of the input's size.
    """

    def step(model_cfg: dict, h: int = 45, w: int = 61) -> None:
        import torch
        from mmengine.config import ConfigDict
        from mmengine.registry import init_default_scope
        from mmengine.structures import PixelData
        from mmseg.registry import MODELS
        from mmseg.structures import SegDataSample

        import mmseg_fusion  # noqa: F401
        init_default_scope('mmseg')
        model = MODELS.build(ConfigDict(model_cfg))
        model.init_weights()
        inputs = torch.randn(2, 3, h, w)
        samples = []
        for _ in range(2):
            s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                            pad_shape=(h, w)))
            s.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, h, w)))
            samples.append(s)
        losses = model(inputs, samples, mode='loss')
        total = sum(v for k, v in losses.items() if 'loss' in k)
        assert torch.isfinite(total)
        total.backward()
        model.eval()
        with torch.no_grad():
            preds = model(inputs, samples, mode='predict')
        assert preds[0].pred_sem_seg.data.shape == (1, h, w)

    return step


@pytest.fixture(scope='session')
def train_tiny(synthetic_root, tiny_options, run_tool) -> Callable[..., List[float]]:
    """Train a synthetic-data config for a few iterations through ``tools/train.py``.

    Call as ``train_tiny(config, work_dir, iters=3)``; asserts that ``iter_<iters>.pth`` is
    written and every logged loss is finite, and returns the losses.
    """
    import math
    import re

    def train(config: str, work_dir: str, iters: int = 3) -> List[float]:
        out = run_tool([osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', work_dir,
                        '--cfg-options', *tiny_options(synthetic_root, iters=iters,
                                                       ckpt_interval=iters)])
        assert osp.isfile(osp.join(work_dir, f'iter_{iters}.pth')), out.stdout[-3000:]
        losses = [float(v) for v in re.findall(r' loss: ([-0-9.naif]+)', out.stdout)]
        assert len(losses) == iters, out.stdout[-3000:]
        assert all(math.isfinite(v) for v in losses), out.stdout[-3000:]
        return losses

    return train


@pytest.fixture(scope='session')
def method_configs() -> Callable[[str, int], list]:
    """Load every config of ``configs/<folder>``: ``method_configs(folder, count)``.

    Asserts that the folder holds ``count`` configs and that each loads mmseg_fusion with the
    exact ``custom_imports`` line; returns ``[(file name, Config), ...]`` sorted by name.
    """
    from mmengine.config import Config

    def load(folder: str, count: int) -> list:
        path = osp.join(ROOT, 'configs', folder)
        names = sorted(f for f in os.listdir(path) if f.endswith('.py'))
        assert len(names) == count, names
        configs = [(name, Config.fromfile(osp.join(path, name))) for name in names]
        for name, cfg in configs:
            assert cfg.custom_imports == dict(imports=['mmseg_fusion'],
                                              allow_failed_imports=False), name
        return configs

    return load


@pytest.fixture(scope='session')
def readme_config_links() -> Callable[[str], Tuple[set, set]]:
    """``(configs linked from configs/<folder>/README.md, configs in the folder)``."""

    def links(folder: str) -> Tuple[set, set]:
        import re
        path = osp.join(ROOT, 'configs', folder)
        with open(osp.join(path, 'README.md'), encoding='utf-8') as f:
            linked = set(re.findall(r'\]\(([^)]+\.py)\)', f.read()))
        return linked, {f for f in os.listdir(path) if f.endswith('.py')}

    return links
