"""The package's one atomic writer: a temporary file beside the target, moved into place.

Used by mmengine's local file backend once ``mmseg_fusion`` is imported
(:class:`~mmseg_fusion.engine.AtomicLocalBackend`), :func:`~mmseg_fusion.engine.atomic_save`
(the converters), :func:`~mmseg_fusion.engine.publish_checkpoint`, the ONNX export and, through
:func:`atomic_folder`, the synthetic-data generators. A write goes to a hidden temporary
``.<name>.pid<PID>-<random><suffix>`` in the target's folder, is fsynced and moved into place
with :func:`os.replace`, so the final name holds either the old complete file or the new
complete one; a writer killed midway leaves only its temporary, which the next write of the
same target removes (:mod:`mmseg_fusion.utils.stale_temporaries`).

A plain ``open(path, 'wb')`` (what mmengine's ``LocalBackend.put`` does) has semantics that a
rename does not have by itself; this writer keeps them:

* **New file**: the mode ``open()`` gives, ``0o666 & ~umask`` (``mkstemp`` makes 0600). The
  umask is read from ``/proc/self/status`` (Linux >= 4.7), which changes nothing; elsewhere
  it is read with ``os.umask`` and restored at once, under a lock, with ``0o077`` set in
  between, so a file another thread creates in that instant can only be more private, never
  more open.
* **Rewritten file**: keeps its permission bits, and its owner and group where this process
  may set them (a ``PermissionError`` of ``chown`` is ignored, as the owner of a file written
  through ``open`` stays too). A read-only file is refused with ``PermissionError`` as
  ``open`` refuses it, instead of being replaced.
* **Symlink**: the file it resolves to is replaced atomically, and the link stays a link to
  the new content (a dangling link gets its target created, as ``open`` does).
* **Not a regular file** (FIFO, character or block device, socket), or a path that leads into
  ``/proc`` (``/dev/stdout``, ``/proc/self/fd/N``: the kernel's handles of open files, not
  symlinks one may rename over): written through with ``open(path, 'wb')``, not atomically;
  a FIFO's reader receives the bytes, a device node is never replaced.
* **Hard links** (``st_nlink > 1``): a rename necessarily gives the path a new inode and
  splits it from its other names, while ``open`` writes the one inode that all names share.
  Hard links are kept, as without this package: such a file is written through in place
  (truncated, then written). This write is not atomic; the kill-mid-write guarantee holds
  for files with a single name only.

The bytes are written to the temporary file first in every case (beside the target, or for a
target that is not a regular file in the system's temporary folder), so a failure while
producing them (an exporter error, a full disk) changes nothing under the final name.
"""
import errno
import os
import os.path as osp
import shutil
import stat
import tempfile
import threading
from contextlib import contextmanager
from typing import IO, Iterator, Optional, Tuple, Union

from .stale_temporaries import remove_stale_temporaries, temporary_prefix

__all__ = [
    'AtomicFile', 'atomic_folder', 'atomic_open', 'atomic_write_bytes', 'current_umask',
    'new_file_mode'
]

PathLike = Union[str, 'os.PathLike[str]']

_UMASK_LOCK = threading.Lock()
#: where Linux (>= 4.7) shows the process's umask
_PROC_STATUS = '/proc/self/status'
#: final outcomes of a write (see :func:`_plan`)
_NEW, _REPLACE, _THROUGH = 'new', 'replace', 'through'


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows.

    Returns:
        int: The umask, e.g. ``0o022``.
    """
    try:
        with open(_PROC_STATUS, 'rb') as f:
            for line in f:
                if line.startswith(b'Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        # restrictive in the instant between the two calls (see the module docstring)
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def new_file_mode(folder: bool = False) -> int:
    """The mode ``open()`` (or ``os.mkdir``) gives a new file (folder) under the umask.

    Args:
        folder (bool): A folder (``0o777`` before the umask) instead of a file (``0o666``).
            Defaults to False.

    Returns:
        int: The permission bits.
    """
    return (0o777 if folder else 0o666) & ~current_umask()


def _leads_into_proc(path: str, max_links: int = 40) -> bool:
    """Whether ``path`` is in ``/proc`` or its chain of symlinks leads there."""
    for _ in range(max_links):
        if osp.abspath(path).startswith('/proc/'):
            return True
        if not osp.islink(path):
            return False
        path = osp.join(osp.dirname(osp.abspath(path)), os.readlink(path))
    return False


def _plan(path: str) -> Tuple[str, str, Optional[os.stat_result]]:
    """How ``path`` is written: ``(kind, where, stat of the existing file or None)``.

    ``kind`` is ``'new'`` or ``'replace'`` (atomic, at ``where``, the resolved path) or
    ``'through'`` (plain ``open(where, 'wb')``, ``where`` being ``path`` as given).
    """
    try:
        st: Optional[os.stat_result] = os.stat(path)  # follows symlinks
    except FileNotFoundError:  # also a dangling symlink
        st = None
    if st is not None and (not stat.S_ISREG(st.st_mode) or st.st_nlink > 1
                           or _leads_into_proc(path)):
        return _THROUGH, path, st
    if st is None and _leads_into_proc(path):
        return _THROUGH, path, None
    return (_NEW if st is None else _REPLACE), osp.realpath(path), st


def _carry_metadata(tmp: str, st: Optional[os.stat_result], folder: bool = False) -> None:
    """Give ``tmp`` the owner, group and mode of ``st``, or a new file's mode."""
    if st is None:
        os.chmod(tmp, new_file_mode(folder))
        return
    own = os.stat(tmp)
    if (own.st_uid, own.st_gid) != (st.st_uid, st.st_gid):
        for uid in (st.st_uid, -1):  # owner and group; else the group alone
            try:
                os.chown(tmp, uid, st.st_gid)
                break
            except PermissionError:
                continue
    # after chown, which may clear set-id bits
    os.chmod(tmp, stat.S_IMODE(st.st_mode))


