"""A training run killed with SIGKILL between checkpoints and resumed ends bit-identical.

The run (``reliability_run`` in ``conftest.py``): ``tools/train.py`` on the tiny synthetic
EMANet (``EMAUHead`` keeps its EM bases as a buffer, updated by a moving average in every
training step), dropout 0.1 in both heads, 20 iterations of batch 2, a checkpoint every 2,
``randomness=dict(seed=0, deterministic=True)``, ``num_workers=0``, one intra-op thread.

What is equal, and why:

* **data order**: mmengine's ``InfiniteSampler`` draws its permutations from a generator seeded
  with the run's seed, and ``IterBasedTrainLoop`` replays a resumed run's first ``iter`` batches
  (loaded, augmented and discarded: "Advance dataloader N steps"). With ``num_workers=0`` the
  random augmentations (``RandomResize``, ``RandomCrop``, ``RandomFlip``: numpy's global
  generator) are replayed too; workers are re-seeded from the seed by mmengine's
  ``worker_init_fn``. ``test_resume_replays_the_data_order`` shows that this part alone is exact.
* **generator states**: mmengine 0.10.7 saves none, so a plain resume restarts torch's generator
  from the seed and dropout draws other masks: the weights part at the first resumed iteration
  (max |diff| of order 1e-4 in weights and 1e-3 in BN statistics after 4 resumed iterations).
  ``tools/train.py`` adds :class:`~mmseg_fusion.engine.RNGStateHook`, which saves them in every
  checkpoint and restores them once the skipped batches are drawn.

Tolerance: none. Every tensor is compared with ``torch.equal`` (see
``assert_same_training_state``).
"""
import os.path as osp
import re
import signal

import pytest
import torch

from mmseg_fusion.engine import load_checkpoint_file

BASES = 'decode_head.ema_module.bases'


def loadable(path: str) -> bool:
    """Whether ``path`` is a complete checkpoint (mmengine writes it in place, not atomically)."""
    if not osp.isfile(path):
        return False
    try:
        load_checkpoint_file(path, map_location='cpu')
    except Exception:  # noqa: BLE001 - a partly written zip fails in many ways
        return False
    return True


def latest_iter(work_dir: str) -> int:
    """The iteration of the checkpoint ``last_checkpoint`` names (what ``--resume`` loads)."""
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        name = osp.basename(f.read().strip())
    match = re.fullmatch(r'iter_(\d+)\.pth', name)
    assert match, name
    return int(match.group(1))


@pytest.mark.slow
def test_sigkill_between_checkpoints_then_resume(tmp_path, reliability_run, reliability_args,
                                                 reliability_train, start_tool, kill_group,
                                                 wait_until, run_tool,
                                                 assert_same_training_state):
    iters, every = reliability_train['iters'], reliability_train['ckpt_interval']
    work = str(tmp_path / 'killed')
    log = str(tmp_path / 'killed.log')
    proc = start_tool(reliability_args(work), log, env=reliability_train['env'])
    wait_until(lambda: loadable(osp.join(work, 'iter_4.pth')), proc, log)
    assert kill_group(proc) == -signal.SIGKILL
    # killed between checkpoints: iter_4 was complete, the run had not finished
    assert not osp.exists(osp.join(work, f'iter_{iters}.pth')), 'the run ended before the kill'
    # the latest complete checkpoint (``last_checkpoint`` is written after the file): iter_4 or
    # later, unless the kill came within microseconds of iter_4's completion
    resumed_from = latest_iter(work)
    assert every <= resumed_from < iters and resumed_from % every == 0

    out = run_tool(reliability_args(work, resume=True), env=reliability_train['env'])
    assert f'resumed epoch: 0, iter: {resumed_from}' in out.stdout, out.stdout[-3000:]
    assert f'Advance dataloader {resumed_from} steps' in out.stdout, out.stdout[-3000:]
    assert 'holds no generator states' not in out.stdout
    # every checkpoint (before the kill, and after the resume) equals the uninterrupted run's
    for it in range(every, iters + 1, every):
        assert_same_training_state(osp.join(reliability_run, f'iter_{it}.pth'),
                                   osp.join(work, f'iter_{it}.pth'))

    # the comparison covers state that moves: EM bases, momentum buffers, lr, iteration
    first = load_checkpoint_file(osp.join(work, f'iter_{every}.pth'), map_location='cpu')
    final = load_checkpoint_file(osp.join(work, f'iter_{iters}.pth'), map_location='cpu')
    assert not torch.equal(first['state_dict'][BASES], final['state_dict'][BASES])
    momentum = [s['momentum_buffer'] for s in final['optimizer']['state'].values()]
    assert momentum and all(m.abs().sum() > 0 for m in momentum)
    assert final['param_schedulers'][0]['last_step'] == iters - 1
    assert final['message_hub']['runtime_info']['iter'] == iters - 1
    assert final['meta']['iter'] == iters
    losses = final['message_hub']['log_scalars']['train/loss'].data[0]
    assert len(losses) == iters


@pytest.mark.slow
def test_resume_replays_the_data_order(tmp_path, reliability_args, reliability_train, run_tool,
                                       assert_same_training_state):
    """Without generator states and without dropout, mmengine's resume alone is exact.

    A checkpoint with ``rng_states`` removed is what plain mmengine (or mmseg's own
    ``tools/train.py``) writes; nothing else of the model draws random numbers once dropout is
    off, so equal weights after the resume mean equal batches: same sampler order, same
    augmentations.
    """
    iters = 8
    extra = [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
             f'param_scheduler.0.end={iters}', 'model.decode_head.dropout_ratio=0',
             'model.auxiliary_head.dropout_ratio=0']
    ref = str(tmp_path / 'uninterrupted')
    run_tool(reliability_args(ref, extra=extra), env=reliability_train['env'])

    work = tmp_path / 'resumed'
    work.mkdir()
    ckpt = load_checkpoint_file(osp.join(ref, 'iter_4.pth'), map_location='cpu')
    del ckpt['rng_states']
    torch.save(ckpt, work / 'iter_4.pth')
    (work / 'last_checkpoint').write_text(str(work / 'iter_4.pth'))
    out = run_tool(reliability_args(str(work), resume=True, extra=extra),
                   env=reliability_train['env'])
    assert 'resumed epoch: 0, iter: 4' in out.stdout, out.stdout[-3000:]
    assert 'holds no generator states' in out.stdout
    for it in (6, iters):
        assert_same_training_state(osp.join(ref, f'iter_{it}.pth'), str(work / f'iter_{it}.pth'),
                                   skip=('rng_states',))
