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

:func:`register_checkpoint_loader` (called by ``import mmseg_fusion`` unless
``MMSEG_FUSION_ENGINE=0``) registers :func:`load_local_checkpoint` with mmengine's
:class:`~mmengine.runner.CheckpointLoader` for local paths, mmengine's public extension point
for loaders, over mmengine's own default loader only: a loader that the user or another package
registered for local paths is kept (and a warning says so once). mmseg's own ``tools/train.py``
and ``tools/test.py`` therefore load checkpoints once a config imports ``mmseg_fusion``.

The ways out for a trusted file that holds other objects are torch's own:

* load it yourself with ``torch.load(path, weights_only=False)`` and save its state dict;
* or set ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, which torch reads in ``torch.load`` (the values
  ``1``, ``y``, ``yes``, ``true``, any case, as in torch 2.13's ``torch/serialization.py``) to
  load with ``weights_only=False`` wherever the caller did not choose. It is honoured here
  too: the file is then loaded by mmengine's own local loader, exactly as without this
  package, after a one-line warning naming the file. Setting
  ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` as well is an error of torch's, as in ``torch.load``.
"""
import os
import os.path as osp
import pickle
import warnings
from typing import Any, Callable, List, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

__all__ = [
    'ESCAPE_HATCH', 'CheckpointSecurityError', 'escape_hatch_set', 'load_checkpoint_file',
    'load_local_checkpoint', 'mmengine_safe_globals', 'register_checkpoint_loader'
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


#: the values torch 2.13 reads as "on" in its ``TORCH_FORCE_*WEIGHTS_ONLY_LOAD`` variables
_TORCH_TRUE_VALUES = ('1', 'y', 'yes', 'true')
#: torch's escape hatch (``torch.load``) and its opposite
ESCAPE_HATCH = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'
_FORCE_WEIGHTS_ONLY = 'TORCH_FORCE_WEIGHTS_ONLY_LOAD'


def _torch_flag(name: str) -> bool:
    """Whether torch's ``torch.load`` reads the environment variable ``name`` as set."""
    return os.getenv(name, '0').lower() in _TORCH_TRUE_VALUES


def escape_hatch_set() -> bool:
    """Whether ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` asks for ``weights_only=False`` loading.

    As torch reads it: on for ``1``, ``y``, ``yes`` or ``true`` (any case); overruled by
    ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` (both set is torch's ``RuntimeError``, raised by the
    load).

    Returns:
        bool: Whether the escape hatch applies.
    """
    return _torch_flag(ESCAPE_HATCH) and not _torch_flag(_FORCE_WEIGHTS_ONLY)


def _load_as_mmengine_does(filename: str, map_location: MapLocation) -> Any:
    """Load with mmengine's own local loader, i.e. ``torch.load`` as without this package."""
    from mmengine.runner.checkpoint import load_from_local
    warnings.warn(
        f'mmseg_fusion: loading the checkpoint {filename!r} with weights_only=False because '
        f'{ESCAPE_HATCH}={os.environ[ESCAPE_HATCH]} is set: a checkpoint is a pickle and can '
        'run code while it is loaded; unset it unless you trust this file', stacklevel=3)
    with warnings.catch_warnings():
        # torch's own note on the variable, which the line above replaces
        warnings.filterwarnings('ignore', message=f'Environment variable {ESCAPE_HATCH}')
        return load_from_local(filename, map_location)


def load_checkpoint_file(filename: str, map_location: MapLocation = None) -> Any:
    """Load a checkpoint with ``weights_only=True`` plus what mmengine itself writes.

    With ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (torch's escape hatch, see
    :func:`escape_hatch_set`) the file is loaded as mmengine loads it without this package
    (``weights_only=False``), after a warning naming the file.

    Args:
        filename (str): Path of the checkpoint.
        map_location: Passed to :func:`torch.load`. Defaults to None.

    Returns:
        Any: The unpickled checkpoint (usually a dict).

    Raises:
        CheckpointSecurityError: If the file holds any other object (a class or function that
            mmengine does not write); it is not unpickled.
    """
    if escape_hatch_set():
        return _load_as_mmengine_does(filename, map_location)
    with torch.serialization.safe_globals(mmengine_safe_globals()):
        try:
            return torch.load(filename, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            raise CheckpointSecurityError(
                f'mmseg_fusion refused to load the checkpoint {filename!r}: it holds objects '
                'outside the allow-list of what mmengine writes (tensors, numpy arrays, '
                'HistoryBuffer). A checkpoint is a pickle and can run code when it is loaded. '
                'If you trust this file, either load it yourself with '
                'torch.load(path, weights_only=False) and save its state_dict, or set '
                f'{ESCAPE_HATCH}=1 (torch\'s own switch, for every torch.load of the process '
                'that does not choose weights_only) while you load it. '
                f'Details: {_unpickler_reason(err)}') from None


def _unpickler_reason(err: Exception) -> str:
    """The unpickler's reason, without torch's advice to turn ``weights_only`` off."""
    text = str(err)
    marker = 'WeightsUnpickler error:'
    if marker in text:  # torch's options come first, the unpickler's reason after the marker
        text = text.split(marker, 1)[1]
    advice = ('Weights only load failed', 'Please file an issue', 'Check the documentation')
    parts = [p.strip() for p in text.split('\n\n')]
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


#: the foreign local loaders already reported (once each)
_KEPT_LOADERS: set = set()


def register_checkpoint_loader(force: bool = False) -> bool:
    """Make mmengine load local checkpoints through :func:`load_local_checkpoint`.

    Uses ``CheckpointLoader.register_scheme`` with the empty prefix, the one mmengine's own
    local loader is registered under; nothing in mmengine is patched. Only mmengine's own
    ``load_from_local`` (or this package's loader) is replaced: a loader that the user or
    another package registered for local paths is kept, and a warning says so once.

    Args:
        force (bool): Replace whatever loader is registered. Defaults to False.

    Returns:
        bool: Whether :func:`load_local_checkpoint` is now mmengine's local loader.
    """
    from mmengine.runner import CheckpointLoader
    from mmengine.runner.checkpoint import load_from_local
    current = CheckpointLoader._schemes.get('')
    if not force and current not in (None, load_from_local, load_local_checkpoint):
        name = f'{getattr(current, "__module__", "?")}.{getattr(current, "__qualname__", current)}'
        if name not in _KEPT_LOADERS:
            _KEPT_LOADERS.add(name)
            warnings.warn(
                f'mmseg_fusion: a local checkpoint loader is already registered with '
                f"mmengine's CheckpointLoader ({name}); keeping it, so mmseg_fusion's safe "
                'loader of mmengine checkpoints on PyTorch >= 2.6 is not used by mmengine',
                stacklevel=2)
        return False
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
    return True