def _refuse_read_only(path: str, st: Optional[os.stat_result]) -> None:
    """Raise as ``open(path, 'wb')`` would for an existing file this process may not write."""
    if st is not None and not os.access(path, os.W_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _move_into_place(tmp: str, path: str, overwrite: bool) -> None:
    """Move ``tmp`` to ``path``; without ``overwrite`` an existing ``path`` is an error."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        # a hard link fails atomically if the target appeared meanwhile
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f'{path} exists; refusing to overwrite it') from None
    except OSError:
        # file systems without hard links: check, then replace
        if osp.lexists(path):
            raise FileExistsError(f'{path} exists; refusing to overwrite it') from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


class AtomicFile:
    """One atomic write of one file: a temporary file that is moved into place when complete.

    Use as a context manager. Write into :attr:`name` (a path) or into the file object of
    :meth:`open`; a clean exit of the ``with`` block commits to ``path`` unless
    :meth:`commit` was called (possibly with another path in the same folder, e.g. a name
    made of the hash of the bytes written); an exception discards the temporary file and
    leaves the target as it was. See the module docstring for modes, symlinks, hard links
    and special files.

    Args:
        path (str | PathLike): The target file. Its temporaries are named after it.
        overwrite (bool): Replace an existing target. Without it, an existing target (a
            dangling symlink included) raises ``FileExistsError``, on entry and again,
            atomically, when the file is moved into place. Defaults to True.
        suffix (str): Suffix of the temporary name. Defaults to ``'.partial'``.
        make_folder (bool): Create the target's folder if needed. Defaults to False.

    Example:
        >>> with AtomicFile('out/model.pth', make_folder=True) as out:
        ...     torch.save(obj, out.open())
    """

    def __init__(self, path: PathLike, overwrite: bool = True, suffix: str = '.partial',
                 make_folder: bool = False) -> None:
        self.path = os.fspath(path)
        self.overwrite = overwrite
        self.suffix = suffix
        self.make_folder = make_folder
        #: the temporary file (None before entry, after commit or discard)
        self.name: Optional[str] = None
        self._file: Optional[IO[bytes]] = None
        self._synced = False

    def __enter__(self) -> 'AtomicFile':
        if not self.overwrite and osp.lexists(self.path):
            raise FileExistsError(f'{self.path} exists; refusing to overwrite it')
        kind, where, st = _plan(self.path)
        folder = osp.dirname(osp.abspath(where))
        if self.make_folder:
            os.makedirs(folder, exist_ok=True)
        # the folder of a special file (/dev, /proc) may take no temporaries: use the system's
        beside = kind != _THROUGH or (st is not None and stat.S_ISREG(st.st_mode)
                                      and not _leads_into_proc(where))
        if beside:
            remove_stale_temporaries(where)
        fd, self.name = tempfile.mkstemp(prefix=temporary_prefix(where), suffix=self.suffix,
                                         dir=folder if beside else None)
        os.close(fd)
        return self

    def open(self) -> IO[bytes]:
        """The temporary file, opened for binary writing (closed by the commit).

        Returns:
            IO[bytes]: The file object.
        """
        if self.name is None:
            raise RuntimeError(f'AtomicFile({self.path!r}): open() outside the with block')
        if self._file is None:
            self._file = open(self.name, 'wb')  # noqa: SIM115  (closed by sync or discard)
            self._synced = False
        return self._file

    def sync(self) -> None:
        """Flush, fsync and close the temporary file (the commit does it if not done)."""
        if self.name is None:
            raise RuntimeError(f'AtomicFile({self.path!r}): sync() outside the with block')
        if self._file is not None:
            f, self._file = self._file, None
            with f:
                f.flush()
                os.fsync(f.fileno())
        else:
            _fsync_path(self.name)
        self._synced = True

    def commit(self, path: Optional[PathLike] = None,
               overwrite: Optional[bool] = None) -> str:
        """Put the temporary file's content under ``path`` and forget the temporary.

        Args:
            path (str | PathLike, optional): The final name; the temporary is made beside
                the target given at construction, so give a path in the same folder.
                Defaults to None (that target).
            overwrite (bool, optional): Replace an existing ``path``. Defaults to None (the
                ``overwrite`` of the construction).

        Returns:
            str: The path written.

        Raises:
            FileExistsError: If ``path`` exists and overwriting is off; nothing is written.
        """
        if self.name is None:
            raise RuntimeError(f'AtomicFile({self.path!r}): nothing to commit')
        path = self.path if path is None else os.fspath(path)
        overwrite = self.overwrite if overwrite is None else overwrite
        if not self._synced or self._file is not None:
            self.sync()
        if not overwrite and osp.lexists(path):
            raise FileExistsError(f'{path} exists; refusing to overwrite it')
        kind, where, st = _plan(path)
        if kind == _THROUGH:
            with open(self.name, 'rb') as src, open(where, 'wb') as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
                if stat.S_ISREG(os.fstat(dst.fileno()).st_mode):
                    dst.flush()
                    os.fsync(dst.fileno())
            os.unlink(self.name)
        else:
            _refuse_read_only(where, st)
            tmp = self.name
            if osp.dirname(tmp) != osp.dirname(where):
                # e.g. a symlink into another folder: rename only within a folder
                tmp = self._copy_beside(where)
            _carry_metadata(tmp, st)
            _move_into_place(tmp, where, overwrite)
            if tmp != self.name:
                os.unlink(self.name)
        self.name = None
        return path

    def _copy_beside(self, where: str) -> str:
        """Copy the temporary into a new temporary in ``where``'s folder (fsynced)."""
        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(where), suffix=self.suffix,
                                   dir=osp.dirname(where))
        try:
            with open(self.name, 'rb') as src, os.fdopen(fd, 'wb') as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
                dst.flush()
                os.fsync(dst.fileno())
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp

    def discard(self) -> None:
        """Remove the temporary file (if any); the target is left as it is."""
        if self._file is not None:
            f, self._file = self._file, None
            f.close()
        if self.name is not None:
            name, self.name = self.name, None
            if osp.lexists(name):
                os.unlink(name)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and self.name is not None:
                self.commit()
        finally:
            self.discard()


