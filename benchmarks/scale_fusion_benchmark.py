"""Scale fusion vs the plain model at equal iterations and at equal training compute.

    python benchmarks/scale_fusion_benchmark.py [--group main] [--data a b] [--seeds 0 1 2]
        [--jobs 2] [--out work_dirs/scale_fusion_benchmark]

Every row is an mmseg config trained from scratch with mmengine's ``Runner`` (mmseg's
datasets, ``RandomResize``/``RandomCrop``/``RandomFlip`` as the configs write them, data
preprocessor, losses, SGD + poly), for each seed, on data generated in mmseg's folder layout,
then evaluated on the validation split with mmseg's ``IoUMetric`` at scale 1.0, as the mean of
the logits over the 5 test scales (mean-TTA) and, for the fusion models, with their own fusion
(:mod:`benchmarks.harness`). The network is the demo's: ResNetV1c-18 at 1/8 width (D8) +
FCNHead + an auxiliary FCNHead, 128x128 images, batch 8.

Training compute is counted, not estimated: the FLOPs of one training step of each row
(forward and backward, ``torch.utils.flop_counter``) on a batch of 8 images at each of its
scale sets, averaged over the sets the row draws from; a row's training GFLOPs are its
iterations times that. The plain model's step sees 128x128 crops (``RandomCrop`` after
``RandomResize``, padded to 128x128 by the data preprocessor); an SSR step at the pair
(1.0, 2.0) sees 128x128 and 256x256 inputs.

Rows (:data:`ROWS`, ``name@iterations``): ``plain`` (no scale augmentation), ``plain-aug``
(mmseg's ``RandomResize(ratio_range=(0.5, 2.0))`` + ``RandomCrop(cat_max_ratio=0.75)``, the
recipe of mmseg's configs), ``ssr`` / ``hma`` / ``softmax`` (the defaults of
``SSREncoderDecoder``: a random pair of scales per step, each scale fully supervised),
``ssr-official`` (the official recipe), and the retrofits ``retrofit-ssr`` / ``retrofit-hma``
(a trained ``plain-aug`` checkpoint fine-tuned as SSR / HMA) with their control
``plain-aug-cont`` (the same checkpoint trained on as plain for the same extra compute).
Results are cached per (data, row, seed) as JSON under ``--out``; a second run only trains
what is missing and rewrites the tables (``--out/*.md``) and the plot of mIoU against
training GFLOPs (``--out/compute_<data>.png``).

Data sets: ``a`` (tuning: 2-8 objects of 6 px up to 1.25 times the image, whose texture
period grows with the size, 400 train / 100 val images) and ``b`` (held out, never tuned on:
another seed, up to 10 objects of 5 px up to 1.5 times the image, finer textures).
"""
import argparse
import dataclasses
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from harness import (  # noqa: E402
    ROOT,
    JsonCache,
    evaluate,
    fmt_mean_std,
    load_config,
    mean_std,
    random_samples,
    run_jobs,
    step_flops,
    train,
)

TEST_SCALES = (0.5, 0.75, 1.0, 1.5, 2.0)
#: inference scale sets of the cost/accuracy table
SCALE_SETS = ((1.0, ), (1.0, 2.0), (0.5, 1.0, 2.0), TEST_SCALES)
NUM_CLASSES = 5
DATASETS = {
    'a': dict(image_size=128, min_size=6.0, max_objects=8, num_train=400, num_val=100, seed=0,
              style='wide'),
    'b': dict(image_size=128, min_size=5.0, max_objects=10, num_train=400, num_val=100, seed=7,
              style=dict(base='legible', max_size_ratio=1.5, period_divisor=5.0)),
}
PLAIN = osp.join(ROOT, 'benchmarks', 'configs', 'fcn_r18-d8-w8_synthetic-128x128.py')
AFA = osp.join(ROOT, 'benchmarks', 'configs', 'afa_r18-w8_synthetic-128x128.py')
SSR = osp.join(ROOT, 'configs', 'ssr', 'ssr_fcn_r18-d8_1xb8-1500_synthetic-128x128.py')
NO_RESIZE = {'train_dataloader.dataset.pipeline.2.ratio_range': (1.0, 1.0),
             'train_dataloader.dataset.pipeline.3.cat_max_ratio': 1.0}
