"""mmengine's local writes (checkpoints included) go through a temporary file and os.replace."""
import os
import subprocess
import sys

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import save_checkpoint

import mmseg_fusion  # noqa: F401  (registers the backend)
from mmseg_fusion.engine import AtomicLocalBackend


def test_local_paths_use_the_atomic_backend(tmp_path):
    assert type(get_file_backend(str(tmp_path / 'x.pth'))) is AtomicLocalBackend
    assert type(get_file_backend(str(tmp_path / 'x.pth'), enable_singleton=True)) \
        is AtomicLocalBackend


def test_put_replaces_whole_files_and_leaves_no_temporary(tmp_path, monkeypatch):
    backend = AtomicLocalBackend()
    target = tmp_path / 'sub' / 'a.bin'
    backend.put(b'old', target)
    backend.put_text('new text', target)
    assert target.read_text() == 'new text'
    assert os.listdir(target.parent) == ['a.bin']
    # a failure while writing keeps the old complete file and removes the temporary one

    def broken_fsync(fd):
        raise OSError('disk full')
    monkeypatch.setattr(os, 'fsync', broken_fsync)
    with pytest.raises(OSError, match='disk full'):
        backend.put(b'never', target)
    assert target.read_text() == 'new text' and os.listdir(target.parent) == ['a.bin']


def test_mmengine_save_checkpoint_is_atomic(tmp_path):
    path = tmp_path / 'iter_2.pth'
    save_checkpoint({'state_dict': {'w': torch.ones(3)}}, str(path))
    assert torch.equal(torch.load(path, weights_only=True)['state_dict']['w'], torch.ones(3))
    assert os.listdir(tmp_path) == ['iter_2.pth']


def test_registered_in_a_fresh_process_by_the_import():
    code = ('import mmseg_fusion\nfrom mmengine.fileio import get_file_backend\n'
            "print(type(get_file_backend('x.pth')).__name__)")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().endswith('AtomicLocalBackend')


@pytest.fixture
def backend_table():
    """mmengine's file-backend tables and the package's "said once" memory, restored after."""
    from mmengine.fileio.backends.registry_utils import backends, prefix_to_backends

    from mmseg_fusion.engine import atomic_backend as module
    saved = dict(backends), dict(prefix_to_backends), set(module._KEPT_BACKENDS)
    module._KEPT_BACKENDS.clear()
    yield module
    backends.clear()
    backends.update(saved[0])
    prefix_to_backends.clear()
    prefix_to_backends.update(saved[1])
    module._KEPT_BACKENDS.clear()
    module._KEPT_BACKENDS.update(saved[2])


def test_user_registered_local_backend_is_kept_and_said_once(tmp_path, backend_table,
                                                              recwarn):
    from mmengine.fileio import LocalBackend, register_backend

    class UsersBackend(LocalBackend):
        pass

    # over mmengine's own LocalBackend, ours is registered (again: a no-op)
    register_backend('local', LocalBackend, force=True, prefixes='')
    assert backend_table.register_atomic_local_backend() is True
    assert backend_table.register_atomic_local_backend() is True
    assert type(get_file_backend(str(tmp_path / 'x.pth'))) is AtomicLocalBackend
    assert len(recwarn) == 0
    register_backend('local', UsersBackend, force=True, prefixes='')
    with pytest.warns(UserWarning, match='UsersBackend; keeping it'):
        assert backend_table.register_atomic_local_backend() is False
    recwarn.clear()
    assert backend_table.register_atomic_local_backend() is False
    assert len(recwarn) == 0
    assert type(get_file_backend(str(tmp_path / 'x.pth'))) is UsersBackend
    assert backend_table.register_atomic_local_backend(force=True) is True
    assert type(get_file_backend(str(tmp_path / 'x.pth'))) is AtomicLocalBackend
