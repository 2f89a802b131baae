"""mmseg_fusion.engine.rng_state: generator states saved, restored after the skipped batches.

The end-to-end check (SIGKILL, ``--resume``, bit-identical checkpoints) is
``tests/test_reliability/test_kill_resume.py``.
"""
import io
import random
from types import SimpleNamespace

import numpy as np
import torch
from mmengine.registry import HOOKS

from mmseg_fusion.engine import RNGStateHook, get_rng_states, set_rng_states


def draws() -> tuple:
    """One number from each global generator."""
    return random.random(), np.random.rand(), torch.rand(3)  # noqa: NPY002


def same_draws(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])


def test_round_trip_through_a_weights_only_file():
    np.random.randn()  # noqa: NPY002 - a cached Gaussian is part of numpy's state
    states = get_rng_states()
    expected = draws()
    buffer = io.BytesIO()
    torch.save(states, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    draws()
    set_rng_states(loaded)
    assert same_draws(draws(), expected)


def test_registered():
    assert HOOKS.get('RNGStateHook') is RNGStateHook


def runner(iter_: int, batches=range(10)) -> SimpleNamespace:
    loop = SimpleNamespace(iter=iter_, epoch=0, dataloader_iterator=iter(batches))
    return SimpleNamespace(train_loop=loop)


def test_restored_after_the_skipped_batches():
    hook = RNGStateHook()
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    expected = draws()

    def loader():
        """Batches whose loading draws random numbers (augmentation with num_workers=0)."""
        for i in range(10):
            draws()
            yield i

    resumed = runner(3, loader())
    inner = resumed.train_loop.dataloader_iterator
    hook.after_load_checkpoint(resumed, checkpoint)
    hook.before_train(resumed)
    # the loop draws the 3 trained batches, then trains
    for i in range(3):
        assert next(resumed.train_loop.dataloader_iterator) == i
    assert same_draws(draws(), expected)
    assert resumed.train_loop.dataloader_iterator is inner  # the wrapper removed itself
    assert next(resumed.train_loop.dataloader_iterator) == 3


def test_nothing_restored_without_resume_or_states():
    hook = RNGStateHook()
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    draws()
    # load_from (iteration 0), and a resumed checkpoint written without the hook
    for run, loaded in ((runner(0), checkpoint), (runner(2), {})):
        inner = run.train_loop.dataloader_iterator
        hook.after_load_checkpoint(run, loaded)
        before = get_rng_states()['torch']
        hook.before_train(run)
        assert run.train_loop.dataloader_iterator is inner
        assert next(inner) == 0
        assert torch.equal(get_rng_states()['torch'], before)


def test_validation_does_not_shift_the_training_streams():
    hook = RNGStateHook()
    hook.before_val(None)
    states = get_rng_states()
    expected = draws()
    set_rng_states(states)
    draws()  # what validation draws
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)  # e.g. a best checkpoint saved in validation
    hook.after_val(None)
    assert same_draws(draws(), expected)
    set_rng_states(checkpoint['rng_states'])
    assert same_draws(draws(), expected)