#: method -> (config, cfg-options, description)
METHODS: Dict[str, Tuple[str, dict, str]] = {
    'plain': (PLAIN, NO_RESIZE, 'plain FCN, no scale augmentation'),
    'plain-aug': (PLAIN, {}, "plain FCN + mmseg's RandomResize(0.5-2) + RandomCrop"),
    'plain-aug-nocat': (PLAIN, {'train_dataloader.dataset.pipeline.3.cat_max_ratio': 1.0},
                        'plain-aug without RandomCrop\'s cat_max_ratio (crops not re-drawn)'),
    'plain-aug-down': (PLAIN, {'train_dataloader.dataset.pipeline.2.ratio_range': (0.5, 1.0)},
                       'plain-aug, RandomResize ratios 0.5-1 only (zoom out)'),
    'plain-aug-up': (PLAIN, {'train_dataloader.dataset.pipeline.2.ratio_range': (1.0, 2.0)},
                     'plain-aug, RandomResize ratios 1-2 only (zoom in)'),
    'ssr': (SSR, {}, 'SSR, the defaults (random pairs, full per-scale loss, terminal)'),
    'hma': (SSR, {'model.fusion': 'hma'}, 'HMA, the same training'),
    'softmax': (SSR, {'model.fusion': 'softmax'}, 'Attention to Scale (softmax), the same '
                                                  'training'),
    'ssr-official': (SSR, {'model.fusion': dict(_delete_=True, type='SSRScaleFusion',
                                                terminal=False),
                           'model.train_scales': (0.5, 1.0),
                           'model.scale_loss_weight': 0.05},
                     'SSR, the official recipe ((0.5, 1), per-scale loss 0.05, not terminal)'),
    'afa': (AFA, {}, 'AFANeck (AFA nodes and final fusion) + FCN, with the scale augmentation'),
    'concat': (AFA, {'model.neck.fusion': 'concat'}, "the same neck with DLA-Up's concat nodes"),
    'add': (AFA, {'model.neck.fusion': 'add'}, 'the same neck, levels summed'),
}
#: retrofit method -> (method it fine-tunes as, the plain row it starts from)
RETROFITS = {'retrofit-ssr': 'ssr', 'retrofit-hma': 'hma', 'plain-aug-cont': 'plain-aug'}
#: the plain-aug schedule the retrofits start from (``--retrofit-base``), and their extra
#: training compute as a fraction of that schedule's
RETROFIT_BASE, RETROFIT_EXTRA = 1000, 0.2
GROUPS = {
    # issue tables: equal iterations and equal training compute at the base schedule
    'main': ['plain@1000', 'plain-aug@1000', 'plain-aug@2766', 'ssr@1000', 'hma@1000',
             'softmax@1000', 'ssr-official@1000'],
    # the sweep of training compute (1x, 2x, 4x of 1383 images at 1.0 scale per 8-image step)
    'sweep': ['plain-aug@500', 'plain-aug@1383', 'plain-aug@2766', 'plain-aug@5532',
              'ssr@500', 'ssr@2000', 'hma@500', 'softmax@500'],
    # from the 1000-iteration model (not converged) and from the 2766-iteration one
    'retrofit': ['retrofit-ssr', 'retrofit-hma', 'plain-aug-cont', 'retrofit-ssr@2766',
                 'retrofit-hma@2766', 'plain-aug-cont@2766'],
    'afa': ['plain-aug@1000', 'afa@1000', 'concat@1000', 'add@1000'],
    # why random resize cost accuracy in the earlier in-memory loop (no cat_max_ratio there)
    'diagnosis': ['plain@1000', 'plain-aug@1000', 'plain-aug-nocat@1000',
                  'plain-aug-down@1000', 'plain-aug-up@1000', 'plain@2766'],
    'heldout': ['plain@1000', 'plain-aug@1000', 'plain-aug@2766', 'ssr@1000', 'hma@1000',
                'softmax@1000', 'retrofit-ssr@2766', 'plain-aug-cont@2766'],
}


