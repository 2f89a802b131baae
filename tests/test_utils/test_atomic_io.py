"""The atomic writer keeps the semantics of a plain write (mmengine's ``LocalBackend.put``).

Each case builds the same setup twice, writes it once with mmengine's plain ``LocalBackend``
and once with the atomic writer (:func:`atomic_write_bytes` and the ``AtomicLocalBackend``
that ``import mmseg_fusion`` registers), and compares what a user can observe: mode bits,
owner, whether a path is still a symlink and where it points, which names share an inode, the
kind of the node, and what a FIFO's reader received.
"""
import os
import os.path as osp
import stat
import threading
from typing import Callable, Dict, Iterator

import pytest
from mmengine.fileio import LocalBackend

from mmseg_fusion.engine import AtomicLocalBackend
from mmseg_fusion.utils import atomic_io
from mmseg_fusion.utils.atomic_io import (
    AtomicFile,
    atomic_folder,
    atomic_write_bytes,
    current_umask,
    new_file_mode,
)

NEW = b'new content'


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process's umask for one test: ``umask(0o002)``; restored afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


WRITERS: Dict[str, Callable[[str, bytes], None]] = {
    'plain': lambda path, data: LocalBackend().put(data, path),
    'atomic_write_bytes': lambda path, data: atomic_write_bytes(path, data, make_folder=True),
    'AtomicLocalBackend': lambda path, data: AtomicLocalBackend().put(data, path),
}
ATOMIC = ['atomic_write_bytes', 'AtomicLocalBackend']


def node(path: str) -> dict:
    """What a user sees of ``path``: kind, mode bits, owner, link target, content."""
    st = os.lstat(path)
    seen = dict(kind=stat.S_IFMT(st.st_mode), mode=oct(stat.S_IMODE(st.st_mode)),
                owner=(st.st_uid, st.st_gid))
    if stat.S_ISLNK(st.st_mode):
        seen['link'] = os.readlink(path)
    elif stat.S_ISREG(st.st_mode):
        with open(path, 'rb') as f:
            seen['content'] = f.read()
    return seen


def write_both(tmp_path, writer: str, setup: Callable[[str], str],
               observe: Callable[[str], dict]) -> Dict[str, dict]:
    """Run ``setup(folder) -> target`` in two folders, write with plain and ``writer``."""
    seen = {}
    for name in ('plain', writer):
        folder = str(tmp_path / name)
        os.makedirs(folder)
        target = setup(folder)
        WRITERS[name](target, NEW)
        seen[name] = observe(folder)
        # no temporary left behind
        assert not [n for n in os.listdir(folder) if '.pid' in n], os.listdir(folder)
    return seen


@pytest.mark.parametrize('writer', ATOMIC)
@pytest.mark.parametrize('mask', [0o022, 0o002, 0o077])
def test_new_file_gets_the_umask_mode(tmp_path, umask, writer, mask):
    umask(mask)
    seen = write_both(tmp_path, writer, lambda d: osp.join(d, 'sub', 'iter_2.pth'),
                      lambda d: node(osp.join(d, 'sub', 'iter_2.pth')))
    assert seen[writer] == seen['plain']
    assert seen[writer]['mode'] == oct(0o666 & ~mask) and seen[writer]['content'] == NEW
    assert current_umask() == mask and new_file_mode() == 0o666 & ~mask


@pytest.mark.parametrize('writer', ATOMIC)
def test_rewritten_file_keeps_its_mode(tmp_path, umask, writer):
    umask(0o022)  # a new file would be 0644

    def setup(folder: str) -> str:
        path = osp.join(folder, 'ckpt.pth')
        with open(path, 'wb') as f:
            f.write(b'old')
        os.chmod(path, 0o664)
        return path

    seen = write_both(tmp_path, writer, setup, lambda d: node(osp.join(d, 'ckpt.pth')))
    assert seen[writer] == seen['plain']
    assert seen[writer]['mode'] == oct(0o664) and seen[writer]['content'] == NEW


