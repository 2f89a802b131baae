"""Shared fixtures.

Test files are collected with ``--import-mode=importlib`` and never import each other (the
mmsegmentation wheel installs a top-level ``tests`` package); shared helpers live here as
fixtures, and the naive references in :mod:`mmseg_fusion.testing`.
"""
import os
import os.path as osp
import socket
import subprocess
import sys
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(ROOT, 'configs', 'synthetic', 'fcn_r18-d8_1xb8-600_synthetic-128x128.py')


@pytest.fixture(scope='session')
def repo_root() -> str:
    """Absolute path of the repository."""
    return ROOT


# ------------------------------------------------------------ --device: the tests on a GPU
#: the folders of ``tests/`` whose tests run with ``torch.set_default_device(--device)``
DEVICE_FOLDERS = ('test_functional', 'test_layers', 'test_models')


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--device cpu|cuda``: the default device of the model and functional tests."""
    parser.addoption(
        '--device', choices=('cpu', 'cuda'), default='cpu',
        help='default torch device of the tests under tests/test_functional, '
             'tests/test_layers and tests/test_models (torch.set_default_device); a test '
             'that creates a tensor on the wrong device fails there (default: cpu)')


def pytest_configure(config: pytest.Config) -> None:
    """Refuse ``--device cuda`` where CUDA is not available (a usage error, exit code 4)."""
    if config.getoption('--device', 'cpu') == 'cuda':
        import torch
        if not torch.cuda.is_available():
            raise pytest.UsageError(
                '--device cuda: CUDA is not available (torch.cuda.is_available() is False; '
                f'torch {torch.__version__}, built with CUDA {torch.version.cuda}); run on a '
                'machine with an NVIDIA GPU and a CUDA build of torch, or use --device cpu')


@pytest.fixture(autouse=True)
def default_device(request: pytest.FixtureRequest) -> Iterator[str]:
    """The ``--device`` of this test: set as torch's default device for the tests of
    :data:`DEVICE_FOLDERS` (before their function-scoped fixtures run; session- and
    module-scoped fixtures are built on the CPU), restored afterwards; ``'cpu'`` elsewhere."""
    device = request.config.getoption('--device')
    try:
        folder = request.node.path.relative_to(osp.join(ROOT, 'tests')).parts[0]
    except ValueError:  # a test outside tests/
        folder = None
    if device == 'cpu' or folder not in DEVICE_FOLDERS:
        yield 'cpu'
        return
    import torch
    previous = torch.empty(()).device  # (torch.get_default_device needs torch >= 2.3)
    torch.set_default_device(device)
    try:
        yield device
    finally:
        # None removes the device mode again (no mode at all is torch's own CPU default)
        torch.set_default_device(None if previous.type == 'cpu' else previous)


def _script_loader(folder: str) -> Callable:
    """``load(name)``: import ``<folder>/<name>.py`` of the repository as a module, once."""
    import importlib.util
    cache: Dict[str, object] = {}

    def load(name: str):
        if name not in cache:
            path = osp.join(ROOT, folder, f'{name}.py')
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            cache[name] = module
        return cache[name]

    return load


@pytest.fixture(scope='session')
def analysis_tool() -> Callable:
    """Import a script of ``tools/analysis`` by name (``analysis_tool('benchmark_onnx')``)."""
    return _script_loader(osp.join('tools', 'analysis'))


@pytest.fixture(scope='session')
def benchmark_script() -> Callable:
    """Import a script of ``benchmarks/`` by name (``benchmark_script('neck_complexity')``)."""
    return _script_loader('benchmarks')


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

    Call as ``tiny_options(data_root, iters=4, ckpt_interval=2, crop=64)``; the options of
    :func:`mmseg_fusion.testing.tiny_options` (one definition for the tests and
    ``benchmarks/dist_soak.py``).
    """
    from mmseg_fusion.testing import tiny_options as options

    def make(data_root: str, iters: int = 4, ckpt_interval: int = 2,
             crop: int = 64) -> List[str]:
        return options(data_root, iters, ckpt_interval, crop)

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


