"""Names of the temporary files of atomic writes, and removal of those a killed run left.

The atomic writer (:mod:`mmseg_fusion.utils.atomic_io`: mmengine's local file backend, the
publisher, the converters, the ONNX export and, through ``atomic_folder``, the synthetic-data
generators) writes next to its target under a hidden name that carries the writer's process
id, ``.<target name>.pid<PID>-<random>...``, and moves the result into place when it is
complete. A run killed with SIGKILL cannot clean up, so each writer first removes the
temporaries of the same target whose process is no longer alive (on this host). A temporary of a
live process, or of a process id that was reused meanwhile, is kept: removal errs on the safe
side.
"""
import os
import os.path as osp
import shutil
from typing import List

__all__ = ['remove_stale_temporaries', 'temporary_prefix']


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
