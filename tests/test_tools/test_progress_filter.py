"""scripts/progress_filter.sh: progress lines come through a pipe while the producer runs."""
import os.path as osp
import subprocess
import sys
import time

PRODUCER = ('import sys, time\n'
            'print("   [1/77] c++ -c a.cpp " + "x" * 300, flush=True)\n'
            'print("noise", flush=True)\n'
            'time.sleep(4)\n'
            'print("[77/77] c++ -c z.cpp", flush=True)\n')


def run_filter(repo_root, *args):
    producer = subprocess.Popen([sys.executable, '-c', PRODUCER], stdout=subprocess.PIPE)
    filt = subprocess.Popen(['bash', osp.join(repo_root, 'scripts', 'progress_filter.sh'), *args],
                            stdin=producer.stdout, stdout=subprocess.PIPE, text=True)
    producer.stdout.close()
    return producer, filt


def test_a_line_arrives_before_the_producer_ends(repo_root):
    start = time.monotonic()
    producer, filt = run_filter(repo_root, r'^ *\[[0-9]+/[0-9]+\]', '  mmcv: ')
    first = filt.stdout.readline()
    elapsed = time.monotonic() - start
    assert producer.poll() is None, 'the producer had already ended: the line was held back'
    assert elapsed < 3.5
    assert first.startswith('  mmcv: [1/77] c++ -c a.cpp x')
    assert len(first.rstrip('\n')) == len('  mmcv: ') + 110  # shortened to 110 characters
    rest = filt.stdout.read()
    assert filt.wait() == 0 and producer.wait() == 0
    assert rest == '  mmcv: [77/77] c++ -c z.cpp\n'  # 'noise' filtered out


def test_strip_and_no_match_is_not_an_error(repo_root):
    out = subprocess.run(
        ['bash', osp.join(repo_root, 'scripts', 'progress_filter.sh'), r'Iter\(train\)', '',
         '^.* - INFO - '],
        input='2026/12/02 - mmengine - INFO - Iter(train) [ 50/600]  lr: 0.02\nother\n',
        capture_output=True, text=True, check=True)
    assert out.stdout == 'Iter(train) [ 50/600] lr: 0.02\n'
    nothing = subprocess.run(['bash', osp.join(repo_root, 'scripts', 'progress_filter.sh'), 'x'],
                             input='abc\n', capture_output=True, text=True)
    assert nothing.returncode == 0 and nothing.stdout == ''