@pytest.mark.skipif(os.geteuid() != 0, reason='giving a file to another owner needs root')
def test_rewritten_file_keeps_its_owner(tmp_path):

    def setup(folder: str) -> str:
        path = osp.join(folder, 'ckpt.pth')
        with open(path, 'wb') as f:
            f.write(b'old')
        os.chown(path, 4321, 8765)
        os.chmod(path, 0o640)
        return path

    seen = write_both(tmp_path, 'atomic_write_bytes', setup,
                      lambda d: node(osp.join(d, 'ckpt.pth')))
    assert seen['atomic_write_bytes'] == seen['plain']
    assert seen['plain']['owner'] == (4321, 8765)


@pytest.mark.parametrize('writer', ATOMIC)
def test_symlink_stays_a_link_to_the_new_content(tmp_path, writer):

    def setup(folder: str) -> str:
        os.makedirs(osp.join(folder, 'store'))
        real = osp.join(folder, 'store', 'real.pth')
        with open(real, 'wb') as f:
            f.write(b'old')
        os.chmod(real, 0o640)
        os.symlink(osp.join('store', 'real.pth'), osp.join(folder, 'latest.pth'))
        return osp.join(folder, 'latest.pth')

    def observe(folder: str) -> dict:
        return dict(link=node(osp.join(folder, 'latest.pth')),
                    real=node(osp.join(folder, 'store', 'real.pth')),
                    names=sorted(os.listdir(folder)),
                    store=sorted(os.listdir(osp.join(folder, 'store'))))

    seen = write_both(tmp_path, writer, setup, observe)
    assert seen[writer] == seen['plain']
    assert seen[writer]['link']['link'] == osp.join('store', 'real.pth')
    assert seen[writer]['real']['content'] == NEW and seen[writer]['real']['mode'] == oct(0o640)
    assert seen[writer]['store'] == ['real.pth']


@pytest.mark.parametrize('writer', ATOMIC)
def test_dangling_symlink_gets_its_target_created(tmp_path, writer):

    def setup(folder: str) -> str:
        os.symlink('target.pth', osp.join(folder, 'link.pth'))
        return osp.join(folder, 'link.pth')

    def observe(folder: str) -> dict:
        return {name: node(osp.join(folder, name)) for name in sorted(os.listdir(folder))}

    seen = write_both(tmp_path, writer, setup, observe)
    assert seen[writer] == seen['plain']
    assert seen[writer]['target.pth']['content'] == NEW


@pytest.mark.parametrize('writer', ATOMIC)
def test_hard_links_keep_sharing_one_inode(tmp_path, writer):

    def setup(folder: str) -> str:
        first = osp.join(folder, 'a.pth')
        with open(first, 'wb') as f:
            f.write(b'old content that is longer')
        os.link(first, osp.join(folder, 'b.pth'))
        return first

    def observe(folder: str) -> dict:
        a, b = (os.stat(osp.join(folder, n)) for n in ('a.pth', 'b.pth'))
        return dict(same_inode=(a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
                    nlink=a.st_nlink, a=node(osp.join(folder, 'a.pth')),
                    b=node(osp.join(folder, 'b.pth')))

    seen = write_both(tmp_path, writer, setup, observe)
    assert seen[writer] == seen['plain']
    assert seen[writer]['same_inode'] and seen[writer]['nlink'] == 2
    assert seen[writer]['b']['content'] == NEW


@pytest.mark.parametrize('writer', ATOMIC)
def test_fifo_is_written_through_to_its_reader(tmp_path, writer):
    received: Dict[str, bytes] = {}

    def setup(folder: str) -> str:
        path = osp.join(folder, 'pipe')
        os.mkfifo(path)

        def read() -> None:
            with open(path, 'rb') as f:  # blocks until the writer opens the FIFO
                received[osp.basename(folder)] = f.read()

        threading.Thread(target=read, daemon=True).start()
        return path

    def observe(folder: str) -> dict:
        for _ in range(1000):  # the reader finishes once the writer closed the FIFO
            if osp.basename(folder) in received:
                break
            threading.Event().wait(0.01)
        return dict(node=node(osp.join(folder, 'pipe')), received=received.get(
            osp.basename(folder)), names=sorted(os.listdir(folder)))

    seen = write_both(tmp_path, writer, setup, observe)
    assert seen[writer] == seen['plain']
    assert seen[writer]['received'] == NEW and seen[writer]['node']['kind'] == stat.S_IFIFO


@pytest.mark.parametrize('writer', ATOMIC)
def test_device_node_is_written_through_not_replaced(writer):
    before = os.stat('/dev/null')
    WRITERS['plain']('/dev/null', NEW)
    WRITERS[writer]('/dev/null', NEW)
    after = os.stat('/dev/null')
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino,
                                                                           before.st_rdev)
    assert not [n for n in os.listdir('/dev') if n.startswith('.null.pid')]


