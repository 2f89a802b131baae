"""mmseg_fusion.engine.publish: training state dropped, plain meta, hashed name, atomic."""
import hashlib
import os
import os.path as osp
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from mmseg_fusion.engine.checkpoint import CheckpointSecurityError
from mmseg_fusion.engine.publish import (
    atomic_save,
    hashed_filename,
    plain_value,
    publish_checkpoint,
    publishable_checkpoint,
    sha256_file,
)


def runner_like_checkpoint():
    """What mmengine's Runner writes: weights, meta, optimizer, message hub, schedulers."""
    buf = HistoryBuffer()
    buf.update(1.5)
    buf.update(0.5)
    return {
        'meta': {'epoch': 0, 'iter': 4, 'cfg': "model = dict(type='EncoderDecoder')\n",
                 'seed': np.int64(7), 'experiment_name': 'exp', 'time': '20261122',
                 'mmengine_version': '0.10.7',
                 'dataset_meta': {'classes': ('background', 'disc'),
                                  'palette': [[0, 0, 0], np.array([1, 2, 3])]}},
        'state_dict': OrderedDict(w=torch.randn(3, 2), b=torch.zeros(3),
                                  n=torch.tensor(5)),
        'optimizer': {'state': {0: {'momentum_buffer': torch.ones(3, 2)}},
                      'param_groups': [{'lr': 0.01, 'params': [0]}]},
        'message_hub': {'log_scalars': {'train/loss': buf},
                        'runtime_info': {'iter': 4, 'arr': np.zeros(2)}},
        'param_schedulers': [{'last_step': 4}],
    }


def test_publishable_checkpoint_keeps_only_weights_and_plain_meta():
    ckpt = runner_like_checkpoint()
    out = publishable_checkpoint(ckpt)
    assert set(out) == {'state_dict', 'meta'}
    assert list(out['state_dict']) == ['w', 'b', 'n']
    torch.testing.assert_close(out['state_dict']['w'], ckpt['state_dict']['w'])
    meta = out['meta']
    assert meta['cfg'] == ckpt['meta']['cfg']
    assert meta['seed'] == 7 and type(meta['seed']) is int
    assert meta['dataset_meta'] == {'classes': ('background', 'disc'),
                                    'palette': [[0, 0, 0], [1, 2, 3]]}
    assert meta['trained_with_mmengine_version'] == '0.10.7'
    for key in ('mmseg_version', 'mmcv_version', 'torch_version', 'mmseg_fusion_version',
                'mmengine_version'):
        assert isinstance(meta[key], str) and meta[key], key
    assert meta['torch_version'] == torch.__version__


def test_publishable_checkpoint_accepts_bare_state_dict():
    out = publishable_checkpoint({'a': torch.ones(1)})
    assert list(out['state_dict']) == ['a']
    assert 'cfg' not in out['meta']


@pytest.mark.parametrize('bad, match', [
    ([1, 2], 'must be a dict'),
    ({'state_dict': {}}, 'empty'),
    ({'state_dict': {'w': [1.0]}}, r"state_dict\['w'\] is a list"),
])
def test_publishable_checkpoint_rejects(bad, match):
    with pytest.raises(ValueError, match=match):
        publishable_checkpoint(bad)


def test_plain_value():
    assert plain_value({'a': (np.float32(0.5), [np.array([1, 2])])}) == {'a': (0.5, [[1, 2]])}
    assert plain_value(torch.tensor(3)) == 3
    with pytest.raises(TypeError, match=r"meta\['x'\] is a builtins.object"):
        plain_value({'x': object()})


def test_hashed_filename():
    digest = 'abcdef0123' + '0' * 54
    assert hashed_filename('out/model.pth', digest) == osp.join('out', 'model-abcdef01.pth')
    assert hashed_filename('model', digest) == 'model-abcdef01.pth'
    with pytest.raises(ValueError, match='must name a file'):
        hashed_filename('out/.pth', digest)


def test_publish_checkpoint(tmp_path):
    src = tmp_path / 'iter_4.pth'
    torch.save(runner_like_checkpoint(), src)
    # the input is not loadable with plain weights_only=True (HistoryBuffer, numpy)
    with pytest.raises(Exception):  # noqa: B017 - torch raises UnpicklingError here
        torch.load(src, weights_only=True)
    path, sha = publish_checkpoint(str(src), str(tmp_path / 'model.pth'))
    with open(path, 'rb') as f:
        assert hashlib.sha256(f.read()).hexdigest() == sha
    assert osp.basename(path) == f'model-{sha[:8]}.pth'
    assert sha256_file(path) == sha
    loaded = torch.load(path, weights_only=True)
    assert set(loaded) == {'state_dict', 'meta'}
    assert loaded['meta']['iter'] == 4
    # no temporary files left; the same output again is refused and changes nothing
    assert sorted(os.listdir(tmp_path)) == sorted(['iter_4.pth', osp.basename(path)])
    mtime = os.stat(path).st_mtime_ns
    with pytest.raises(FileExistsError, match='refusing to overwrite'):
        publish_checkpoint(str(src), str(tmp_path / 'model.pth'))
    assert os.stat(path).st_mtime_ns == mtime
    assert sorted(os.listdir(tmp_path)) == sorted(['iter_4.pth', osp.basename(path)])


class Evil:

    def __reduce__(self):
        return (os.system, ('true',))


def test_publish_refuses_foreign_objects_and_writes_nothing(tmp_path):
    src = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'x': Evil()}, src)
    out = tmp_path / 'out'
    out.mkdir()
    with pytest.raises(CheckpointSecurityError):
        publish_checkpoint(str(src), str(out / 'model.pth'))
    assert os.listdir(out) == []


def test_publish_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    src = tmp_path / 'ckpt.pth'
    torch.save(runner_like_checkpoint(), src)
    out = tmp_path / 'out'
    out.mkdir()

    def broken_save(obj, f):
        f.write(b'partial')
        raise OSError('disk full')

    monkeypatch.setattr(torch, 'save', broken_save)
    with pytest.raises(OSError, match='disk full'):
        publish_checkpoint(str(src), str(out / 'model.pth'))
    assert os.listdir(out) == []


def test_publish_missing_input_or_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        publish_checkpoint(str(tmp_path / 'nope.pth'), str(tmp_path / 'm.pth'))
    src = tmp_path / 'ckpt.pth'
    torch.save(runner_like_checkpoint(), src)
    with pytest.raises(FileNotFoundError, match='output folder'):
        publish_checkpoint(str(src), str(tmp_path / 'missing' / 'm.pth'))


def test_atomic_save(tmp_path):
    path = str(tmp_path / 'a.pth')
    atomic_save({'x': torch.ones(2)}, path)
    with pytest.raises(FileExistsError):
        atomic_save({'x': torch.zeros(2)}, path)
    torch.testing.assert_close(torch.load(path, weights_only=True)['x'], torch.ones(2))
    atomic_save({'x': torch.zeros(2)}, path, overwrite=True)
    torch.testing.assert_close(torch.load(path, weights_only=True)['x'], torch.zeros(2))
    assert os.listdir(tmp_path) == ['a.pth']
