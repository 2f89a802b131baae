import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner import CheckpointLoader, save_checkpoint

import mmseg_fusion  # noqa: F401  (registers the loader)
from mmseg_fusion.engine import CheckpointSecurityError, load_checkpoint_file, load_local_checkpoint


def runner_like_checkpoint(path: str) -> dict:
    """What mmengine's Runner writes: weights, optimizer, message hub, numpy objects."""
    hub = MessageHub('test_ckpt_hub')
    for i in range(3):
        hub.update_scalar('train/loss', 1.0 / (i + 1))
    hub.update_info('iter', np.int64(7))
    ckpt = dict(
        meta=dict(epoch=0, iter=7, seed=np.int64(3), dataset_meta=dict(classes=('a', 'b'))),
        state_dict={'w': torch.randn(3, 3)},
        optimizer={'state': {}, 'param_groups': [{'lr': 0.01, 'params': [0]}]},
        message_hub=hub.state_dict(),
        param_schedulers=[{'last_step': 7, 'base_values': [0.01]}],
        extra=np.arange(4, dtype=np.float32))
    save_checkpoint(ckpt, path)
    return ckpt


class Evil:
    """Runs a command when unpickled."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class EvilGetattr:
    """Reaches a non-statistics attribute of HistoryBuffer through getattr."""

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


def test_plain_torch_load_refuses_mmengine_checkpoint(tmp_path):
    # The bug being worked around: torch >= 2.6 loads with weights_only=True by default.
    path = str(tmp_path / 'iter_7.pth')
    runner_like_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_mmengine_checkpoint_loads_with_allow_list(tmp_path):
    path = str(tmp_path / 'iter_7.pth')
    ref = runner_like_checkpoint(path)
    ckpt = load_checkpoint_file(path, map_location='cpu')
    torch.testing.assert_close(ckpt['state_dict']['w'], ref['state_dict']['w'])
    assert ckpt['meta']['seed'] == 3
    np.testing.assert_array_equal(ckpt['extra'], ref['extra'])
    hub = MessageHub('loaded_hub')
    hub.load_state_dict(ckpt['message_hub'])
    buf = hub.get_scalar('train/loss')
    assert isinstance(buf, HistoryBuffer)
    assert buf.current() == pytest.approx(1.0 / 3)
    assert buf.mean() == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)


def test_mmengine_checkpoint_loader_uses_it(tmp_path):
    path = str(tmp_path / 'iter_7.pth')
    runner_like_checkpoint(path)
    assert CheckpointLoader._get_checkpoint_loader(path) is load_local_checkpoint
    ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert set(ckpt) >= {'meta', 'state_dict', 'message_hub', 'optimizer'}


@pytest.mark.parametrize('make', [lambda m: Evil(m), lambda m: EvilGetattr()],
                         ids=['os.system', 'getattr'])
def test_foreign_objects_are_refused(tmp_path, make):
    marker = str(tmp_path / 'pwned')
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'payload': make(marker)}, path)
    with pytest.raises(CheckpointSecurityError) as info:
        load_checkpoint_file(path)
    message = str(info.value)
    assert path in message and 'allow-list' in message
    assert 'system' in message or '__init__' in message
    assert not osp.exists(marker)
    # the same through mmengine's loader (what mmseg's tools call)
    with pytest.raises(CheckpointSecurityError):
        CheckpointLoader.load_checkpoint(path)
    assert not osp.exists(marker)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='can not be found'):
        load_local_checkpoint(str(tmp_path / 'nope.pth'))


def test_every_torch_load_of_ours_is_weights_only():
    """No code path of the package or its tools calls ``torch.load``/``pickle.load`` otherwise."""
    import ast

    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    calls, unsafe = 0, []
    for folder in ('mmseg_fusion', 'tools'):
        for dirpath, _, names in os.walk(osp.join(root, folder)):
            for name in (n for n in names if n.endswith('.py')):
                path = osp.join(dirpath, name)
                with open(path) as f:
                    tree = ast.parse(f.read())
                for node in ast.walk(tree):
                    if not isinstance(node, ast.Call):
                        continue
                    func = ast.unparse(node.func)
                    if func in ('pickle.load', 'pickle.loads', 'torch.load'):
                        calls += 1
                        safe = func == 'torch.load' and any(
                            k.arg == 'weights_only' and ast.unparse(k.value) == 'True'
                            for k in node.keywords)
                        if not safe:
                            unsafe.append(f'{osp.relpath(path, root)}:{node.lineno}')
    assert calls >= 1 and unsafe == [], unsafe


# ------------------------------------------------------------ torch's escape hatch, user loaders
def trusted_checkpoint(path: str) -> None:
    """A checkpoint one may trust that holds a non-weights object (an argparse.Namespace)."""
    import argparse
    torch.save({'state_dict': {'w': torch.ones(2)}, 'args': argparse.Namespace(lr=0.1)}, path)


@pytest.fixture
def torch_env(monkeypatch):
    """Neither of torch's TORCH_FORCE_*WEIGHTS_ONLY_LOAD variables set, unless a test sets it."""
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    monkeypatch.delenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', raising=False)
    return monkeypatch


