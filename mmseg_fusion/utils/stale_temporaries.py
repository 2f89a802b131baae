"""Names of the temporary files of atomic writes, and removal of those a killed run left.

Atomic writers (:func:`mmseg_fusion.engine.publish.atomic_save`, the publisher, the converters,
the synthetic-data generator) write next to their target under a hidden name that carries the
writer's process id, ``.<target name>.pid<PID>-<random>...``, and move the result into place
when it is complete. A run killed with SIGKILL cannot clean up, so each writer first removes the
temporaries of the same target whose process is no longer alive (on this host). A temporary of a
live process, or of a process id that was reused meanwhile, is kept: removal errs on the safe
side.
"""
import os
import os.path as osp
import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterator, List

__all__ = ['atomic_folder', 'remove_stale_temporaries', 'temporary_prefix']


def temporary_prefix(path: str, kind: str = '') -> str:
    """Prefix of a temporary name for ``path`` written by this process.

    Args:
        path (str): The final target (file or folder).
        kind (str): A tag after the process id, e.g. ``'partial-'``. Defaults to ''.

    Returns:
        str: ``.<basename>.pid<PID>-<kind>`` (for ``tempfile.mkstemp``/``mkdtemp``).
    """
    return f'.{osp.basename(osp.abspath(path))}.pid{os.getpid()}-{kind}'


def _alive(pid: int) -> bool:
    """Whether a process with this id exists (on this host)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def remove_stale_temporaries(path: str) -> List[str]:
    """Remove the temporaries of ``path`` whose writing process is dead.

    Args:
        path (str): The final target whose temporaries (``.<basename>.pid<PID>-*`` in its
            folder) are looked for.

    Returns:
        list[str]: The paths removed.
    """
    folder = osp.dirname(osp.abspath(path))
    stem = f'.{osp.basename(osp.abspath(path))}.pid'
    removed: List[str] = []
    if not osp.isdir(folder):
        return removed
    for entry in os.listdir(folder):
        if not entry.startswith(stem):
            continue
        digits = entry[len(stem):].split('-', 1)[0]
        if not digits.isdigit() or int(digits) == os.getpid() or _alive(int(digits)):
            continue
        full = osp.join(folder, entry)
        try:
            if osp.isdir(full) and not osp.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
        except FileNotFoundError:  # removed by a concurrent writer
            continue
        removed.append(full)
    return removed


@contextmanager
def atomic_folder(out_dir: str, owner: str, overwrite: bool = False) -> Iterator[str]:
    """Write a folder atomically: yield a temporary folder, move it to ``out_dir`` when done.

    The temporary folder is created next to ``out_dir`` (after removing the temporaries of
    killed writers of the same target); when the ``with`` block ends normally it replaces
    ``out_dir``, otherwise it is removed and ``out_dir`` is left as it was.

    Args:
        out_dir (str): The target folder; must not exist or be empty unless ``overwrite``.
        owner (str): The writer's name, for the error message.
        overwrite (bool): Replace a non-empty ``out_dir``. Defaults to False.

    Yields:
        str: The temporary folder to write into.

    Raises:
        FileExistsError: If ``out_dir`` is not empty and ``overwrite`` is False.
    """
    out_dir = osp.abspath(out_dir)
    if (osp.exists(out_dir) and (not osp.isdir(out_dir) or os.listdir(out_dir))
            and not overwrite):
        raise FileExistsError(f'{owner}: out_dir {out_dir!r} exists and is not empty; '
                              'pass overwrite=True (--overwrite) to replace it')
    parent = osp.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    remove_stale_temporaries(out_dir)
    tmp = tempfile.mkdtemp(prefix=temporary_prefix(out_dir, 'partial-'), dir=parent)
    try:
        yield tmp
        if osp.lexists(out_dir):
            old = tempfile.mkdtemp(prefix=temporary_prefix(out_dir, 'old-'), dir=parent)
            os.replace(out_dir, osp.join(old, 'data'))
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
