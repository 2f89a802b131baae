"""Soak test of 2-process CPU (gloo) runs: train then test N times under load.

Each round runs ``tools/dist_train.sh CONFIG 2`` (a few iterations on a small synthetic data
set, validation and a checkpoint at the end) and ``tools/dist_test.sh CONFIG CKPT 2``, both
through ``torchrun``. A round fails when a command exits non-zero (e.g. a rank aborted at exit
with ``terminate called without an active exception``, SIGABRT) or times out; every failure
is printed with the tail of its output, and the summary gives the counts.

    python benchmarks/dist_soak.py [--rounds 20] [--load 2] [--iters 4] [--work-dir DIR]

``--load K`` runs K busy processes (pure Python loops) alongside, as a loaded CI machine has.
The exit status is 1 when any run failed.
"""
import argparse
import multiprocessing as mp
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Tuple

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from harness import ROOT  # noqa: E402

DEFAULT_CONFIG = osp.join(ROOT, 'configs', 'synthetic', 'fcn_r18-d8_1xb8-600_synthetic-128x128.py')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=20, help='train + test rounds (20)')
    parser.add_argument('--load', type=int, default=2,
                        help='busy processes running alongside (2)')
    parser.add_argument('--iters', type=int, default=4, help='training iterations (4)')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='a config on the synthetic data (default: the demo FCN)')
    parser.add_argument('--work-dir', help='where data and runs go (default: a temporary dir)')
    parser.add_argument('--timeout', type=int, default=600, help='seconds per command (600)')
    parser.add_argument('--tail', type=int, default=3000,
                        help='characters of output shown per failure (3000)')
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.iters < 1 or args.load < 0:
        parser.error(f'--rounds and --iters must be >= 1 and --load >= 0, got '
                     f'{args.rounds}, {args.iters}, {args.load}')
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _busy() -> None:
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2147483648


def run(cmd: List[str], timeout: int) -> Tuple[int, str, float]:
    """Run ``cmd``; return its exit status (124 on timeout), output and seconds."""
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS='1',
               MMSEG_FUSION_SKIP_VERSION_CHECK='1', PYTHONUNBUFFERED='1')
    start = time.time()
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout)
        return proc.returncode, proc.stdout, time.time() - start
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or '')
        return 124, out + f'\n[timed out after {timeout} s]', time.time() - start


def report(round_: int, what: str, rc: int, out: str, tail: int) -> None:
    """Print a failed run with the end of its output, at once."""
    print(f'=== round {round_}: {what} exited {rc}; its last {tail} characters:\n'
          f'{out[-tail:]}\n=== end of round {round_} {what}', flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmseg_fusion.datasets import generate_dataset
    from mmseg_fusion.testing import tiny_options

    own_tmp = args.work_dir is None
    work = tempfile.mkdtemp(prefix='dist_soak_') if own_tmp else args.work_dir
    os.makedirs(work, exist_ok=True)
    data_root = osp.join(work, 'data')
    if not osp.isdir(data_root):
        generate_dataset(data_root, num_train=12, num_val=4, image_size=64, seed=0)
    opts = tiny_options(data_root, args.iters)
    busy = [mp.Process(target=_busy, daemon=True) for _ in range(args.load)]
    for p in busy:
        p.start()
    failures = []
    counts = dict(train=0, test=0)
    try:
        for r in range(1, args.rounds + 1):
            run_dir = osp.join(work, f'round_{r}')
            shutil.rmtree(run_dir, ignore_errors=True)
            train = ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), args.config, '2',
                     '--work-dir', run_dir, '--cfg-options', *opts]
            rc, out, secs = run(train, args.timeout)
            ckpt = osp.join(run_dir, f'iter_{args.iters}.pth')
            status = [f'train rc={rc} ({secs:.0f} s)']
            if rc != 0:
                counts['train'] += 1
                failures.append((r, 'train', rc, out))
                report(r, 'train', rc, out, args.tail)
            if osp.isfile(ckpt):
                test = ['bash', osp.join(ROOT, 'tools', 'dist_test.sh'), args.config, ckpt,
                        '2', '--work-dir', run_dir, '--cfg-options', *opts]
                rc, out, secs = run(test, args.timeout)
                status.append(f'test rc={rc} ({secs:.0f} s)')
                if rc != 0:
                    counts['test'] += 1
                    failures.append((r, 'test', rc, out))
                    report(r, 'test', rc, out, args.tail)
            else:
                status.append('test skipped (no checkpoint)')
            print(f'[{r}/{args.rounds}] ' + ', '.join(status), flush=True)
            shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        for p in busy:
            p.terminate()
            p.join()
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)
    print(f'\nsummary: {args.rounds} rounds under load {args.load}: '
          f"{counts['train']} train and {counts['test']} test runs failed", flush=True)
    for r, what, rc, _ in failures:
        print(f'  round {r}: {what} exited {rc}', flush=True)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