# ----------------------------------------------------------------------------- rows
def parse_row(row: str) -> Tuple[str, int]:
    """``'ssr@1000'`` -> ``('ssr', 1000)``; a retrofit row's iterations are derived.

    A retrofit row is its name (from ``plain-aug@<--retrofit-base>``) or ``<name>@<base>``
    (from ``plain-aug@<base>``), e.g. ``retrofit-ssr@2766``.
    """
    method, _, iters = row.partition('@')
    if method in RETROFITS and (not iters or iters.isdigit() and int(iters) >= 1):
        return method, 0
    if method not in METHODS or not iters.isdigit() or int(iters) < 1:
        raise SystemExit(f'scale_fusion_benchmark: row {row!r} must be <method>@<iterations> '
                         f'with a method of {sorted(METHODS)} or one of {sorted(RETROFITS)}')
    return method, int(iters)


def is_retrofit(row: str) -> bool:
    """Whether ``row`` fine-tunes a trained plain-aug model (``RETROFITS``)."""
    return parse_row(row)[0] in RETROFITS


def retrofit_base(row: str, default: int = RETROFIT_BASE) -> int:
    """The plain-aug schedule a retrofit row starts from: ``<name>@<base>``, else ``default``."""
    base = row.partition('@')[2]
    return int(base) if base else default


def row_config(row: str, data_root: str, work_dir: str, base: int = RETROFIT_BASE):
    """The Config of ``row`` on the data at ``data_root``: iterations, schedule, data.

    A retrofit row starts from the ``plain-aug@<base>`` model of the same seed.
    """
    method, iters = parse_row(row)
    options = {}
    if method in RETROFITS:
        base = retrofit_base(row, base)
        target = RETROFITS[method]
        config, options, _ = METHODS[target]
        options = dict(options)
        base_flops = train_flops(PLAIN, {}) * base
        iters = max(1, round(RETROFIT_EXTRA * base_flops / train_flops(config, options)))
        # from the plain-aug checkpoint of the same seed (the state dict loads with only the
        # scale attention missing); a fifth of the base learning rate
        options.update({'load_from': osp.join(work_dir, '..', f'plain-aug@{base}',
                                              'model.pth'),
                        'optim_wrapper.optimizer.lr': 0.01})
    else:
        config, options, _ = METHODS[method]
        options = dict(options)
    options.update({'train_cfg.max_iters': iters, 'param_scheduler.0.end': iters})
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options[f'{loader}.dataset.data_root'] = data_root
    return load_config(config, options), iters


_FLOPS: Dict[Tuple[str, str], float] = {}


def train_flops(config: str, options: dict, batch: int = 8, size: int = 128) -> float:
    """FLOPs of one training step of a config: forward + backward on ``batch`` images.

    For an ``SSREncoderDecoder`` the mean over its training scale sets (one drawn per step).
    """
    key = (config, repr(sorted(options.items())))
    if key not in _FLOPS:
        import torch
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS

        init_default_scope('mmseg')
        cfg = load_config(config, options)
        model = MODELS.build(cfg.model)
        model.train()
        inputs = torch.randn(batch, 3, size, size)
        samples = random_samples(batch, size, size, NUM_CLASSES)
        sets = getattr(model, 'train_scale_sets', [None])
        total = 0.0
        for scales in sets:
            if scales is not None:
                model.train_scale_sets = (scales, )

            def step():
                losses = model.loss(inputs, samples)
                sum(v for k, v in losses.items() if 'loss' in k).backward()

            total += step_flops(step)
        _FLOPS[key] = total / len(sets)
    return _FLOPS[key]


def infer_flops(model, scales: Sequence[float], size: int = 128) -> float:
    """FLOPs of predicting one image of ``size`` x ``size`` fused over ``scales``."""
    import torch
    model.eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        if scales == (1.0, ) and not hasattr(model, 'multiscale_logits'):
            return step_flops(lambda: model.encode_decode(x, [dict(img_shape=(size, size))]))
        return step_flops(lambda: model.multiscale_logits(x, scales))


# ----------------------------------------------------------------------------- evaluation
def eval_model(cfg, trained, fusion, scales: Sequence[float]):
    """An ``SSREncoderDecoder`` of ``cfg.model`` with ``fusion`` over ``scales``.

    It gets the weights of ``trained``; those of a plain ``EncoderDecoder`` load with no key
    missing for the fusions without density (mean, max).
    """
    import copy

    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.type = 'SSREncoderDecoder'
    model_cfg.fusion = fusion
    model_cfg.test_cfg = dict(mode='whole', scales=tuple(scales))
    model = MODELS.build(model_cfg)
    missing, unexpected = model.load_state_dict(trained.state_dict(), strict=False)
    assert not missing and all(k.startswith('scale_attention.') for k in unexpected), (
        missing, unexpected)
    return model.eval()


