"""Seeded benchmark of CCNet's 3D criss-cross head (RCCA3DHead) against the 2D RCCAHead on clips.

    python benchmarks/video_attention_benchmark.py [--seeds 0 1 2] [--jobs 2] [--iters 1000]
        [--out work_dirs/video_attention_benchmark]

Both heads are built from their configs (``configs/ccnet/ccnet{,3d}_r18-d8_1xb8-1k_synthetic-
video-64x64.py``: same backbone, same parameters, the 3D head only regroups the batch into clips)
and trained with the same budget: the same iterations, the same batches (2 clips of 4
consecutive frames, in the order of :class:`~mmseg_fusion.datasets.ClipSampler` with the run's
seed), the same initial weights for a seed, the configs' SGD + poly schedule. The loop is a lean
in-process one around the models' own ``train_step`` / ``test_step`` (mmseg's data
preprocessor, losses and inference; data generated in memory by
:func:`~mmseg_fusion.datasets.generate_video` exactly as
``tools/dataset_converters/synthetic_video.py`` writes it). Every (head, seed) runs in its own
process with one thread at ``nice 10``; results are cached as JSON under ``--out``, a second run
trains only what is missing and rewrites ``--out/table_it<iters>.md``.

Evaluation: every validation video cut into clips of 4 frames (``ClipSampler``,
``shuffle=False``); mIoU (%) over all frames, over the degraded frames (noise or occlusion; the
label is the clean scene's) and over the clean frames, mean ± std over the seeds.
"""
import argparse
import json
import logging
import os
import os.path as osp
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Dict, List, Optional, Sequence

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = {
    '2d': 'configs/ccnet/ccnet_r18-d8_1xb8-1k_synthetic-video-64x64.py',
    '3d': 'configs/ccnet/ccnet3d_r18-d8_1xb8-1k_synthetic-video-64x64.py',
}
DATA = dict(num_train=40, num_val=30, num_frames=8, image_size=64, degrade_prob=0.3, seed=0)
GROUPS = ('all', 'degraded', 'clean', 'noise', 'occlusion')
NUM_CLASSES = 5


class _Frames:
    """Frames of generated videos in dataset order, named as the generator names the files."""

    def __init__(self, split: str) -> None:
        from mmseg_fusion.datasets.synthetic_video import _SPLIT_OFFSET, generate_video
        self.images, self.labels, self.kinds, self.names = [], [], [], []
        for v in range(DATA[f'num_{split}']):
            rng = np.random.default_rng([DATA['seed'], _SPLIT_OFFSET[split] + v])
            frames, labels, kinds = generate_video(rng, DATA['num_frames'], DATA['image_size'],
                                                   DATA['degrade_prob'])
            for t, item in enumerate(zip(frames, labels, kinds)):
                self.images.append(item[0])
                self.labels.append(item[1])
                self.kinds.append(item[2])
                self.names.append(f'v{v:04d}_{t:04d}.png')

    def __len__(self) -> int:
        return len(self.images)

    def get_data_info(self, index: int) -> dict:
        return dict(img_path=self.names[index])

    def batch(self, indices: Sequence[int]) -> dict:
        """The frames as ``train_step`` / ``test_step`` take them."""
        import torch
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        inputs, samples = [], []
        for i in indices:
            h, w = self.labels[i].shape
            inputs.append(torch.from_numpy(np.ascontiguousarray(self.images[i].transpose(2, 0,
                                                                                      1))))
            sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
            sample.gt_sem_seg = PixelData(data=torch.from_numpy(self.labels[i]).long()[None])
            samples.append(sample)
        return dict(inputs=inputs, data_samples=samples)


def _miou(conf: np.ndarray) -> float:
    """MIoU (%) over the classes present in ground truth or prediction."""
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - inter
    present = union > 0
    if not present.any():  # no frame in the group
        return float('nan')
    return float(100.0 * (inter[present] / union[present]).mean())


