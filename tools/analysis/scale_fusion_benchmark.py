"""Seeded benchmark of the scale fusions (SSR, HMA, softmax, mean-TTA) and of the AFA neck.

    python tools/analysis/scale_fusion_benchmark.py [--rows main] [--seeds 0 1 2] [--jobs 2]
        [--iters 700] [--data a] [--out work_dirs/scale_fusion_benchmark]

Every row is one model recipe (network + training); every (row, seed) is trained from scratch
on data generated in memory by :mod:`mmseg_fusion.datasets.synthetic_generator` and evaluated
on its validation split at scale 1.0, as the mean of the logits over the test scales
(mean-TTA) and, for the fusion models, with their own fusion over the test scales. The table
gives mean ± std of mIoU over the seeds and the worst class IoU of the main evaluation.

The models are built from mmseg / mmseg_fusion configs (``MODELS.build``) and trained with
their own ``train_step`` (mmseg's data preprocessor and losses, mmengine's optimizer wrapper);
the loop itself is a lean in-process one (data held in memory, SGD + poly as the synthetic
configs), so that a 2-core CPU runs the whole main table in about half an hour. Results of
each (row, seed) are cached as JSON under ``--out``; a second run only trains what is
missing and rewrites ``--out/table.md``.

Data sets: ``a`` (the tuning set: 128x128, 2-12 objects of 6-64 px whose texture period grows
with the size, 400 train / 100 val images) and ``b`` (held out, never tuned on: 160x160,
objects of 8-80 px, another seed).
"""
import argparse
import json
import math
import os
import os.path as osp
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

TEST_SCALES = (0.5, 0.75, 1.0, 1.5, 2.0)
DATASETS = {
    'a': dict(image_size=128, min_size=6.0, max_objects=12, num_train=400, num_val=100, seed=0),
    'b': dict(image_size=160, min_size=8.0, max_objects=12, num_train=400, num_val=100, seed=7),
    # the legible style: every class learnable by the plain FCN (see configs/ssr/README.md)
    'c': dict(image_size=128, min_size=8.0, max_objects=10, num_train=400, num_val=100, seed=0,
              style='legible'),
}
NUM_CLASSES = 5
WIDTH = 8  # ResNetV1c-18 at 1/8 width

# ----------------------------------------------------------------------------- recipes
NORM = dict(type='BN', requires_grad=True)


def _fcn(w: int = WIDTH) -> dict:
    """ResNetV1c-18 (D8) + FCNHead + auxiliary FCNHead, as the synthetic configs."""
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=False, pad_val=0,
                               seg_pad_val=255),
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=w, base_channels=w,
                      num_stages=4, out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
                      strides=(1, 2, 1, 1), norm_cfg=NORM, norm_eval=False, style='pytorch',
                      contract_dilation=True),
        decode_head=dict(type='FCNHead', in_channels=8 * w, in_index=3, channels=4 * w,
                         num_convs=1, concat_input=True, dropout_ratio=0.1,
                         num_classes=NUM_CLASSES, norm_cfg=NORM, align_corners=False,
                         loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        auxiliary_head=dict(type='FCNHead', in_channels=4 * w, in_index=2, channels=2 * w,
                            num_convs=1, concat_input=False, dropout_ratio=0.1,
                            num_classes=NUM_CLASSES, norm_cfg=NORM, align_corners=False,
                            loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4)),
        train_cfg=dict(), test_cfg=dict(mode='whole'))


def _afa(fusion: str, **neck) -> dict:
    """The same backbone without dilation (strides 4-32), AFANeck, FCNHead on the fused map."""
    cfg = _fcn()
    w = WIDTH
    cfg['backbone'].update(dilations=(1, 1, 1, 1), strides=(1, 2, 2, 2))
    cfg['neck'] = dict(type='AFANeck', in_channels=[w, 2 * w, 4 * w, 8 * w], fusion=fusion,
                       fused_levels=3, norm_cfg=NORM, **neck)
    cfg['decode_head'].update(in_channels=w, in_index=0, channels=4 * w, concat_input=False)
    # outs[1 + j] is level j aggregated (in_channels[j]): the auxiliary head on level 2
    cfg['auxiliary_head'].update(in_channels=4 * w, in_index=3)
    return cfg