def latency_ms(model, scales: Sequence[float], repeat: int = 20, size: int = 128) -> float:
    """Median CPU time (ms) of fusing one image over ``scales``."""
    import statistics

    import torch
    x = torch.randn(1, 3, size, size)
    times = []
    with torch.no_grad():
        for i in range(repeat + 2):
            start = time.perf_counter()
            model.multiscale_logits(x, scales)
            if i >= 2:
                times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def worker(job: dict) -> dict:
    """Train one (data, row, seed) and evaluate it; the JSON-able result."""
    import torch
    work_dir = job['work_dir']
    cfg, iters = row_config(job['row'], job['data_root'], work_dir,
                            job.get('retrofit_base', RETROFIT_BASE))
    method = parse_row(job['row'])[0]
    saved = osp.join(work_dir, 'model.pth')
    if osp.isfile(saved) and osp.isfile(osp.join(work_dir, f'iter_{iters}.pth')):
        # trained to the end by an earlier run that stopped before writing its result
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS
        init_default_scope('mmseg')
        model = MODELS.build(cfg.model)
        model.load_state_dict(torch.load(saved, map_location='cpu', weights_only=True))
        train_s = None
    else:
        start = time.time()
        model = train(cfg, work_dir, job['seed'])
        train_s = round(time.time() - start, 1)
        torch.save(model.state_dict(), saved)
    own = getattr(model, 'fusion', None)
    result = dict(job, iters=iters, train_s=train_s,
                  step_gflops=train_flops(cfg.filename, _options_of(job['row'])) / 1e9)
    result['train_gflops'] = result['step_gflops'] * iters + job.get('base_gflops', 0.0)
    evals = {'single': eval_model(cfg, model, 'mean', (1.0, )),
             'mean_tta': eval_model(cfg, model, 'mean', TEST_SCALES)}
    if own is not None:
        fusion = dict(type=type(own).__name__, **own.options())
        evals['fused'] = eval_model(cfg, model, fusion, TEST_SCALES)
    for name, emodel in evals.items():
        result[name] = evaluate(emodel, cfg, NUM_CLASSES)
    # the cost/accuracy of each inference scale set (GFLOPs per image, CPU latency)
    if job.get('measure_scale_sets'):
        fusion = evals.get('fused', evals['mean_tta']).fusion
        fusion_cfg = dict(type=type(fusion).__name__, **fusion.options())
        result['scale_sets'] = {}
        for scales in SCALE_SETS:
            emodel = eval_model(cfg, model, fusion_cfg, scales)
            torch.set_num_threads(1)
            result['scale_sets'][','.join(f'{s:g}' for s in scales)] = dict(
                mIoU=evaluate(emodel, cfg, NUM_CLASSES)['mIoU'],
                gflops=infer_flops(emodel, scales) / 1e9,
                latency_ms=latency_ms(emodel, scales))
    result['method'] = method
    return result


def _options_of(row: str) -> dict:
    method = parse_row(row)[0]
    return dict(METHODS[RETROFITS.get(method, method)][1])


# ----------------------------------------------------------------------------- data
def make_data(name: str, root: str) -> str:
    """Generate data set ``name`` under ``root/<name>`` in mmseg's layout (once)."""
    from mmseg_fusion.datasets import generate_dataset
    from mmseg_fusion.datasets.synthetic_generator import STYLES
    out = osp.join(root, name)
    if osp.isdir(osp.join(out, 'img_dir', 'val')):
        return out
    spec = dict(DATASETS[name])
    style = spec.pop('style')
    if isinstance(style, dict):
        fields = dict(style)
        style = dataclasses.replace(STYLES[fields.pop('base')], **fields)
    print(f'== generating data set {name} in {out}', flush=True)

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            print(f'   {done}/{total} images', flush=True)

    generate_dataset(out, progress=progress, style=style, **spec)
    return out


# ----------------------------------------------------------------------------- tables
def _miou(rs: List[dict], key: str) -> List[float]:
    return [r[key]['mIoU'] for r in rs if key in r]


