"""End to end on generated data: train, test from the checkpoint, resume.

Once through our ``tools/`` and once through mmseg's own ``tools/train.py``/``tools/test.py``
(shipped in ``mmseg/.mim/tools``) with a config that only adds ``custom_imports``.
"""
import os.path as osp
import re

import mmseg
import pytest
import torch

MMSEG_TOOLS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')


def tools_of(kind: str, repo_root: str) -> tuple:
    base = osp.join(repo_root, 'tools') if kind == 'ours' else MMSEG_TOOLS
    return osp.join(base, 'train.py'), osp.join(base, 'test.py')


def assert_miou_table(output: str) -> float:
    assert re.search(r'\|\s*Class\s*\|\s*IoU\s*\|\s*Acc\s*\|', output), output[-3000:]
    for name in ('background', 'disc', 'square', 'triangle', 'ring'):
        assert re.search(rf'\|\s*{name}\s*\|', output), name
    match = re.search(r'mIoU: ([0-9.]+)', output)
    assert match, output[-3000:]
    return float(match.group(1))


@pytest.mark.parametrize('kind', ['ours', 'mmseg'])
def test_train_test_resume(kind, tmp_path, repo_root, demo_config, synthetic_root,
                           tiny_options, run_tool):
    train_py, test_py = tools_of(kind, repo_root)
    work = str(tmp_path / 'work')
    opts = tiny_options(synthetic_root, iters=4, ckpt_interval=2)
    out = run_tool([train_py, demo_config, '--work-dir', work, '--cfg-options', *opts])
    assert osp.isfile(osp.join(work, 'iter_4.pth')), out.stdout[-3000:]
    assert_miou_table(out.stdout)

    # test from the checkpoint (torch >= 2.6 refuses it without mmseg_fusion's loader)
    out = run_tool([test_py, demo_config, osp.join(work, 'iter_4.pth'), '--work-dir', work,
                    '--cfg-options', *opts])
    assert 'Load checkpoint from' in out.stdout
    assert_miou_table(out.stdout)

    # resume from the latest checkpoint and train two more iterations
    opts6 = tiny_options(synthetic_root, iters=6, ckpt_interval=2)
    out = run_tool([train_py, demo_config, '--work-dir', work, '--resume', '--cfg-options',
                    *opts6])
    assert re.search(r'resumed epoch: \d+, iter: 4', out.stdout), out.stdout[-3000:]
    assert 'Iter(train) [5/6]' in out.stdout
    ckpt = torch.load(osp.join(work, 'iter_6.pth'), weights_only=False)
    assert ckpt['meta']['iter'] == 6


def test_load_from_in_config(tmp_path, demo_config, synthetic_root, tiny_options, run_tool,
                             repo_root):
    train_py, _ = tools_of('mmseg', repo_root)
    work = str(tmp_path / 'a')
    opts = tiny_options(synthetic_root, iters=2, ckpt_interval=2)
    run_tool([train_py, demo_config, '--work-dir', work, '--cfg-options', *opts])
    out = run_tool([train_py, demo_config, '--work-dir', str(tmp_path / 'b'), '--cfg-options',
                    *opts, f'load_from={osp.join(work, "iter_2.pth")}'])
    assert 'Load checkpoint from' in out.stdout


def test_planted_checkpoint_is_refused_by_mmseg_tools(tmp_path, demo_config, synthetic_root,
                                                      tiny_options, run_tool, repo_root):
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    # a pickle whose loading would run a shell command
    code = ('import os, torch\n'
            'class E:\n'
            f'    def __reduce__(self): return (os.system, ("touch {marker}",))\n'
            f'torch.save({{"state_dict": {{}}, "x": E()}}, "{evil}")\n')
    run_tool(['-c', code])
    for kind in ('ours', 'mmseg'):
        _, test_py = tools_of(kind, repo_root)
        out = run_tool([test_py, demo_config, str(evil), '--work-dir', str(tmp_path / kind),
                        '--cfg-options', *tiny_options(synthetic_root)], check=False)
        assert out.returncode != 0
        assert 'refused to load the checkpoint' in out.stdout, out.stdout[-3000:]
        assert not marker.exists()