def test_trusted_checkpoint_is_refused_by_default_naming_both_ways_out(tmp_path, torch_env):
    path = str(tmp_path / 'trusted.pth')
    trusted_checkpoint(path)
    for load in (load_checkpoint_file, CheckpointLoader.load_checkpoint):
        with pytest.raises(CheckpointSecurityError) as info:
            load(path)
        message = str(info.value)
        assert path in message and 'Namespace' in message
        assert 'torch.load(path, weights_only=False)' in message and 'state_dict' in message
        assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1' in message


def plain_torch_loads(path: str) -> bool:
    """Whether torch itself, in this environment, loads ``path`` when weights_only is unset."""
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            torch.load(path)
    except pickle.UnpicklingError:
        return False
    return True


@pytest.mark.parametrize('value', ['1', 'true', 'YES', 'y', '0', 'no', '', 'on', '2'])
def test_escape_hatch_is_read_as_torch_reads_it(tmp_path, torch_env, value, recwarn):
    path = str(tmp_path / 'trusted.pth')
    trusted_checkpoint(path)
    torch_env.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', value)
    torch_opens_it = plain_torch_loads(path)
    assert torch_opens_it == (value.lower() in ('1', 'true', 'yes', 'y'))
    recwarn.clear()
    if not torch_opens_it:
        with pytest.raises(CheckpointSecurityError):
            CheckpointLoader.load_checkpoint(path)
        return
    ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert ckpt['args'].lr == 0.1 and torch.equal(ckpt['state_dict']['w'], torch.ones(2))
    # one warning, naming the file and the variable; torch's own note is replaced by it
    lines = [str(w.message) for w in recwarn if 'weights_only' in str(w.message)
             or 'WEIGHTS_ONLY' in str(w.message)]
    assert len(lines) == 1 and '\n' not in lines[0], lines
    assert path in lines[0] and f'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD={value}' in lines[0]
    assert 'weights_only=False' in lines[0]


def test_escape_hatch_and_its_opposite_is_torchs_error(tmp_path, torch_env):
    path = str(tmp_path / 'iter_7.pth')
    runner_like_checkpoint(path)
    torch_env.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    torch_env.setenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(RuntimeError, match='Only one of'):
        load_checkpoint_file(path)
    # the opposite alone keeps the safe loading (which passes weights_only=True anyway)
    torch_env.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')
    np.testing.assert_array_equal(load_checkpoint_file(path)['extra'],
                                  np.arange(4, dtype=np.float32))


@pytest.fixture
def loader_table(monkeypatch):
    """mmengine's loader table and the package's "said once" memory, restored after a test."""
    from mmseg_fusion.engine import checkpoint as module
    monkeypatch.setattr(CheckpointLoader, '_schemes', dict(CheckpointLoader._schemes))
    monkeypatch.setattr(module, '_KEPT_LOADERS', set())
    return module


def test_user_registered_loader_is_kept_and_said_once(tmp_path, loader_table, recwarn):
    from mmengine.runner.checkpoint import load_from_local

    def users_loader(filename, map_location=None):
        return {'loaded_by': 'user'}

    # over mmengine's own default, ours is registered (and registering again is a no-op)
    CheckpointLoader.register_scheme('', loader=load_from_local, force=True)
    assert loader_table.register_checkpoint_loader() is True
    assert loader_table.register_checkpoint_loader() is True
    assert CheckpointLoader._get_checkpoint_loader('x.pth') is load_local_checkpoint
    assert len(recwarn) == 0
    # a loader of the user's is kept, and that is said once
    CheckpointLoader.register_scheme('', loader=users_loader, force=True)
    with pytest.warns(UserWarning, match='users_loader.*keeping it'):
        assert loader_table.register_checkpoint_loader() is False
    recwarn.clear()
    assert loader_table.register_checkpoint_loader() is False
    assert len(recwarn) == 0
    assert CheckpointLoader._get_checkpoint_loader('x.pth') is users_loader
    assert CheckpointLoader.load_checkpoint(str(tmp_path / 'any.pth')) == {'loaded_by': 'user'}
    # force replaces it
    assert loader_table.register_checkpoint_loader(force=True) is True
    assert CheckpointLoader._get_checkpoint_loader('x.pth') is load_local_checkpoint


def test_user_loader_registered_before_the_import_is_kept(run_tool, tmp_path):
    code = ('import warnings\nwarnings.simplefilter("always")\n'
            'from mmengine.runner import CheckpointLoader\n'
            'def users_loader(filename, map_location=None):\n    return {"by": "user"}\n'
            'CheckpointLoader.register_scheme("", loader=users_loader, force=True)\n'
            'import mmseg_fusion\n'
            'print("LOADER", CheckpointLoader._get_checkpoint_loader("x.pth").__name__)\n')
    out = run_tool(['-c', code]).stdout
    assert 'LOADER users_loader' in out
    assert out.count('keeping it') == 1, out