def table(results: List[dict], rows: Sequence[str]) -> str:
    """Markdown table: mean ± std over seeds of each row's evaluations and its compute."""
    lines = ['| row | recipe | seeds | training GFLOPs | scale 1.0 | mean-TTA (5 scales) | '
             'fused (5 scales) | worst class at the best column |',
             '|---|---|---|---|---|---|---|---|']
    for row in rows:
        rs = [r for r in results if r['row'] == row]
        if not rs:
            continue
        method = parse_row(row)[0]
        recipe = METHODS[RETROFITS.get(method, method)][2]
        if method in RETROFITS:
            recipe = (f"`plain-aug@{rs[0]['retrofit_base']}` + {RETROFIT_EXTRA:.0%} more "
                      f'compute as {RETROFITS[method]}')
        cols = {k: _miou(rs, k) for k in ('single', 'mean_tta', 'fused')}
        best = max((k for k in cols if cols[k]), key=lambda k: mean_std(cols[k])[0])
        worst = min(mean_std([r[best]['class_iou'][c] for r in rs])[0]
                    for c in range(NUM_CLASSES))
        lines.append(f"| `{row}` | {recipe} | {len(rs)} | "
                     f"{mean_std([r['train_gflops'] for r in rs])[0]:.0f} | "
                     f"{fmt_mean_std(cols['single'])} | {fmt_mean_std(cols['mean_tta'])} | "
                     f"{fmt_mean_std(cols['fused'])} | {worst:.1f} |")
    return '\n'.join(lines)


def scale_set_table(results: List[dict]) -> str:
    """Markdown table of the inference scale sets: mIoU, GFLOPs and latency per image."""
    rows = sorted({r['row'] for r in results if 'scale_sets' in r})
    lines = ['| row | scales | mIoU | GFLOPs per image | CPU ms per image (1 thread) |',
             '|---|---|---|---|---|']
    for row in rows:
        rs = [r for r in results if r['row'] == row and 'scale_sets' in r]
        for key in rs[0]['scale_sets']:
            vals = [r['scale_sets'][key] for r in rs]
            lines.append(f"| `{row}` | ({key}) | {fmt_mean_std([v['mIoU'] for v in vals])} | "
                         f"{mean_std([v['gflops'] for v in vals])[0]:.3f} | "
                         f"{mean_std([v['latency_ms'] for v in vals])[0]:.1f} |")
    return '\n'.join(lines)