@contextmanager
def atomic_open(path: PathLike, overwrite: bool = True,
                make_folder: bool = False) -> Iterator[IO[bytes]]:
    """Yield a binary file object whose content replaces ``path`` when the block ends.

    Args:
        path (str | PathLike): The target file.
        overwrite (bool): Replace an existing target. Defaults to True.
        make_folder (bool): Create the target's folder if needed. Defaults to False.

    Yields:
        IO[bytes]: The temporary file, opened for writing.
    """
    with AtomicFile(path, overwrite=overwrite, make_folder=make_folder) as out:
        yield out.open()


def atomic_write_bytes(path: PathLike, data: bytes, overwrite: bool = True,
                       make_folder: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring).

    Args:
        path (str | PathLike): The target file.
        data (bytes): The content.
        overwrite (bool): Replace an existing target. Defaults to True.
        make_folder (bool): Create the target's folder if needed. Defaults to False.
    """
    with atomic_open(path, overwrite=overwrite, make_folder=make_folder) as f:
        f.write(data)


@contextmanager
def atomic_folder(out_dir: PathLike, owner: str, overwrite: bool = False) -> Iterator[str]:
    """Write a folder atomically: yield a temporary folder, move it to ``out_dir`` when done.

    The temporary folder is created next to ``out_dir`` (after removing the temporaries of
    killed writers of the same target); when the ``with`` block ends normally it replaces
    ``out_dir``, otherwise it is removed and ``out_dir`` is left as it was. As for files: a
    new folder gets the mode ``os.mkdir`` gives under the umask (``mkdtemp`` makes 0700), a
    replaced one keeps its mode (and owner and group where allowed), and a symlink to a
    folder stays a symlink to the new folder.

    Args:
        out_dir (str | PathLike): The target folder; must not exist or be empty unless
            ``overwrite``.
        owner (str): The writer's name, for the error message.
        overwrite (bool): Replace a non-empty ``out_dir``. Defaults to False.

    Yields:
        str: The temporary folder to write into.

    Raises:
        FileExistsError: If ``out_dir`` is not empty and ``overwrite`` is False.
    """
    out_dir = osp.abspath(os.fspath(out_dir))
    if (osp.exists(out_dir) and (not osp.isdir(out_dir) or os.listdir(out_dir))
            and not overwrite):
        raise FileExistsError(f'{owner}: out_dir {out_dir!r} exists and is not empty; '
                              'pass overwrite=True (--overwrite) to replace it')
    out_dir = osp.realpath(out_dir)
    parent = osp.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    remove_stale_temporaries(out_dir)
    tmp = tempfile.mkdtemp(prefix=temporary_prefix(out_dir, 'partial-'), dir=parent)
    try:
        yield tmp
        st = os.stat(out_dir) if osp.isdir(out_dir) else None
        _carry_metadata(tmp, st, folder=True)
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
