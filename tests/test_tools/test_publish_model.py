"""tools/misc/publish_model.py on a checkpoint written by a real (tiny) training run."""
import hashlib
import os
import os.path as osp
import re

import pytest
import torch
from mmengine.logging import HistoryBuffer

PUBLISH = ('tools', 'misc', 'publish_model.py')


def test_publish_cli(tmp_path, repo_root, run_tool):
    buf = HistoryBuffer()
    buf.update(0.25)
    src = tmp_path / 'iter_8.pth'
    torch.save({'state_dict': {'w': torch.randn(2, 2)}, 'message_hub': {'loss': buf},
                'optimizer': {'state': {}}, 'meta': {'iter': 8, 'cfg': 'x = 1\n'}}, src)
    proc = run_tool([osp.join(repo_root, *PUBLISH), str(src), str(tmp_path / 'm.pth')])
    sha = re.search(r'sha256: ([0-9a-f]{64})', proc.stdout).group(1)
    path = tmp_path / f'm-{sha[:8]}.pth'
    assert f'published: {path}' in proc.stdout
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    assert torch.load(path, weights_only=True)['meta']['iter'] == 8
    proc = run_tool([osp.join(repo_root, *PUBLISH), str(src), str(tmp_path / 'm.pth')],
                    check=False)
    assert proc.returncode == 1 and 'refusing to overwrite' in proc.stdout


@pytest.mark.slow
def test_publish_real_checkpoint(tmp_path, repo_root, demo_config, synthetic_root, tiny_options,
                                 run_tool):
    work = tmp_path / 'work'
    run_tool([osp.join(repo_root, 'tools', 'train.py'), demo_config, '--work-dir', str(work),
              '--cfg-options', *tiny_options(synthetic_root, iters=2, ckpt_interval=2)])
    src = work / 'iter_2.pth'
    raw = torch.load(src, weights_only=False)
    assert {'optimizer', 'message_hub'} <= set(raw)

    publish = osp.join(repo_root, *PUBLISH)
    out_dir = tmp_path / 'zoo'
    out_dir.mkdir()
    proc = run_tool([publish, str(src), str(out_dir / 'fcn_synthetic.pth')])
    sha = re.search(r'sha256: ([0-9a-f]{64})', proc.stdout).group(1)
    files = os.listdir(out_dir)
    assert files == [f'fcn_synthetic-{sha[:8]}.pth'], files
    path = out_dir / files[0]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha

    ckpt = torch.load(path, weights_only=True)
    assert set(ckpt) == {'state_dict', 'meta'}
    assert set(ckpt['state_dict']) == set(raw['state_dict'])
    for key, value in raw['state_dict'].items():
        torch.testing.assert_close(ckpt['state_dict'][key], value)
    meta = ckpt['meta']
    assert 'EncoderDecoder' in meta['cfg'] and meta['iter'] == 2
    assert tuple(meta['dataset_meta']['classes'])[:2] == ('background', 'disc')
    for key in ('mmseg_version', 'mmcv_version', 'torch_version', 'mmseg_fusion_version'):
        assert meta[key]

    # a second run would produce the same name: refused, nothing changed
    before = path.read_bytes()
    proc = run_tool([publish, str(src), str(out_dir / 'fcn_synthetic.pth')], check=False)
    assert proc.returncode == 1 and 'refusing to overwrite' in proc.stdout
    assert path.read_bytes() == before and os.listdir(out_dir) == files


class Planted:
    """Unpickling it would create ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_publish_refuses_foreign_pickle(tmp_path, repo_root, run_tool):
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'x': Planted(marker)}, evil)
    out_dir = tmp_path / 'zoo'
    out_dir.mkdir()
    proc = run_tool([osp.join(repo_root, *PUBLISH), str(evil), str(out_dir / 'm.pth')],
                    check=False)
    assert proc.returncode == 1
    assert 'refused to load' in proc.stdout
    assert not marker.exists() and os.listdir(out_dir) == []