# ------------------------------------------------------ processes that are killed (reliability)
@pytest.fixture(scope='session')
def start_tool() -> Callable[..., subprocess.Popen]:
    """Start a Python script in a fresh interpreter, in its own process group, without waiting.

    Call as ``proc = start_tool([script, arg, ...], log_file, env=None)``: stdout and stderr go
    to ``log_file``; the environment is ``run_tool``'s. The group (the process and any workers
    it forks) can be killed at once with ``kill_group(proc)``; groups still running at the end
    of the session are killed.
    """
    import signal

    started: List[subprocess.Popen] = []

    def start(args: Sequence[str], log_file: str, env: dict = None,
              cwd: str = ROOT) -> subprocess.Popen:
        full_env = dict(os.environ, PYTHONUNBUFFERED='1', MMSEG_FUSION_SKIP_VERSION_CHECK='1')
        full_env.pop('LOCAL_RANK', None)
        full_env.update(env or {})
        with open(log_file, 'w') as log:
            proc = subprocess.Popen([sys.executable, *map(str, args)], cwd=cwd, env=full_env,
                                    stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope='session')
def kill_group() -> Callable[[subprocess.Popen], int]:
    """SIGKILL the process group of a ``start_tool`` process; returns the process's exit code.

    A process that has already exited is not signalled (its code is returned as it is).
    """
    import contextlib
    import signal

    def kill(proc: subprocess.Popen) -> int:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=60)

    return kill


@pytest.fixture(scope='session')
def wait_until() -> Callable[..., None]:
    """Poll until a condition holds: ``wait_until(condition, proc, log_file, timeout=300)``.

    Fails (showing the end of ``log_file``) if ``proc`` exits first or ``timeout`` seconds
    pass. Polls every 2 ms, so that a file that exists only briefly is seen.
    """
    import time

    def wait(condition: Callable[[], bool], proc: subprocess.Popen, log_file: str,
             timeout: float = 300, interval: float = 0.002) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if proc.poll() is not None:
                with open(log_file) as f:
                    tail = f.read()[-4000:]
                pytest.fail(f'the process exited ({proc.returncode}) before the condition '
                            f'held:\n{tail}')
            if time.monotonic() > deadline:
                pytest.fail(f'the condition did not hold within {timeout} s')
            time.sleep(interval)

    return wait


#: the run the reliability tests kill, resume and repeat: tiny EMANet (its EM bases are a
#: buffer of the state dict), dropout on, 20 iterations, a checkpoint every 2, deterministic
RELIABILITY_CONFIG = osp.join(ROOT, 'configs', 'emanet',
                              'emanet_r18-d8_1xb8-600_synthetic-128x128.py')
