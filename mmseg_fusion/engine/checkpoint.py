"""Safe loading of mmengine checkpoints on PyTorch >= 2.6.

Since PyTorch 2.6, ``torch.load`` defaults to ``weights_only=True``. Every checkpoint that
mmengine's ``Runner`` writes holds its ``message_hub``, whose
:class:`~mmengine.logging.HistoryBuffer` objects pickle numpy arrays and, through
``HistoryBuffer.__getstate__``, the buffer's statistics methods as
``getattr(HistoryBuffer, 'mean')``. mmengine 0.10.7 calls ``torch.load`` without arguments, so
``tools/test.py CFG CKPT``, ``--resume`` and ``load_from`` all fail with ``Unsupported global``.

Turning ``weights_only`` off would make every checkpoint a program that runs when it is loaded.
Instead this module allows exactly what mmengine writes and nothing more:

* :class:`~mmengine.logging.HistoryBuffer` and numpy's array, dtype and scalar reconstructors;
* ``builtins.getattr`` only through :func:`_history_buffer_getattr`, which resolves
  ``getattr(HistoryBuffer, name)`` for the registered statistics methods and refuses any other
  object or attribute.

:func:`register_checkpoint_loader` (called by ``import mmseg_fusion``) registers
:func:`load_local_checkpoint` with mmengine's :class:`~mmengine.runner.CheckpointLoader` for
local paths, mmengine's public extension point for loaders. mmseg's own ``tools/train.py`` and
``tools/test.py`` therefore load checkpoints once a config imports ``mmseg_fusion``.
"""
import os.path as osp
import pickle
from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

__all__ = [
    'CheckpointSecurityError', 'load_checkpoint_file', 'load_local_checkpoint',
    'mmengine_safe_globals', 'register_checkpoint_loader'
]

MapLocation = Union[None, str, torch.device, Callable, dict]


#: statistics methods every HistoryBuffer registers (``HistoryBuffer._set_default_statistics``)
_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


class CheckpointSecurityError(pickle.UnpicklingError):
    """A checkpoint holds objects that mmengine never writes, so it was not unpickled."""


def _history_buffer_getattr(obj: Any, name: str) -> Callable:
    """``getattr`` restricted to the statistics methods of :class:`HistoryBuffer`.

    ``HistoryBuffer.__getstate__`` stores its statistics methods, which pickle (protocol 2)
    writes as ``getattr(HistoryBuffer, 'min')``. This is the only call of ``getattr`` that an
    mmengine checkpoint contains.
    """
    registered = getattr(HistoryBuffer, '_statistics_methods', {})
    allowed = set(_DEFAULT_STATISTICS) | {
        key for key, fn in registered.items() if getattr(HistoryBuffer, key, None) is fn
    }
    if obj is HistoryBuffer and isinstance(name, str) and name in allowed:
        return getattr(HistoryBuffer, name)
    raise CheckpointSecurityError(
        f'checkpoint asks for getattr({getattr(obj, "__name__", type(obj).__name__)!s}, '
        f'{name!r}); only getattr(HistoryBuffer, <statistics method>) with one of '
        f'{sorted(allowed)} is allowed')


def _numpy_globals() -> List[Tuple[Any, str]]:
    """Numpy reconstructors under the names numpy 1.x and 2.x write them with."""
    multiarray = getattr(np, '_core', None)
    multiarray = multiarray.multiarray if multiarray is not None else np.core.multiarray
    found: List[Tuple[Any, str]] = [(np.ndarray, 'numpy.ndarray'), (np.dtype, 'numpy.dtype')]
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        found += [(multiarray._reconstruct, f'{module}._reconstruct'),
                  (multiarray.scalar, f'{module}.scalar')]
    # numpy >= 1.25 pickles dtypes by their class, e.g. numpy.dtypes.Float64DType.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in dir(dtypes):
            cls = getattr(dtypes, name)
            if isinstance(cls, type) and issubclass(cls, np.dtype):
                found.append((cls, f'numpy.dtypes.{name}'))
    return found


def mmengine_safe_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """Globals that checkpoints written by mmengine's ``Runner`` need.

    Returns:
        list: Entries for :func:`torch.serialization.safe_globals`.
    """
    return [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr')] + _numpy_globals()


def load_checkpoint_file(filename: str, map_location: MapLocation = None) -> Any:
    """Load a checkpoint with ``weights_only=True`` plus what mmengine itself writes.

    Args:
        filename (str): Path of the checkpoint.
        map_location: Passed to :func:`torch.load`. Defaults to None.

    Returns:
        Any: The unpickled checkpoint (usually a dict).

    Raises:
        CheckpointSecurityError: If the file holds any other object (a class or function that
            mmengine does not write); it is not unpickled.
    """
    with torch.serialization.safe_globals(mmengine_safe_globals()):
        try:
            return torch.load(filename, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            raise CheckpointSecurityError(
                f'mmseg_fusion refused to load the checkpoint {filename!r}: it holds objects '
                'outside the allow-list of what mmengine writes (tensors, numpy arrays, '
                'HistoryBuffer). A checkpoint is a pickle and can run code when it is loaded. '
                'If you trust this file, load it yourself with '
                'torch.load(path, weights_only=False) and save its state_dict. '
                f'Details: {_unpickler_reason(err)}') from None


def _unpickler_reason(err: Exception) -> str:
    """The unpickler's reason, without torch's advice to turn ``weights_only`` off."""
    advice = ('Weights only load failed', 'Please file an issue', 'Check the documentation')
    parts = [p.replace('WeightsUnpickler error:', '').strip() for p in str(err).split('\n\n')]
    return ' '.join(p for p in parts if p and not p.startswith(advice))


def load_local_checkpoint(filename: str, map_location: MapLocation = None) -> Any:
    """Loader for local paths registered with mmengine's ``CheckpointLoader``.

    Args:
        filename (str): Local path, ``~`` expanded.
        map_location: Passed to :func:`torch.load`. Defaults to None.

    Returns:
        Any: The loaded checkpoint.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return load_checkpoint_file(filename, map_location=map_location)


def register_checkpoint_loader(force: Optional[bool] = True) -> None:
    """Make mmengine load local checkpoints through :func:`load_local_checkpoint`.

    Uses ``CheckpointLoader.register_scheme`` with the empty prefix, the one mmengine's own
    local loader is registered under; nothing in mmengine is patched.
    """
    from mmengine.runner import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=force)