@pytest.mark.parametrize('writer', ATOMIC)
def test_read_only_file_is_refused_as_open_refuses_it(tmp_path, writer):

    def attempt(name: str) -> dict:
        folder = tmp_path / name
        folder.mkdir()
        path = folder / 'frozen.pth'
        path.write_bytes(b'old')
        path.chmod(0o444)
        try:
            WRITERS[name](str(path), NEW)
            error = None
        except PermissionError as err:
            error = type(err)
        return dict(error=error, node=node(str(path)), names=os.listdir(folder))

    plain, ours = attempt('plain'), attempt(writer)
    assert ours == plain
    if os.geteuid() != 0:  # root may write any file
        assert ours['error'] is PermissionError and ours['node']['content'] == b'old'


def test_umask_is_read_without_proc_too(umask, monkeypatch):
    umask(0o027)
    monkeypatch.setattr(atomic_io, '_PROC_STATUS', '/nonexistent/status')
    assert current_umask() == 0o027
    assert new_file_mode() == 0o640 and new_file_mode(folder=True) == 0o750
    # and the umask is left as it was
    assert os.umask(0o027) == 0o027


def test_atomic_file_commits_under_another_name_or_leaves_nothing(tmp_path):
    target = tmp_path / 'model.pth'
    with AtomicFile(str(target)) as out:
        out.open().write(b'weights')
        out.sync()
        assert osp.basename(out.name).startswith(f'.model.pth.pid{os.getpid()}-')
        final = out.commit(str(tmp_path / 'model-abcd.pth'), overwrite=False)
    assert final == str(tmp_path / 'model-abcd.pth')
    assert os.listdir(tmp_path) == ['model-abcd.pth']
    # without overwrite an existing final name is refused and nothing is left behind
    with pytest.raises(FileExistsError, match='refusing to overwrite'), \
            AtomicFile(str(target)) as out:
        out.open().write(b'other')
        out.commit(final, overwrite=False)
    assert os.listdir(tmp_path) == ['model-abcd.pth']
    assert (tmp_path / 'model-abcd.pth').read_bytes() == b'weights'
    # an error inside the block discards the temporary
    with pytest.raises(RuntimeError, match='boom'), AtomicFile(str(target)) as out:
        out.open().write(b'half')
        raise RuntimeError('boom')
    assert os.listdir(tmp_path) == ['model-abcd.pth']


def test_folder_modes_and_symlink_follow_plain_mkdir(tmp_path, umask):
    umask(0o002)
    os.makedirs(tmp_path / 'plain')
    with atomic_folder(str(tmp_path / 'ds'), 'writer') as tmp:
        (tmp_path / tmp / 'a.txt').write_text('one')
    assert stat.S_IMODE(os.stat(tmp_path / 'ds').st_mode) == \
        stat.S_IMODE(os.stat(tmp_path / 'plain').st_mode) == 0o775
    # a replaced folder keeps its mode; a symlink to it stays a symlink
    os.chmod(tmp_path / 'ds', 0o750)
    os.symlink('ds', tmp_path / 'current')
    with atomic_folder(str(tmp_path / 'current'), 'writer', overwrite=True) as tmp:
        (tmp_path / tmp / 'b.txt').write_text('two')
    assert osp.islink(tmp_path / 'current') and os.readlink(tmp_path / 'current') == 'ds'
    assert os.listdir(tmp_path / 'current') == ['b.txt']
    assert stat.S_IMODE(os.stat(tmp_path / 'ds').st_mode) == 0o750
    assert sorted(os.listdir(tmp_path)) == ['current', 'ds', 'plain']