def _ssr(**kwargs) -> dict:
    cfg = _fcn()
    cfg['type'] = 'SSREncoderDecoder'
    cfg.update(kwargs)
    return cfg


# The official SSR recipe and the default of SSREncoderDecoder (chosen by the ablation rows
# below: each changes one thing of OFFICIAL).
OFFICIAL = dict(fusion='ssr', phi='abs', terminal=False, train_scales=(0.5, 1.0),
                scale_loss_weight=0.05, density_input='resized', fuse_log_probs=False)
CHOSEN = dict(OFFICIAL, scale_loss_weight=1.0)
OPACITY_HALF = math.log(2.0)  # |b| with 1 - exp(-|b|) = 0.5

ROWS: Dict[str, dict] = {
    # --- the main table
    'plain': dict(model=_fcn(), aug=False, doc='plain FCN (EncoderDecoder)'),
    'plain-aug': dict(model=_fcn(), aug=True, doc='plain FCN + random resize 0.5-2'),
    'hma': dict(model=_ssr(**dict(OFFICIAL, fusion='hma')), aug=False,
                doc='HMA (same segmentor, fusion=hma)'),
    'softmax': dict(model=_ssr(**dict(OFFICIAL, fusion='softmax')), aug=False,
                    doc='Attention to Scale (softmax over scales)'),
    'ssr-official': dict(model=_ssr(**OFFICIAL), aug=False,
                         doc='SSR, official recipe (slw 0.05, non-terminal)'),
    'ssr': dict(model=_ssr(**CHOSEN), aug=False,
                doc='SSR, the default: official + scale_loss_weight 1.0'),
    'afa': dict(model=_afa('afa', reduction=8), aug=False,
                doc='AFANeck fusion=afa (reduction 8: 1 hidden unit on 8 channels)'),
    'concat': dict(model=_afa('concat'), aug=False, doc='AFANeck fusion=concat'),
    # --- SSR ablations: one change of the official recipe per row
    'ssr-native': dict(model=_ssr(**dict(OFFICIAL, density_input='native')), aug=False,
                       doc='official + attention on each scale\'s own features (NVIDIA)'),
    'ssr-logsoftmax': dict(model=_ssr(**dict(OFFICIAL, fuse_log_probs=True)), aug=False,
                           doc='official + fuse log-softmax'),
    'ssr-terminal': dict(model=_ssr(**dict(OFFICIAL, terminal=True)), aug=False,
                         doc='official + terminal'),
    'ssr-slw0.2': dict(model=_ssr(**dict(OFFICIAL, scale_loss_weight=0.2)), aug=False,
                       doc='official + scale_loss_weight 0.2'),
    'ssr-slw0.5': dict(model=_ssr(**dict(OFFICIAL, scale_loss_weight=0.5)), aug=False,
                       doc='official + scale_loss_weight 0.5'),
    'ssr-slw1-terminal': dict(model=_ssr(**dict(CHOSEN, terminal=True)), aug=False,
                              doc='default + terminal'),
    'ssr-3scales': dict(model=_ssr(**dict(OFFICIAL, train_scales=(0.5, 1.0, 2.0))), aug=False,
                        doc='official + train scales (0.5, 1, 2)'),
    'ssr-opacity0.5': dict(model=_ssr(**OFFICIAL, scale_attention=dict(bias_init=OPACITY_HALF)),
                           aug=False, doc='official + initial opacity 0.5 (density bias)'),
    'ssr-softplus': dict(model=_ssr(**dict(OFFICIAL, phi='softplus')), aug=False,
                         doc='official + phi softplus'),
    'ssr-aug': dict(model=_ssr(**CHOSEN), aug=True, doc='chosen + random resize 0.5-2'),
    # --- the other fusions with the chosen training recipe (a fair comparison with `ssr`)
    'hma-slw1': dict(model=_ssr(**dict(CHOSEN, fusion='hma')), aug=False,
                     doc='HMA with the chosen recipe (scale_loss_weight 1.0)'),
    'softmax-slw1': dict(model=_ssr(**dict(CHOSEN, fusion='softmax')), aug=False,
                         doc='softmax with the chosen recipe (scale_loss_weight 1.0)'),
    'mean-slw1': dict(model=_ssr(**dict(CHOSEN, fusion='mean')), aug=False,
                      doc='mean of the scales with the chosen recipe (no attention)'),
    # --- AFA ablations
    'afa-r2': dict(model=_afa('afa', reduction=2), aug=False,
                   doc='AFANeck fusion=afa, channel-attention reduction 2'),
}
GROUPS = {
    'main': ['plain', 'plain-aug', 'hma', 'softmax', 'ssr-official', 'hma-slw1', 'mean-slw1',
             'ssr', 'afa', 'concat'],
    'ssr-ablation': ['ssr-official', 'ssr-native', 'ssr-logsoftmax', 'ssr-terminal',
                     'ssr-slw0.2', 'ssr-slw0.5', 'ssr', 'ssr-slw1-terminal', 'ssr-opacity0.5',
                     'ssr-softplus', 'ssr-3scales', 'ssr-aug'],
    'afa-ablation': ['afa', 'afa-r2', 'concat'],
}


