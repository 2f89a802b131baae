"""Two CPU runs with the same seed and ``deterministic=True`` write bit-identical checkpoints.

The run is ``reliability_run`` (``conftest.py``): ``tools/train.py`` on the tiny synthetic EMANet,
dropout on, 20 iterations, a checkpoint every 2, ``randomness=dict(seed=0, deterministic=True)``,
``num_workers=0``, one intra-op thread (``OMP_NUM_THREADS=1``: CPU kernels split reductions over
threads, so the thread count must be the same in the runs compared). Every checkpoint is compared
with ``torch.equal`` per tensor, no tolerance (``assert_same_training_state``).

What ``randomness.deterministic=True`` does (mmengine 0.10.7 ``set_random_seed``): seeds
``random``, numpy, torch (and every CUDA device), sets ``torch.backends.cudnn.deterministic =
True`` and ``cudnn.benchmark = False`` (it runs after ``env_cfg``, so it overrides mmseg's
``cudnn_benchmark=True``), and calls ``torch.use_deterministic_algorithms(True)`` *without*
``warn_only``. On CPU every op these models use has a deterministic kernel, hence this test.

On GPU (from PyTorch's documentation and sources; not run here, the test machine has no GPU):

* ``use_deterministic_algorithms(True)`` makes every op without a deterministic CUDA kernel
  raise ``RuntimeError: <op> does not have a deterministic implementation, but you set
  'torch.use_deterministic_algorithms(True)'``. Training any mmseg segmentor hits
  ``upsample_bilinear2d_backward_out_cuda`` (atomicAdd) at the first backward: every decode
  head resizes its logits bilinearly to the label size in ``loss_by_feat``, and our necks and
  multi-scale segmentors upsample features. AFA's channel attention adds
  ``adaptive_max_pool2d_backward_cuda``; ``adaptive_avg_pool2d(x, 1)`` is computed as a mean
  and passes. Validation hits ``histc`` on CUDA (mmseg's ``IoUMetric`` counts areas with
  ``torch.histc`` on the prediction's device). ``nll_loss2d`` raises only for a ``mean``/``sum``
  reduction; mmseg's ``CrossEntropyLoss`` calls it with ``reduction='none'``, so it passes.
* cuBLAS (the ``bmm``/``einsum`` of EM, criss-cross and double attention; MiT's linear layers)
  raises with CUDA >= 10.2 unless ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (or ``:16:8``) is set
  before the process starts.
* Index ops switch to deterministic (slower) kernels instead of raising: ``index_add``,
  ``scatter_add_``, ``gather`` backward, ``index_select`` backward, ``index_put`` (sort-based
  accumulation).
* So ``deterministic=True`` GPU training fails as configured; with ``deterministic=False`` (the
  configs' default) repeated GPU runs differ: cuDNN's benchmark may choose other convolution
  algorithms per run, and atomicAdd kernels (bilinear-upsample backward, non-deterministic index
  and scatter paths) sum in a varying order. The last-bit differences grow over iterations, so
  GPU runs can only be compared with a tolerance (or with ``warn_only=True`` plus
  ``CUBLAS_WORKSPACE_CONFIG``, accepting the atomics that remain).
"""
import os.path as osp

import pytest


@pytest.mark.slow
def test_same_seed_gives_identical_checkpoints(tmp_path, reliability_run, reliability_args,
                                               reliability_train, run_tool,
                                               assert_same_training_state):
    work = str(tmp_path / 'second')
    run_tool(reliability_args(work), env=reliability_train['env'])
    iters, every = reliability_train['iters'], reliability_train['ckpt_interval']
    for it in range(every, iters + 1, every):
        assert_same_training_state(osp.join(reliability_run, f'iter_{it}.pth'),
                                   osp.join(work, f'iter_{it}.pth'))
