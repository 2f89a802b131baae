"""2-process gloo runs through torchrun (tools/dist_train.sh, dist_test.sh) on CPU.

The config is unchanged: mmseg's default runtime asks for nccl and the model uses SyncBN.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmseg_fusion.engine import load_checkpoint_file


def run_script(args, port, timeout=600):
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(port),
               OMP_NUM_THREADS='1', MMSEG_FUSION_SKIP_VERSION_CHECK='1')
    proc = subprocess.run(['bash', *map(str, args)], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU (gloo) path')
def test_torchrun_two_processes_on_cpu(tmp_path, repo_root, demo_config, synthetic_root,
                                       tiny_options, free_port):
    work = str(tmp_path / 'work')
    opts = tiny_options(synthetic_root, iters=4, ckpt_interval=4)
    out = run_script([osp.join(repo_root, 'tools', 'dist_train.sh'), demo_config, 2,
                      '--work-dir', work, '--cfg-options', *opts], free_port)
    assert "distributed backend 'nccl' replaced by 'gloo'" in out, out[-3000:]
    assert 'Distributed launcher: pytorch' in out
    assert 'Distributed training: True' in out
    # the finished runner's process group was freed before exit (see shutdown_distributed)
    assert 'still referenced' not in out, out[-3000:]
    ckpt = load_checkpoint_file(osp.join(work, 'iter_4.pth'), map_location='cpu')
    assert ckpt['meta']['iter'] == 4
    # SyncBN of the mmseg config ran synchronised on CPU; the saved keys are mmseg's
    assert 'decode_head.convs.0.bn.running_mean' in ckpt['state_dict']
    # the checkpoint tests in two processes as well
    out = run_script([osp.join(repo_root, 'tools', 'dist_test.sh'), demo_config,
                      osp.join(work, 'iter_4.pth'), 2, '--work-dir', work, '--cfg-options',
                      *opts], free_port + 1 if free_port < 65535 else free_port - 1)
    assert 'mIoU' in out and 'Load checkpoint from' in out
    assert 'still referenced' not in out, out[-3000:]
