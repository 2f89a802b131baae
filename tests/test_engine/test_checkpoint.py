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
