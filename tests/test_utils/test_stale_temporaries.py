"""Temporaries of killed writers are removed; those of live writers and other files are kept."""
import os
import subprocess
import sys

from mmseg_fusion.engine import atomic_save
from mmseg_fusion.utils import remove_stale_temporaries, temporary_prefix


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def test_prefix_names_the_target_and_this_process(tmp_path):
    assert temporary_prefix(str(tmp_path / 'a.pth')) == f'.a.pth.pid{os.getpid()}-'
    assert temporary_prefix(str(tmp_path / 'data'), 'old-') == f'.data.pid{os.getpid()}-old-'


def test_only_dead_writers_temporaries_of_the_target_are_removed(tmp_path):
    live = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        dead = dead_pid()
        names = {
            f'.a.pth.pid{dead}-x1.partial': True,           # dead writer: removed
            f'.a.pth.pid{live.pid}-x2.partial': False,      # live writer: kept
            f'.a.pth.pid{os.getpid()}-x3.partial': False,   # this process: kept
            f'.b.pth.pid{dead}-x4.partial': False,          # another target: kept
            '.a.pth.pidX-x5.partial': False,                # not a process id: kept
            'a.pth': False,
        }
        for name in names:
            (tmp_path / name).write_bytes(b'x')
        (tmp_path / f'.a.pth.pid{dead}-partial-dir').mkdir()
        (tmp_path / f'.a.pth.pid{dead}-partial-dir' / 'f').write_bytes(b'x')
        removed = remove_stale_temporaries(str(tmp_path / 'a.pth'))
        expected = {n for n, gone in names.items() if gone} | {f'.a.pth.pid{dead}-partial-dir'}
        assert {os.path.basename(p) for p in removed} == expected
        assert set(os.listdir(tmp_path)) == set(names) - expected
    finally:
        live.kill()
        live.wait()


def test_atomic_save_cleans_up_after_a_killed_writer(tmp_path):
    stale = tmp_path / f'.w.pth.pid{dead_pid()}-abc.partial'
    stale.write_bytes(b'half a checkpoint')
    atomic_save({'a': 1}, str(tmp_path / 'w.pth'))
    assert os.listdir(tmp_path) == ['w.pth']
    assert remove_stale_temporaries(str(tmp_path / 'missing' / 'x.pth')) == []


def test_atomic_folder_moves_into_place_or_leaves_nothing(tmp_path):
    import pytest

    from mmseg_fusion.utils import atomic_folder
    target = tmp_path / 'out'
    with atomic_folder(str(target), 'writer') as tmp:
        assert os.listdir(tmp_path) == [os.path.basename(tmp)]  # hidden, beside the target
        (tmp_path / tmp / 'a.txt').write_text('one')
    assert sorted(os.listdir(tmp_path)) == ['out'] and (target / 'a.txt').read_text() == 'one'
    # a non-empty target is refused unless overwrite, naming the writer
    with pytest.raises(FileExistsError, match="writer: out_dir .* exists and is not empty"), \
            atomic_folder(str(target), 'writer'):
        pass
    # a failed write leaves the old folder as it was and no temporary
    with pytest.raises(KeyboardInterrupt), \
            atomic_folder(str(target), 'writer', overwrite=True) as tmp:
        (tmp_path / tmp / 'b.txt').write_text('two')
        raise KeyboardInterrupt
    assert sorted(os.listdir(tmp_path)) == ['out'] and os.listdir(target) == ['a.txt']
    with atomic_folder(str(target), 'writer', overwrite=True) as tmp:
        (tmp_path / tmp / 'b.txt').write_text('two')
    assert os.listdir(target) == ['b.txt'] and sorted(os.listdir(tmp_path)) == ['out']