RELIABILITY_ITERS = 20
#: one intra-op thread in every run, so that no reduction depends on the machine's core count
SINGLE_THREAD_ENV = dict(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')


@pytest.fixture(scope='session')
def reliability_train() -> Dict[str, object]:
    """What ``reliability_run`` trains: ``config``, ``iters``, ``ckpt_interval`` and ``env``."""
    return dict(config=RELIABILITY_CONFIG, iters=RELIABILITY_ITERS, ckpt_interval=2,
                env=dict(SINGLE_THREAD_ENV))


@pytest.fixture(scope='session')
def reliability_args(synthetic_root, tiny_options,
                     reliability_train) -> Callable[..., List[str]]:
    """``tools/train.py`` arguments of the reliability run: ``reliability_args(work_dir)``.

    Pass ``resume=True`` for ``--resume`` and ``extra=[...]`` for more ``--cfg-options``.
    """

    def args(work_dir: str, resume: bool = False, extra: Sequence[str] = ()) -> List[str]:
        opts = tiny_options(synthetic_root, iters=reliability_train['iters'],
                            ckpt_interval=reliability_train['ckpt_interval'])
        return [osp.join(ROOT, 'tools', 'train.py'), reliability_train['config'],
                '--work-dir', str(work_dir), *(['--resume'] if resume else []),
                '--cfg-options', *opts, 'randomness.deterministic=True', *extra]

    return args


@pytest.fixture(scope='session')
def reliability_run(tmp_path_factory, reliability_args, reliability_train, run_tool) -> str:
    """Work dir of one uninterrupted reliability run (made once per session).

    Its output is in ``<work_dir>/stdout.log``.
    """
    work_dir = str(tmp_path_factory.mktemp('reliability') / 'uninterrupted')
    out = run_tool(reliability_args(work_dir), env=reliability_train['env'])
    with open(osp.join(work_dir, 'stdout.log'), 'w') as f:
        f.write(out.stdout)
    return work_dir


#: message-hub entries that record wall-clock times or paths, not training state
UNCOMPARED_HUB_KEYS = ('train/time', 'train/data_time', 'eta', 'last_ckpt', 'experiment_name',
                       'cfg', 'mmengine_version', 'time')


@pytest.fixture(scope='session')
def assert_same_training_state() -> Callable[[str, str], None]:
    """Assert that two training checkpoints hold bit-identical training state.

    Call as ``assert_same_training_state(path_a, path_b, skip=())`` (``skip``: top-level keys
    left out, e.g. ``('rng_states',)``). Compared with ``torch.equal`` (no
    tolerance) or ``==``: every tensor of ``state_dict`` (EMAU's EM bases included), the whole
    ``optimizer`` state (momentum buffers, param groups), ``param_schedulers``, the generator
    states (``rng_states``), ``meta`` ``epoch``/``iter``/``seed``/``dataset_meta`` and the
    message hub (``runtime_info`` such as ``iter``, and the logged losses, accuracies and
    learning rates), all but the entries in ``UNCOMPARED_HUB_KEYS``.
    """
    import numpy as np
    import torch

    from mmseg_fusion.engine import load_checkpoint_file

    def same(a, b, where: str) -> None:
        if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
            assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor), where
            assert a.dtype == b.dtype and a.shape == b.shape, where
            assert torch.equal(a, b), (
                f'{where}: max |a - b| = {(a.double() - b.double()).abs().max().item():.3g}')
        elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            assert np.array_equal(a, b), f'{where}: {a} != {b}'
        elif hasattr(a, 'data') and type(a).__name__ == 'HistoryBuffer':
            same(a.data, b.data, where)
        elif isinstance(a, dict):
            assert isinstance(b, dict), where
            keys = [k for k in a if k not in UNCOMPARED_HUB_KEYS]
            assert sorted(map(str, keys)) == sorted(
                str(k) for k in b if k not in UNCOMPARED_HUB_KEYS), where
            for key in keys:
                same(a[key], b[key], f'{where}[{key!r}]')
        elif isinstance(a, (list, tuple)):
            assert isinstance(b, (list, tuple)) and len(a) == len(b), where
            for i, (x, y) in enumerate(zip(a, b)):
                same(x, y, f'{where}[{i}]')
        else:
            assert a == b, f'{where}: {a!r} != {b!r}'

    def check(path_a: str, path_b: str, skip: Sequence[str] = ()) -> None:
        a = load_checkpoint_file(path_a, map_location='cpu')
        b = load_checkpoint_file(path_b, map_location='cpu')
        for key in ('state_dict', 'optimizer', 'param_schedulers', 'rng_states',
                    'message_hub'):
            if key in skip:
                continue
            assert key in a and key in b, f'{key} missing in {path_a} or {path_b}'
            same(a[key], b[key], key)
        for key in ('epoch', 'iter', 'seed', 'dataset_meta'):
            same(a['meta'][key], b['meta'][key], f'meta[{key!r}]')

    return check


@pytest.fixture(scope='module')
def one_thread() -> Iterator[None]:
    """One intra-op thread for a module of tiny-tensor tests (OpenMP threads only add overhead,
    10x and more on a loaded machine): ``pytestmark = pytest.mark.usefixtures('one_thread')``."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
