"""A 2-process gloo run through torchrun on CPU with an unchanged (nccl) config."""
import os.path as osp

import pytest
import torch

from mmseg_fusion.engine import load_checkpoint_file


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU (gloo) path')
def test_torchrun_two_processes_on_cpu(tmp_path, repo_root, demo_config, synthetic_root,
                                       tiny_options, run_tool, free_port):
    work = str(tmp_path / 'work')
    opts = tiny_options(synthetic_root, iters=4, ckpt_interval=4)
    out = run_tool([
        '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port}',
        osp.join(repo_root, 'tools', 'train.py'), demo_config, '--launcher', 'pytorch',
        '--work-dir', work, '--cfg-options', *opts
    ], env={'OMP_NUM_THREADS': '1'})
    assert "distributed backend 'nccl' replaced by 'gloo'" in out.stdout, out.stdout[-3000:]
    assert 'Distributed launcher: pytorch' in out.stdout
    assert 'Distributed training: True' in out.stdout
    ckpt = load_checkpoint_file(osp.join(work, 'iter_4.pth'), map_location='cpu')
    assert ckpt['meta']['iter'] == 4
    # SyncBN of the mmseg config ran synchronised on CPU; the saved keys are mmseg's
    assert 'decode_head.convs.0.bn.running_mean' in ckpt['state_dict']
    # and the checkpoint tests in one process
    out = run_tool([osp.join(repo_root, 'tools', 'test.py'), demo_config,
                    osp.join(work, 'iter_4.pth'), '--work-dir', work, '--cfg-options', *opts])
    assert 'mIoU' in out.stdout