def plot(results: List[dict], path: str, title: str) -> None:
    """MIoU (mean ± std over seeds) against training GFLOPs, one line per method."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, NullFormatter
    fig, ax = plt.subplots(figsize=(7, 4.5))
    series = [('plain', 'single', 'plain (no aug), scale 1.0', ':'),
              ('plain-aug', 'single', 'plain + aug, scale 1.0', '--'),
              ('plain-aug', 'mean_tta', 'plain + aug, mean-TTA (5 scales)', '-'),
              ('ssr', 'fused', 'SSR fused (5 scales)', '-'), ('hma', 'fused', 'HMA fused', '-'),
              ('softmax', 'fused', 'softmax fused', '-'),
              ('retrofit-ssr', 'fused', 'SSR retrofit of plain + aug, fused', 'none'),
              ('plain-aug-cont', 'mean_tta', 'plain + aug continued, mean-TTA', 'none')]
    for method, key, label, style in series:
        points = {}
        for r in results:
            if r['method'] == method and key in r:
                points.setdefault(r['row'], []).append(r)
        if not points:
            continue
        xs, ys, es = [], [], []
        for rs in sorted(points.values(), key=lambda rs: rs[0]['train_gflops']):
            xs.append(mean_std([r['train_gflops'] for r in rs])[0] / 1e3)
            m, s = mean_std([r[key]['mIoU'] for r in rs])
            ys.append(m)
            es.append(s)
        ax.errorbar(xs, ys, yerr=es, marker='*' if style == 'none' else 'o', capsize=3,
                    label=label, linestyle=style, markersize=9 if style == 'none' else 6)
    ax.set_xscale('log')
    ticks = [1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32]
    lo, hi = ax.get_xlim()
    ax.set_xticks([t for t in ticks if lo <= t <= hi], minor=False)
    ax.xaxis.set_major_formatter(FormatStrFormatter('%g'))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel('training compute (TFLOPs, forward + backward, counted)')
    ax.set_ylabel('mIoU (mean ± std over seeds)')
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--group', nargs='+', default=['main'],
                        help=f'groups of rows: {", ".join(GROUPS)}')
    parser.add_argument('--rows', nargs='+', default=None,
                        help='rows instead of groups, e.g. ssr@1000 plain-aug@2766')
    parser.add_argument('--data', choices=sorted(DATASETS), nargs='+', default=['a'])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--jobs', type=int, default=2, help='parallel trainings')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per training')
    parser.add_argument('--scale-sets', action='store_true',
                        help='also measure the inference scale sets of ssr@1000 and '
                             'plain-aug@1000 (mIoU, GFLOPs, CPU latency)')
    parser.add_argument('--retrofit-base', type=int, default=RETROFIT_BASE,
                        help='iterations of the plain-aug model the retrofits start from')
    parser.add_argument('--out', default=osp.join('work_dirs', 'scale_fusion_benchmark'))
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.worker:
        job = JsonCache(osp.dirname(args.worker)).get(osp.basename(args.worker)[:-5])
        result = worker(job)
        JsonCache(osp.dirname(args.worker)).put(osp.basename(args.worker)[:-5], result)
        return 0
    rows = list(dict.fromkeys(args.rows or [r for g in args.group for r in GROUPS[g]]))
    for row in rows:
        parse_row(row)
    out = osp.abspath(args.out)
    cache = JsonCache(osp.join(out, 'results'))
    jobs = []
    for data in args.data:
        root = make_data(data, osp.join(out, 'data'))
        # retrofits start from the plain-aug checkpoint of the same seed: train it first
        ordered = sorted(rows, key=is_retrofit)
        for base in dict.fromkeys(retrofit_base(r, args.retrofit_base)
                                  for r in rows if is_retrofit(r)):
            if f'plain-aug@{base}' not in ordered:
                ordered.insert(0, f'plain-aug@{base}')
        for row in ordered:
            for seed in args.seeds:
                key = f'{data}_{row}_{seed}'.replace('@', '-')
                if cache.get(key) is not None and 'mean_tta' in cache.get(key):
                    continue
                job = dict(row=row, data=data, seed=seed, data_root=root, key=key,
                           work_dir=osp.join(out, 'runs', data, f'seed{seed}', row),
                           measure_scale_sets=args.scale_sets and row in ('ssr@1000',
                                                                 'plain-aug@1000'))
                if is_retrofit(row):
                    job['retrofit_base'] = retrofit_base(row, args.retrofit_base)
                cache.put(key, job)
                jobs.append(job)
    print(f'== {len(jobs)} trainings to run ({args.jobs} at a time)', flush=True)
    # the retrofits wait for their starting checkpoints: run them in a second wave
    waves = [[j for j in jobs if not is_retrofit(j['row'])],
             [j for j in jobs if is_retrofit(j['row'])]]
    failed = 0
    for wave in waves:
        for job in wave:
            if is_retrofit(job['row']):
                base = cache.get(f"{job['data']}_plain-aug-{job['retrofit_base']}_{job['seed']}")
                job['base_gflops'] = base['train_gflops']
                cache.put(job['key'], job)
        codes = run_jobs(
            wave, lambda job: [sys.executable, osp.abspath(__file__), '--worker',
                               cache.path(job['key'])],
            args.jobs, osp.join(out, 'logs'), threads=args.threads,
            describe=lambda job: f"{job['data']} {job['row']} seed {job['seed']}")
        failed += sum(c != 0 for c in codes)
    for data in args.data:
        results = [r for r in (cache.get(f[:-5]) for f in sorted(os.listdir(cache.folder))
                               if f.startswith(f'{data}_')) if r and 'mean_tta' in r]
        text = [f'## data set {data}\n', table(results, list(dict.fromkeys(
            [r for g in GROUPS.values() for r in g] + rows)))]
        if any('scale_sets' in r for r in results):
            text += ['\n', scale_set_table(results)]
        with open(osp.join(out, f'tables_{data}.md'), 'w') as f:
            f.write('\n'.join(text) + '\n')
        print('\n'.join(text), flush=True)
        if any('@' in r['row'] for r in results):
            plot(results, osp.join(out, f'compute_{data}.png'),
                 f'data set {data}: mIoU against training compute')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
