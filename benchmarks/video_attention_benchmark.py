"""Seeded benchmark of CCNet's 3D criss-cross head (RCCA3DHead) against the 2D RCCAHead on clips.

    python benchmarks/video_attention_benchmark.py [--heads 2d 3d] [--seeds 0 1 2] [--jobs 2]
        [--iters 1000] [--threads 1] [--out work_dirs/video_attention_benchmark]

Both heads are trained from their configs (``configs/ccnet/ccnet{,3d}_r18-d8_1xb8-1k_synthetic-
video-64x64.py``: same backbone, same parameters, the 3D head only regroups the batch into
clips) on mmseg's own pipeline, with :func:`harness.train` (mmengine's ``Runner``: the configs'
``SyntheticVideoDataset``, ``ClipSampler`` with the run's seed, transforms, data preprocessor,
losses and SGD + poly schedule) for ``--iters`` iterations of 2 clips of 4 consecutive frames.
The data (:data:`DATA`) is generated once under ``--out/data`` by
:func:`~mmseg_fusion.datasets.generate_video_dataset`, as
``tools/dataset_converters/synthetic_video.py`` writes it.

Every (head, seed) runs in its own process (:func:`harness.run_jobs`, ``--jobs`` at a time,
``--threads`` each, at ``nice 10``; its log is ``--out/logs/<i>.log``); the results are cached
per (head, seed, iterations) as JSON under ``--out/results`` (:class:`harness.JsonCache`), so a
second run trains only what is missing and rewrites ``--out/table_it<iters>.md``.

Evaluation: the configs' test dataloader (every validation video cut into clips of 4 frames,
``ClipSampler(shuffle=False)``) and mmseg's ``IoUMetric`` (:func:`harness.evaluate_groups`):
mIoU (%) over all frames, over the degraded frames (noise or occlusion; the label is the
clean scene's) and over the clean frames; mean ± std over the seeds
(:func:`harness.fmt_mean_std`).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from harness import (  # noqa: E402
    ROOT,
    JsonCache,
    evaluate_groups,
    fmt_mean_std,
    load_config,
    mean_std,
    run_jobs,
    train,
)

CONFIGS = {
    '2d': osp.join(ROOT, 'configs', 'ccnet', 'ccnet_r18-d8_1xb8-1k_synthetic-video-64x64.py'),
    '3d': osp.join(ROOT, 'configs', 'ccnet', 'ccnet3d_r18-d8_1xb8-1k_synthetic-video-64x64.py'),
}
HEAD_NAMES = {'2d': '`RCCAHead` (2D)', '3d': '`RCCA3DHead` (3D, T = 4)'}
#: the data set: arguments of :func:`~mmseg_fusion.datasets.generate_video_dataset`
DATA = dict(num_train=40, num_val=30, num_frames=8, image_size=64, degrade_prob=0.3, seed=0)
GROUPS = ('all', 'degraded', 'clean', 'noise', 'occlusion')
NUM_CLASSES = 5


# ----------------------------------------------------------------------------- data
def make_data(root: str, data: Optional[dict] = None) -> str:
    """Generate the videos of ``data`` under ``root``, unless they are there already.

    Args:
        root (str): The data set's folder (mmseg's layout, ``degraded_{split}.txt``).
        data (dict, optional): Arguments of
            :func:`~mmseg_fusion.datasets.generate_video_dataset`. Defaults to None
            (:data:`DATA`).

    Returns:
        str: ``root``.
    """
    from mmseg_fusion.datasets import generate_video_dataset
    if osp.isfile(osp.join(root, 'degraded_val.txt')):
        return root
    data = DATA if data is None else data
    print(f'== generating the videos {data} in {root}', flush=True)

    def progress(done: int, total: int) -> None:
        if done % 10 == 0 or done == total:
            print(f'   {done}/{total} videos', flush=True)

    generate_video_dataset(root, progress=progress, **data)
    return root


def frame_groups(kinds: Dict[str, str]) -> Callable[[dict], Tuple[str, ...]]:
    """The groups of a frame from its metainfo, given the degraded stems and their kinds.

    Args:
        kinds (dict[str, str]): Stem -> ``'noise'`` or ``'occlusion'``
            (:func:`~mmseg_fusion.datasets.read_degraded`).

    Returns:
        Callable[[dict], tuple]: ``('degraded', kind)`` or ``('clean', )`` of a frame's
        metainfo (its ``img_path``).
    """

    def groups(meta: dict) -> Tuple[str, ...]:
        kind = kinds.get(osp.splitext(osp.basename(meta['img_path']))[0])
        return ('degraded', kind) if kind else ('clean', )

    return groups


# ----------------------------------------------------------------------------- one run
def run_config(head: str, data_root: str, iters: int):
    """The Config of ``head`` trained ``iters`` iterations on the videos at ``data_root``."""
    options = {'train_cfg.max_iters': iters, 'param_scheduler.0.end': iters,
               'default_hooks.logger.interval': max(1, iters // 10)}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options[f'{loader}.dataset.data_root'] = data_root
    return load_config(CONFIGS[head], options)


def worker(job: dict) -> dict:
    """Train one (head, seed) and evaluate it per frame group.

    Args:
        job (dict): ``head``, ``seed``, ``iters``, ``data_root`` and ``work_dir``.

    Returns:
        dict: The job's ``head``, ``seed``, ``iters``; ``train_s``, ``test_s``, the learned
        ``gamma``, and per group of :data:`GROUPS` its ``frames`` and ``miou`` (None for a
        group without frames); ``class_iou`` over all frames.
    """
    from mmseg_fusion.datasets import read_degraded
    cfg = run_config(job['head'], job['data_root'], job['iters'])
    start = time.time()
    model = train(cfg, job['work_dir'], job['seed'])
    train_s = time.time() - start
    start = time.time()
    evals = evaluate_groups(model, cfg, NUM_CLASSES,
                            frame_groups(read_degraded(job['data_root'], 'val')))
    test_s = time.time() - start
    gamma = float(model.decode_head.cca.gamma.scale.detach())
    return dict(head=job['head'], seed=job['seed'], iters=job['iters'],
                train_s=round(train_s, 1), test_s=round(test_s, 1), gamma=round(gamma, 4),
                frames={g: evals[g]['images'] if g in evals else 0 for g in GROUPS},
                miou={g: round(evals[g]['mIoU'], 2) if g in evals else None for g in GROUPS},
                class_iou=evals['all']['class_iou'])


# ----------------------------------------------------------------------------- table
def table(results: List[dict]) -> str:
    """Markdown table: mean ± std of mIoU over the seeds per head and frame group."""
    frames = results[0]['frames']
    lines = ['| head | seeds | ' + ' | '.join(f'mIoU {g} ({frames[g]} frames)' for g in GROUPS)
             + ' | learned gamma | train s |',
             '|---|---|' + '---|' * (len(GROUPS) + 2)]
    for head in CONFIGS:
        rs = [r for r in results if r['head'] == head]
        if not rs:
            continue
        lines.append(f'| {HEAD_NAMES[head]} | {len(rs)} | '
                     + ' | '.join(fmt_mean_std([r['miou'][g] for r in rs]) for g in GROUPS)
                     + f" | {fmt_mean_std([r['gamma'] for r in rs], digits=3)} | "
                     f"{mean_std([r['train_s'] for r in rs])[0]:.0f} |")
    pairs = [(a, b) for a in results if a['head'] == '2d'
             for b in results if b['head'] == '3d' and b['seed'] == a['seed']]
    if pairs:
        lines.append('')
        lines.append('Per seed, 3D minus 2D (mIoU points): ' + '; '.join(
            f"seed {a['seed']}: " + ', '.join(
                f"{g} {b['miou'][g] - a['miou'][g]:+.1f}" for g in ('all', 'degraded', 'clean')
                if a['miou'][g] is not None and b['miou'][g] is not None)
            for a, b in pairs))
    return '\n'.join(lines)


# ----------------------------------------------------------------------------- main
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--heads', nargs='+', choices=sorted(CONFIGS), default=['2d', '3d'])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=1000)
    parser.add_argument('--jobs', type=int, default=2, help='parallel trainings')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per training')
    parser.add_argument('--out', default=osp.join('work_dirs', 'video_attention_benchmark'))
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.iters, args.jobs, args.threads) < 1:
        parser.error('--iters, --jobs and --threads must be >= 1')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Train what is missing, then write and print the table; 1 if a run failed."""
    args = parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        os.nice(10)  # the machine is shared
        JsonCache(job['cache']).put(job['key'], worker(job))
        return 0
    out = osp.abspath(args.out)
    cache = JsonCache(osp.join(out, 'results'))
    root = make_data(osp.join(out, 'data', 'synthetic_video'))
    runs = [(h, s) for h in args.heads for s in args.seeds]

    def key(head: str, seed: int) -> str:
        return f'{head}_s{seed}_it{args.iters}'

    jobs = [dict(head=h, seed=s, iters=args.iters, data_root=root, cache=cache.folder,
                 key=key(h, s), work_dir=osp.join(out, 'runs', key(h, s)))
            for h, s in runs if cache.get(key(h, s)) is None]
    print(f'video_attention_benchmark: {len(runs) - len(jobs)} cached, {len(jobs)} to train '
          f'({args.jobs} at a time)', flush=True)
    codes = run_jobs(jobs, lambda job: [sys.executable, osp.abspath(__file__), '--worker',
                                        json.dumps(job)],
                     args.jobs, osp.join(out, 'logs'), threads=args.threads,
                     describe=lambda job: f"{job['head']} seed {job['seed']}")
    failed = [(j['head'], j['seed']) for j, c in zip(jobs, codes) if c != 0]
    results = [r for r in (cache.get(key(h, s)) for h, s in runs) if r is not None]
    if results:
        text = (f'synthetic videos {DATA}, {args.iters} iterations of 2 clips x 4 frames '
                f"(mmseg's pipeline), seeds {sorted({r['seed'] for r in results})}, mIoU %\n\n"
                + table(results))
        table_path = osp.join(out, f'table_it{args.iters}.md')
        with open(table_path + '.tmp', 'w') as f:
            f.write(text + '\n')
        os.replace(table_path + '.tmp', table_path)
        print(text, flush=True)
    if failed:
        print(f'video_attention_benchmark: {len(failed)} runs failed: {failed} (logs in '
              f"{osp.join(out, 'logs')})", file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