def run_one(head: str, seed: int, iters: int, threads: int) -> dict:
    """Train ``head`` ('2d' or '3d') with ``seed`` and evaluate it; a JSON-able result."""
    import random

    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmseg_fusion  # noqa: F401
    from mmseg_fusion.datasets import ClipSampler
    logging.getLogger('mmengine').setLevel(logging.WARNING)  # no per-parameter init lines
    torch.set_num_threads(threads)
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(ROOT, CONFIGS[head]))
    clip_length = cfg.clip_length
    batch = cfg.train_dataloader.batch_size
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (what mmengine's set_random_seed seeds, too)
    torch.manual_seed(seed)
    train, val = _Frames('train'), _Frames('val')
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    base_lr = cfg.optim_wrapper.optimizer.lr
    eta_min = cfg.param_scheduler[0].eta_min
    sampler = ClipSampler(train, clip_length=clip_length, shuffle=True, seed=seed)
    start, it, epoch = time.time(), 0, 0
    while it < iters:
        sampler.set_epoch(epoch)
        order = list(sampler)
        for b in range(0, len(order) - batch + 1, batch):
            if it == iters:
                break
            for group in optim.optimizer.param_groups:
                group['lr'] = (base_lr - eta_min) * (1 - it / iters)**0.9 + eta_min
            log = model.train_step(train.batch(order[b:b + batch]), optim)
            it += 1
            if it % max(1, iters // 5) == 0:
                print(f'  [{head} seed {seed}] iter {it}/{iters} loss {log["loss"].item():.3f} '
                      f'({time.time() - start:.0f} s)', flush=True)
        epoch += 1
    train_s = time.time() - start
    model.eval()
    conf = {g: np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64) for g in GROUPS}
    order = list(ClipSampler(val, clip_length=clip_length, shuffle=False))
    start = time.time()
    with torch.no_grad():
        for b in range(0, len(order), clip_length):
            clip = order[b:b + clip_length]
            for i, pred in zip(clip, model.test_step(val.batch(clip))):
                p = pred.pred_sem_seg.data[0].numpy().astype(np.int64)
                c = np.bincount(NUM_CLASSES * val.labels[i].astype(np.int64).ravel() + p.ravel(),
                                minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)
                kind = val.kinds[i]
                for g in ('all', 'degraded' if kind else 'clean') + ((kind, ) if kind else ()):
                    conf[g] += c
    test_s = time.time() - start
    frames = {'all': len(val), 'degraded': sum(k is not None for k in val.kinds),
              'noise': val.kinds.count('noise'), 'occlusion': val.kinds.count('occlusion')}
    frames['clean'] = frames['all'] - frames['degraded']
    gamma = float(model.decode_head.cca.gamma.scale.detach())
    return dict(head=head, seed=seed, iters=iters, train_s=round(train_s, 1),
                test_s=round(test_s, 1), gamma=round(gamma, 4), frames=frames,
                miou={g: round(_miou(conf[g]), 2) for g in GROUPS})


def _stat(values: List[float], digits: int = 1) -> str:
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{mean:.{digits}f} ± {std:.{digits}f}'


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
        name = {'2d': '`RCCAHead` (2D)', '3d': '`RCCA3DHead` (3D, T = 4)'}[head]
        lines.append(f'| {name} | {len(rs)} | '
                     + ' | '.join(_stat([r['miou'][g] for r in rs]) for g in GROUPS)
                     + f" | {_stat([r['gamma'] for r in rs], digits=3)} | "
                     f"{statistics.mean(r['train_s'] for r in rs):.0f} |")
    pairs = [(a, b) for a in results if a['head'] == '2d'
             for b in results if b['head'] == '3d' and b['seed'] == a['seed']]
    if pairs:
        lines.append('')
        lines.append('Per seed, 3D minus 2D (mIoU points): ' + '; '.join(
            f"seed {a['seed']}: " + ', '.join(
                f"{g} {b['miou'][g] - a['miou'][g]:+.1f}" for g in ('all', 'degraded', 'clean'))
            for a, b in pairs))
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--heads', nargs='+', choices=sorted(CONFIGS), default=['2d', '3d'])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=1000)
    parser.add_argument('--jobs', type=int, default=2, help='parallel trainings')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per training')
    parser.add_argument('--out', default='work_dirs/video_attention_benchmark')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    def path(head: str, seed: int) -> str:
        return osp.join(args.out, f'{head}_s{seed}_it{args.iters}.json')

    runs = [(h, s) for h in args.heads for s in args.seeds]
    todo = [(h, s) for h, s in runs if not osp.exists(path(h, s))]
    print(f'video_attention_benchmark: {len(runs) - len(todo)} cached, {len(todo)} to train '
          f'({args.jobs} at a time)', flush=True)
    start, failed = time.time(), []
    # every training at nice 10 (the machine is shared), in its own process
    with ProcessPoolExecutor(max_workers=args.jobs, initializer=os.nice, initargs=(10, )) as pool:
        futures = {pool.submit(run_one, h, s, args.iters, args.threads): (h, s) for h, s in todo}
        for n, fut in enumerate(as_completed(futures), 1):
            h, s = futures[fut]
            try:
                res = fut.result()
            except Exception as exc:  # report it, keep the other runs' results
                failed.append((h, s))
                print(f'[{n}/{len(todo)}] {h} seed {s} FAILED: {type(exc).__name__}: {exc}',
                      flush=True)
                continue
            tmp = path(h, s) + '.tmp'
            with open(tmp, 'w') as f:
                json.dump(res, f)
            os.replace(tmp, path(h, s))
            print(f'[{n}/{len(todo)}] {h} seed {s}: {res["miou"]} gamma {res["gamma"]} '
                  f'({time.time() - start:.0f} s)', flush=True)
    if failed:
        print(f'video_attention_benchmark: {len(failed)} runs failed: {failed}', file=sys.stderr)
        return 1
    results: List[Dict] = []
    for h, s in runs:
        with open(path(h, s)) as f:
            results.append(json.load(f))
    text = (f'synthetic videos {DATA}, {args.iters} iterations of 2 clips x 4 frames, seeds '
            f'{args.seeds}, mIoU %\n\n' + table(results))
    table_path = osp.join(args.out, f'table_it{args.iters}.md')
    with open(table_path + '.tmp', 'w') as f:
        f.write(text + '\n')
    os.replace(table_path + '.tmp', table_path)
    print(text, flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
