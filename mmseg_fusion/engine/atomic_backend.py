"""Atomic local writes for mmengine's file I/O (checkpoints of training runs included).

mmengine's ``LocalBackend.put`` opens the target with ``'wb'`` and writes into it, so a run
killed while saving ``iter_N.pth`` leaves a truncated checkpoint under its final name (mmengine's
``last_checkpoint`` pointer is written afterwards, so ``--resume`` still picks the previous
one, but ``load_from``, ``tools/test.py`` or a publisher given that file fail). Importing
``mmseg_fusion`` registers :class:`AtomicLocalBackend` as mmengine's ``'local'`` backend (its own
extension point, ``mmengine.fileio.register_backend(..., force=True)``): ``put``/``put_text``
write a temporary file next to the target, fsync it and move it into place with
``os.replace``, so the final name holds either the old complete file or the new complete one.
Temporaries of killed writers are removed by the next write of the same target
(:mod:`mmseg_fusion.utils.stale_temporaries`). Reading is unchanged.

Not covered: ``last_checkpoint`` itself, which mmengine's ``CheckpointHook`` writes with a plain
``open`` (a few bytes; a kill inside that write is the only way to leave it truncated).
"""
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from ..utils.stale_temporaries import remove_stale_temporaries, temporary_prefix

__all__ = ['AtomicLocalBackend', 'register_atomic_local_backend']


class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend whose writes are atomic (temporary file + ``os.replace``)."""

    def _write_atomic(self, data: bytes, filepath: Union[str, Path]) -> None:
        """Write ``data`` to ``filepath`` through a temporary file in the same folder."""
        path = str(filepath)
        folder = osp.dirname(osp.abspath(path))
        os.makedirs(folder, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path), suffix='.partial', dir=folder)
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if osp.lexists(tmp):
                os.unlink(tmp)

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write bytes to ``filepath`` atomically (creating its folder).

        Args:
            obj (bytes): Data to be written.
            filepath (str | Path): Target path.
        """
        self._write_atomic(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically (creating its folder).

        Args:
            obj (str): Text to be written.
            filepath (str | Path): Target path.
            encoding (str): Text encoding. Defaults to ``'utf-8'``.
        """
        self._write_atomic(obj.encode(encoding), filepath)


def register_atomic_local_backend() -> None:
    """Make :class:`AtomicLocalBackend` mmengine's backend for local paths (idempotent)."""
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    # drop cached instances of the plain local backend
    from mmengine.fileio import io as fileio_io
    for key, backend in list(fileio_io.backend_instances.items()):
        if type(backend) is LocalBackend:
            del fileio_io.backend_instances[key]
