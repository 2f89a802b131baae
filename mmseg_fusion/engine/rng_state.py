"""Random number generator states in checkpoints, so that ``--resume`` continues a run exactly.

mmengine 0.10.7 resumes the model, optimizer, parameter schedulers and message hub, and
:class:`~mmengine.runner.IterBasedTrainLoop` replays the data order by drawing (and discarding)
the batches already trained, but the checkpoint holds no generator state: after a resume the
global ``torch`` generator restarts from the seed, so dropout (every decode head's
``dropout_ratio``) draws other masks than the uninterrupted run, and the weights part after the
first resumed iteration.

:class:`RNGStateHook` (added by ``tools/train.py``) stores the states of Python's ``random``,
numpy's global generator, torch's CPU generator and the CUDA generators under
``checkpoint['rng_states']`` (tensors and plain values: the file still loads with
``weights_only=True``) and puts them back right after the loop has drawn the batches it skips,
i.e. just before the first resumed batch is loaded. Validation is made neutral for these
generators (their states are put back after it), so that a run resumed from a checkpoint written
just before a validation continues as the uninterrupted run did.

The states are restored in single-process runs only: a checkpoint is written by rank 0, so it
holds rank 0's generators, whose numpy state (data augmentation with ``num_workers=0``) differs
from the other ranks'. Distributed runs resume as plain mmengine does, with a warning.
"""
import logging
import random
from typing import Any, Dict, Optional

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

__all__ = ['RNGStateHook', 'get_rng_states', 'set_rng_states']

#: key of the generator states in a checkpoint
CHECKPOINT_KEY = 'rng_states'


def get_rng_states() -> Dict[str, Any]:
    """The states of the global generators of Python, numpy, torch and CUDA.

    Returns:
        dict: ``python`` (tuple of ints), ``numpy`` (dict with the MT19937 ``key`` as an int64
        tensor), ``torch`` (uint8 tensor) and ``cuda`` (list of uint8 tensors, empty without
        CUDA); only tensors and plain Python values.
    """
    # the legacy global generator is the one mmcv's transforms draw from
    name, key, pos, has_gauss, cached = np.random.get_state(legacy=True)  # noqa: NPY002
    states = dict(
        python=random.getstate(),
        numpy=dict(bit_generator=str(name), key=torch.from_numpy(key.astype(np.int64)),
                   pos=int(pos), has_gauss=int(has_gauss), cached_gaussian=float(cached)),
        torch=torch.get_rng_state(),
        cuda=[])
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: Dict[str, Any]) -> None:
    """Restore states returned by :func:`get_rng_states`.

    Args:
        states (dict): The states (tensors may be on any device).
    """
    version, internal, gauss = states['python']
    random.setstate((version, tuple(internal), gauss))
    state = states['numpy']
    np.random.set_state((state['bit_generator'],  # noqa: NPY002
                         state['key'].cpu().numpy().astype(np.uint32), state['pos'],
                         state['has_gauss'], state['cached_gaussian']))
    torch.set_rng_state(states['torch'].cpu())
    cuda = states.get('cuda') or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


class _RestoreAfterSkip:
    """Wraps a loop's ``dataloader_iterator``; after ``skip`` batches, restores the states.

    The wrapper then puts the original iterator back into the loop.
    """

    def __init__(self, loop: Any, skip: int, states: Dict[str, Any]) -> None:
        self._loop = loop
        self._inner = loop.dataloader_iterator
        self._left = skip
        self._states = states

    def __iter__(self) -> '_RestoreAfterSkip':
        return self

    def __next__(self) -> Any:
        batch = next(self._inner)
        self._left -= 1
        if self._left <= 0:
            set_rng_states(self._states)
            self._loop.dataloader_iterator = self._inner
        return batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the generator states in every checkpoint; restore them when training resumes.

    See the module documentation for what is restored when. A checkpoint without the states
    (written without this hook) resumes as in plain mmengine, with a warning.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._loaded: Optional[Dict[str, Any]] = None
        self._before_val: Optional[Dict[str, Any]] = None

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """Store the states (those of the training, if called during validation)."""
        states = self._before_val if self._before_val is not None else get_rng_states()
        checkpoint[CHECKPOINT_KEY] = states

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """Keep the states of a loaded checkpoint until training starts."""
        self._loaded = checkpoint.get(CHECKPOINT_KEY)

    def before_train(self, runner: Any) -> None:
        """On a resumed run, restore the states once the loop has skipped the trained batches."""
        states, self._loaded = self._loaded, None
        loop = runner.train_loop
        if loop.iter == 0 and loop.epoch == 0:
            return  # not resumed (``load_from`` only, or a fresh run)
        if states is None:
            print_log('RNGStateHook: the resumed checkpoint holds no generator states; the run '
                      'continues with freshly seeded generators', logger='current',
                      level=logging.WARNING)
            return
        if get_world_size() > 1:
            print_log('RNGStateHook: generator states are not restored in distributed runs '
                      '(the checkpoint holds rank 0 only)', logger='current', level=logging.WARNING)
            return
        skip = loop.iter if hasattr(loop, 'dataloader_iterator') else 0
        if skip > 0:
            # IterBasedTrainLoop.run draws ``iter`` batches after ``before_train_epoch``
            loop.dataloader_iterator = _RestoreAfterSkip(loop, skip, states)
        else:
            set_rng_states(states)

    def before_val(self, runner: Any) -> None:
        """Remember the training's states: validation must not shift them."""
        self._before_val = get_rng_states()

    def after_val(self, runner: Any) -> None:
        """Put the training's states back."""
        if self._before_val is not None:
            set_rng_states(self._before_val)
            self._before_val = None