# ----------------------------------------------------------------------------- data
def make_data(name: str) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Images (N, H, W, 3) uint8 and labels (N, H, W) uint8 of both splits of a data set."""
    from mmseg_fusion.datasets.synthetic_generator import generate_sample
    spec = DATASETS[name]
    out = {}
    for split, num, offset in (('train', spec['num_train'], 0),
                               ('val', spec['num_val'], 1_000_003)):
        imgs, labels = [], []
        for i in range(num):
            rng = np.random.default_rng([spec['seed'], offset + i])
            img, lab = generate_sample(rng, spec['image_size'], spec['min_size'],
                                       spec['max_objects'], spec.get('style', 'classic'))
            imgs.append(img)
            labels.append(lab)
        out[split] = (np.stack(imgs), np.stack(labels))
    return out


def _batch(data, idx, aug: bool, rng: np.random.Generator, size: int):
    """One training batch as ``train_step`` takes it (random flip; optional random resize)."""
    import cv2
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    imgs, labels = data
    inputs, samples = [], []
    for i in idx:
        img, lab = imgs[i], labels[i]
        if aug:  # mmseg's RandomResize(ratio 0.5-2) + RandomCrop, labels with nearest
            r = rng.uniform(0.5, 2.0)
            s = max(8, int(round(size * r)))
            img = cv2.resize(img, (s, s), interpolation=cv2.INTER_LINEAR)
            lab = cv2.resize(lab, (s, s), interpolation=cv2.INTER_NEAREST)
            if s > size:
                y, x = rng.integers(0, s - size + 1, size=2)
                img, lab = img[y:y + size, x:x + size], lab[y:y + size, x:x + size]
        if rng.random() < 0.5:
            img, lab = img[:, ::-1], lab[:, ::-1]
        h, w = lab.shape
        inputs.append(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))))
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        sample.gt_sem_seg = PixelData(
            data=torch.from_numpy(np.ascontiguousarray(lab)).long()[None])
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


# ----------------------------------------------------------------------------- train / eval
def _iou(conf: np.ndarray) -> np.ndarray:
    inter = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - inter
    return 100.0 * inter / np.maximum(union, 1)


def _evaluate(model, data, scales: Sequence[float], fusion: str, batch: int = 10) -> List[float]:
    """Per-class IoU (%) of ``model`` with ``fusion`` over ``scales`` on a split."""
    import torch
    from mmseg.structures import SegDataSample
    imgs, labels = data
    conf = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    old = (model.fusion, model.test_cfg['scales'])
    model.fusion, model.test_cfg['scales'] = fusion, tuple(scales)
    try:
        with torch.no_grad():
            for start in range(0, len(imgs), batch):
                chunk = range(start, min(start + batch, len(imgs)))
                h, w = labels.shape[1:]
                inputs = [torch.from_numpy(np.ascontiguousarray(imgs[i].transpose(2, 0, 1)))
                          for i in chunk]
                samples = [SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
                           for _ in chunk]
                preds = model.test_step(dict(inputs=inputs, data_samples=samples))
                for i, p in zip(chunk, preds):
                    pred = p.pred_sem_seg.data[0].numpy().astype(np.int64)
                    conf += np.bincount(NUM_CLASSES * labels[i].astype(np.int64).ravel()
                                        + pred.ravel(),
                                        minlength=NUM_CLASSES**2).reshape(NUM_CLASSES,
                                                                          NUM_CLASSES)
    finally:
        model.fusion, model.test_cfg['scales'] = old
    return [round(float(v), 2) for v in _iou(conf)]


def _as_fusion_model(cfg: dict, trained):
    """An ``SSREncoderDecoder`` that evaluates ``trained`` (any EncoderDecoder) over scales."""
    import copy

    from mmseg.registry import MODELS
    if cfg['type'] == 'SSREncoderDecoder':
        return trained
    ecfg = copy.deepcopy(cfg)
    ecfg.update(type='SSREncoderDecoder', fusion='mean', train_scales=(1.0, ))
    model = MODELS.build(ecfg)
    model.load_state_dict(trained.state_dict())
    return model.eval()


def _widen(cfg: dict, row: str, width: int) -> dict:
    """The FCN / SSR recipe ``cfg`` with backbone and heads at ``width`` base channels."""
    if width == WIDTH:
        return cfg
    if cfg.get('neck') is not None:
        raise ValueError(f'scale_fusion_benchmark: --width {width} is for the FCN and fusion '
                         f'rows, row {row!r} has a neck (AFA rows run at width {WIDTH})')
    cfg['backbone'].update(stem_channels=width, base_channels=width)
    cfg['decode_head'].update(in_channels=8 * width, channels=4 * width)
    cfg['auxiliary_head'].update(in_channels=4 * width, channels=2 * width)
    return cfg


def run_one(row: str, seed: int, iters: int, data_name: str, threads: int,
            lr: float, batch: int, optim_name: str = 'adamw', width: int = WIDTH) -> dict:
    """Train row ``row`` with ``seed`` and evaluate it; returns a JSON-able result."""
    import copy
    import random

    import torch
    from mmengine.logging import MMLogger
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmseg_fusion  # noqa: F401
    torch.set_num_threads(threads)
    init_default_scope('mmseg')
    spec = ROWS[row]
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (what mmengine's set_random_seed seeds, too)
    torch.manual_seed(seed)
    data = make_data(data_name)
    size = DATASETS[data_name]['image_size']
    cfg = _widen(copy.deepcopy(spec['model']), row, width)
    cfg['data_preprocessor']['size'] = (size, size)
    model = MODELS.build(cfg)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')  # init_weights logs every parameter
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    model.train()
    optimizer = (dict(type='SGD', lr=lr, momentum=0.9, weight_decay=5e-4) if optim_name == 'sgd'
                 else dict(type='AdamW', lr=lr, weight_decay=0.01))
    optim = build_optim_wrapper(model, dict(type='OptimWrapper', optimizer=optimizer))
    rng = np.random.default_rng(seed)
    start = time.time()
    n_train = len(data['train'][0])
    for it in range(iters):
        for group in optim.optimizer.param_groups:
            group['lr'] = (lr - lr / 100) * (1 - it / iters)**0.9 + lr / 100
        idx = rng.choice(n_train, size=batch, replace=False)
        log = model.train_step(_batch(data['train'], idx, spec['aug'], rng, size), optim)
        if (it + 1) % max(1, iters // 4) == 0:
            print(f'  [{row} seed {seed}] iter {it + 1}/{iters} loss {log["loss"].item():.3f} '
                  f'({time.time() - start:.0f} s)', flush=True)
    train_s = time.time() - start
    model.eval()
    emodel = _as_fusion_model(cfg, model)
    fusion = getattr(model, 'fusion', None) if cfg['type'] == 'SSREncoderDecoder' else None
    result = dict(row=row, seed=seed, iters=iters, data=data_name, lr=lr, batch=batch,
                  optim=optim_name, width=width, train_s=round(train_s, 1))
    result['single'] = _evaluate(emodel, data['val'], (1.0, ), 'mean')
    result['mean_tta'] = _evaluate(emodel, data['val'], TEST_SCALES, 'mean')
    if fusion is not None and fusion != 'mean':
        result['fused'] = _evaluate(emodel, data['val'], TEST_SCALES, fusion)
        train_scales = tuple(model.train_scales)
        result['fused_train_scales'] = _evaluate(emodel, data['val'], train_scales, fusion)
    return result


# ----------------------------------------------------------------------------- table
def _stat(values: List[float]) -> str:
    if not values:
        return '-'
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{mean:.1f} ± {std:.1f}'


def table(results: List[dict], rows: Sequence[str]) -> str:
    """Markdown table: mean ± std of mIoU over seeds per row and evaluation."""
    lines = ['| row | recipe | seeds | scale 1.0 | mean-TTA (5 scales) | fused (train scales) '
             '| fused (5 scales) | worst class IoU (best column) | train s |',
             '|---|---|---|---|---|---|---|---|---|']
    for row in rows:
        rs = [r for r in results if r['row'] == row]
        if not rs:
            continue
        cols = {}
        for key in ('single', 'mean_tta', 'fused_train_scales', 'fused'):
            cols[key] = [statistics.mean(r[key]) for r in rs if key in r]
        best = max((k for k in cols if cols[k]), key=lambda k: statistics.mean(cols[k]))
        worst = statistics.mean(min(r[best]) for r in rs)
        lines.append(f"| `{row}` | {ROWS[row]['doc']} | {len(rs)} | {_stat(cols['single'])} | "
                     f"{_stat(cols['mean_tta'])} | {_stat(cols['fused_train_scales'])} | "
                     f"{_stat(cols['fused'])} | {worst:.1f} | "
                     f"{statistics.mean(r['train_s'] for r in rs):.0f} |")
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rows', default='main',
                        help=f'a group ({", ".join(GROUPS)}) or comma-separated row names '
                             f'({", ".join(ROWS)})')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=1000)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--optim', choices=('sgd', 'adamw'), default='sgd')
    parser.add_argument('--lr', type=float, default=0.05)
    parser.add_argument('--data', choices=sorted(DATASETS), default='a')
    parser.add_argument('--width', type=int, default=WIDTH,
                        help='base channels of the FCN and fusion rows (8: 1/8 of ResNet-18)')
    parser.add_argument('--jobs', type=int, default=2, help='parallel trainings')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per training')
    parser.add_argument('--out', default='work_dirs/scale_fusion_benchmark')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    rows = GROUPS.get(args.rows, [r for r in args.rows.split(',') if r])
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        print(f'scale_fusion_benchmark: unknown rows {unknown}, expected some of '
              f'{sorted(ROWS)} or a group of {sorted(GROUPS)}', file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)

    def path(row: str, seed: int) -> str:
        wide = f'_w{args.width}' if args.width != WIDTH else ''
        return osp.join(args.out, f'{args.data}_{row}_s{seed}_it{args.iters}_{args.optim}_'
                        f'lr{args.lr:g}_b{args.batch}{wide}.json')

    todo = [(r, s) for r in rows for s in args.seeds if not osp.exists(path(r, s))]
    print(f'scale_fusion_benchmark: {len(rows) * len(args.seeds) - len(todo)} cached, '
          f'{len(todo)} to train ({args.jobs} at a time)', flush=True)
    start = time.time()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run_one, r, s, args.iters, args.data, args.threads, args.lr,
                               args.batch, args.optim, args.width): (r, s)
                   for r, s in todo}
        failed = []
        for n, fut in enumerate(as_completed(futures), 1):
            r, s = futures[fut]
            try:
                res = fut.result()
            except Exception as exc:  # report it, keep the other runs' results
                failed.append((r, s))
                print(f'[{n}/{len(todo)}] {r} seed {s} FAILED: {type(exc).__name__}: {exc}',
                      flush=True)
                continue
            tmp = path(r, s) + '.tmp'
            with open(tmp, 'w') as f:
                json.dump(res, f)
            os.replace(tmp, path(r, s))
            summary = ', '.join(f'{k} {statistics.mean(res[k]):.1f}'
                                for k in ('single', 'mean_tta', 'fused_train_scales', 'fused')
                                if k in res)
            print(f'[{n}/{len(todo)}] {r} seed {s}: {summary} '
                  f'({time.time() - start:.0f} s)', flush=True)
    if failed:
        print(f'scale_fusion_benchmark: {len(failed)} runs failed: {failed}', file=sys.stderr)
        return 1
    results = []
    for r in rows:
        for s in args.seeds:
            with open(path(r, s)) as f:
                results.append(json.load(f))
    text = (f'data {args.data} {DATASETS[args.data]}, width {args.width}, '
            f'{args.iters} iterations, batch '
            f'{args.batch}, {args.optim} lr {args.lr:g} poly, seeds {args.seeds}, mIoU %\n\n'
            + table(results, rows))
    with open(osp.join(args.out, f'table_{args.data}_{args.rows.replace(",", "+")}.md'),
              'w') as f:
        f.write(text + '\n')
    print(text, flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
