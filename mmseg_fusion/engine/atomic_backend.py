"""Atomic local writes for mmengine's file I/O (checkpoints of training runs included).

mmengine's ``LocalBackend.put`` opens the target with ``'wb'`` and writes into it, so a run
killed while saving ``iter_N.pth`` leaves a truncated checkpoint under its final name (mmengine's
``last_checkpoint`` pointer is written afterwards, so ``--resume`` still picks the previous
one, but ``load_from``, ``tools/test.py`` or a publisher given that file fail). Importing
``mmseg_fusion`` registers :class:`AtomicLocalBackend` as mmengine's ``'local'`` backend (its own
extension point, ``mmengine.fileio.register_backend(..., force=True)``): ``put``/``put_text``
write through the package's atomic writer (:mod:`mmseg_fusion.utils.atomic_io`): a temporary
file next to the target, fsynced and moved into place with ``os.replace``, so the final name
holds either the old complete file or the new complete one, with the mode, symlink, hard-link
and special-file behaviour of a plain ``open``. Temporaries of killed writers are removed by
the next write of the same target (:mod:`mmseg_fusion.utils.stale_temporaries`). Reading is
unchanged. A local backend that the user or another package registered is kept
(:func:`register_atomic_local_backend`); ``MMSEG_FUSION_ENGINE=0`` turns this off.

Not covered: ``last_checkpoint`` itself, which mmengine's ``CheckpointHook`` writes with a plain
``open`` (a few bytes; a kill inside that write is the only way to leave it truncated).
"""
import warnings
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from ..utils.atomic_io import atomic_write_bytes

__all__ = ['AtomicLocalBackend', 'register_atomic_local_backend']

#: the local backends a user or another package registered, already reported (once each)
_KEPT_BACKENDS: set = set()


class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend whose writes are atomic (temporary file + ``os.replace``).

    Modes, symlinks, hard links and special files behave as with ``LocalBackend``; see
    :mod:`mmseg_fusion.utils.atomic_io`.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write bytes to ``filepath`` atomically (creating its folder).

        Args:
            obj (bytes): Data to be written.
            filepath (str | Path): Target path.
        """
        atomic_write_bytes(filepath, obj, make_folder=True)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically (creating its folder).

        Args:
            obj (str): Text to be written.
            filepath (str | Path): Target path.
            encoding (str): Text encoding. Defaults to ``'utf-8'``.
        """
        atomic_write_bytes(filepath, obj.encode(encoding), make_folder=True)


def register_atomic_local_backend(force: bool = False) -> bool:
    """Make :class:`AtomicLocalBackend` mmengine's backend for local paths (idempotent).

    Registered over mmengine's own ``LocalBackend`` only: a different backend that a user
    or another package registered for ``'local'`` or the empty prefix is kept, and a warning
    says so once.

    Args:
        force (bool): Replace whatever is registered. Defaults to False.

    Returns:
        bool: Whether :class:`AtomicLocalBackend` is now the local backend.
    """
    from mmengine.fileio.backends.registry_utils import backends, prefix_to_backends
    ours = (LocalBackend, AtomicLocalBackend)
    current = {backends.get('local'), prefix_to_backends.get('')} - {None}
    foreign = {b for b in current if b not in ours}
    if foreign and not force:
        names = ', '.join(sorted(f'{b.__module__}.{b.__qualname__}' for b in foreign))
        if names not in _KEPT_BACKENDS:
            _KEPT_BACKENDS.add(names)
            warnings.warn(
                f'mmseg_fusion: mmengine\'s local file backend is already replaced by {names}; '
                'keeping it, so local writes (checkpoints included) are not made atomic by '
                'mmseg_fusion', stacklevel=2)
        return False
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    # drop cached instances of the plain local backend
    from mmengine.fileio import io as fileio_io
    for key, backend in list(fileio_io.backend_instances.items()):
        if type(backend) is LocalBackend:
            del fileio_io.backend_instances[key]
    return True
