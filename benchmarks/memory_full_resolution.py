"""Peak CPU memory and wall time of full-resolution inference (one Cityscapes image, 1024x2048).

    python benchmarks/memory_full_resolution.py [--configs ccnet ssr ...]
        [--scales 1.0 0.5,1.0 0.5,1.0,1.5 0.5,1.0,1.5,2.0] [--backbone-depth 18]
        [--threads 2] [--slide CH CW SH SW] [--no-naive] [--json OUT.json] [--quick]
        [--jobs 1]

What runs. Every head and neck configuration we ship for Cityscapes (``--configs``, names of
:data:`CONFIGS` or paths to config files) is built from its config file (``mmseg::`` bases
included) with random weights (no checkpoint, nothing downloaded) and predicts one random
1024x2048 image through ``model.predict`` with the config's own ``test_cfg``. The
Cityscapes 512x1024 configs of mmseg 1.x (and ours, which inherit them) test in ``whole``
mode; the SSR config slides 1024x1024 windows with stride 768 and the official-CCNet config
769x769 windows with stride 513. ``--slide CH CW SH SW`` replaces every config's test mode by
a sliding window (e.g. ``--slide 512 1024 341 683``, mmseg 0.x's Cityscapes setting).

Lighter backbone. ``--backbone-depth 18`` (the default) turns a ResNet-50/101 into a
ResNet-18 of the same type, stem, dilations and strides; the neck's and heads' input channels
follow the new backbone (read from a forward pass of a tiny image) while everything else of
the neck and heads (``channels``, attention widths, ...) stays as configured. ``0`` keeps the
config's backbone. MiT (SegFormer) backbones are never changed. ``SyncBN`` is built as ``BN``
(identical in eval mode, and needs no process group).

SSR. ``SSREncoderDecoder`` predicts the scales one at a time and fuses each into a running
state (a sum of weighted logits and a log-transmittance, C + 1 maps at the input size), so
its peak should be that of its most expensive scale plus that state, whatever the number of
scales. For every scale set of ``--scales`` (comma-separated, each containing 1.0) this
script measures, each in its own process:

- ``streamed``: ``model.predict`` with ``test_cfg.scales`` = the set (the product code path);
- ``naive``: the same per-scale predictions kept until all scales are done, as mmseg's
  ``SegTTAModel`` keeps its views: for each scale the image is resized and predicted by the
  public ``predict_view`` (logits and density resized to the input size), every result is
  stored, then :func:`~mmseg_fusion.functional.scale_fusion.fuse_scales` fuses the lists
  with the model's fusion (``model.fusion.method`` and ``model.fusion.options()``);
- ``single``: every scale of the sets alone (``test_cfg.scales = (s,)``, set after
  construction since the constructor requires 1.0), for the largest single-scale peak.

It prints the peaks, ``peak - largest single-scale peak of the scales involved`` for both
and their ratio, and checks that both give the same fused logits (per-class sums).

Measurement (:mod:`harness`). Each configuration runs in a fresh Python process
(``--worker``, :func:`harness.run_json`) with ``torch.set_num_threads(--threads)``,
``OMP_WAIT_POLICY=PASSIVE`` (idle OpenMP threads sleep instead of spinning, which on a busy
2-core machine made small predictions up to 6x slower) and :func:`harness.memory_env`'s fixed
``mmap`` threshold (every tensor above 128 KiB is ``mmap``-ed and unmapped when freed, so the
resident set follows the live tensors; with glibc's default, dynamic threshold, freed 256 KiB
tensors were seen to stay resident). Both are only defaults: values already in the
environment are kept. The process records its resident set (RSS, :func:`harness.rss_bytes`)
after the imports, builds the model, runs one warm-up prediction (on a 1/8-size image, or on
the image itself below 512 rows: lazy oneDNN and thread-pool set-up) and creates the input.
The prediction then runs once inside :class:`harness.PeakMemory`, which resets the kernel's
high-water mark of the RSS (``echo 5 > /proc/self/clear_refs``, Linux >= 4.0) and records the
RSS at the start: the RSS there minus the RSS after the imports is the **model+input** baseline
(weights, the input, what the warm-up leaves; it moved by about 64 MiB between two runs of
the default settings, while every peak repeated to the MiB), and **peak during inference** =
``VmHWM`` - that RSS, i.e. every byte the prediction had resident at its worst moment
(activations, stitched sliding-window maps, per-scale logits, outputs), measured by the
kernel, not estimated. Where the high-water mark cannot be reset the peak is marked ``*`` (an
upper bound). **time** is the wall time of that same prediction (``--repeat`` > 1 adds
untimed-for-memory runs and reports the median). On a machine shared with other jobs times
are noisy; the memory figures are not affected by other processes.

``--quick`` (for the smoke test): a 64x128 image and sliding windows scaled by 1/16.
``--jobs N`` runs N worker processes at once: each peak is still that of its own process,
but the times are then disturbed (for smoke tests only).
"""
import argparse
import gc
import json
import os
import os.path as osp
import statistics
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from harness import MIB, ROOT, PeakMemory, memory_env, rss_bytes, run_json  # noqa: E402

#: Cityscapes configs by short name: one per head / neck / segmentor type (the R101 variants
#: have the same head as the R50 ones and differ only by the backbone depth).
CONFIGS: Dict[str, str] = {
    'ccnet': 'configs/ccnet/ccnet_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    'ccnet-official': 'configs/ccnet/ccnet-official_r101-d8_4xb2-60k_cityscapes-769x769.py',
    'emanet': 'configs/emanet/emanet_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    'a2net': 'configs/a2net/a2net_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    'afa-r50': 'configs/afa/afa_r50_4xb2-80k_cityscapes-512x1024.py',
    'afa-mit-b0': 'configs/afa/afa_mit-b0_8xb1-160k_cityscapes-512x1024.py',
    'iaff-r50': 'configs/iaff/iaff_r50_4xb2-80k_cityscapes-512x1024.py',
    'iaff-mit-b0': 'configs/iaff/iaff_mit-b0_8xb1-160k_cityscapes-512x1024.py',
    'ssr': 'configs/ssr/ssr_deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    'hma': 'configs/ssr/hma_deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py',
}
DEFAULT_CONFIGS = ['ccnet', 'ccnet-official', 'emanet', 'a2net', 'afa-r50', 'afa-mit-b0',
                   'iaff-r50', 'iaff-mit-b0', 'ssr']
DEFAULT_SCALES = ['1.0', '0.5,1.0', '0.5,1.0,1.5', '0.5,1.0,1.5,2.0']
QUICK_SIZE = (64, 128)


# ---------------------------------------------------------------------------- model building
def _replace_type(cfg, old: str, new: str):
    """``cfg`` (nested dicts / lists) with every ``type=old`` replaced by ``new``."""
    if isinstance(cfg, dict):
        out = {k: _replace_type(v, old, new) for k, v in cfg.items()}
        if out.get('type') == old:
            out['type'] = new
        return out
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_replace_type(v, old, new) for v in cfg)
    return cfg


def _heads(model_cfg: dict) -> List[dict]:
    heads = [model_cfg['decode_head']]
    aux = model_cfg.get('auxiliary_head')
    if isinstance(aux, dict):
        heads.append(aux)
    elif isinstance(aux, (list, tuple)):
        heads.extend(aux)
    return heads


def swap_backbone_depth(model_cfg: dict, depth: int) -> str:
    """Set the ResNet depth of ``model_cfg`` to ``depth`` and adapt the input channels.

    The neck's ``in_channels`` become the new backbone's output channels, and each head's
    ``in_channels`` (and ``c1_in_channels``) those of the maps it reads (``in_index``), found by
    a forward pass of a 64x64 image; nothing else changes.

    Args:
        model_cfg (dict): Model config, edited in place.
        depth (int): New depth; 0 keeps the config's.

    Returns:
        str: The backbone, e.g. ``'ResNetV1c-18 (config: 50)'``.
    """
    import torch
    from mmseg.registry import MODELS
    backbone = model_cfg['backbone']
    old = backbone.get('depth')
    if old is None:
        return backbone['type']
    if not depth or depth == old:
        return f"{backbone['type']}-{old}"
    backbone['depth'] = depth
    with torch.no_grad():
        module = MODELS.build(backbone)
        module.eval()  # (mmseg's ResNet.train returns None)
        feats = module(torch.zeros(1, 3, 64, 64))
        channels = [f.shape[1] for f in feats]
        neck = model_cfg.get('neck')
        if neck:
            neck['in_channels'] = channels
            module = MODELS.build(neck)
            module.eval()
            feats = module(list(feats))
            channels = [f.shape[1] for f in feats]
    for head in _heads(model_cfg):
        index = head.get('in_index', -1)
        if isinstance(index, (list, tuple)):
            head['in_channels'] = [channels[i] for i in index]
        else:
            head['in_channels'] = channels[index]
        if 'c1_in_channels' in head:  # DeepLabV3+: reads inputs[0]
            head['c1_in_channels'] = channels[0]
    return f"{backbone['type']}-{depth} (config: {old})"


def build_model(job: dict):
    """Build the model of a job (random weights, eval mode); returns (model, backbone name)."""
    import torch
    from mmengine.config import Config, ConfigDict
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmseg_fusion  # noqa: F401
    init_default_scope('mmseg')
    model_cfg = _replace_type(Config.fromfile(job['config']).model.to_dict(), 'SyncBN', 'BN')
    model_cfg['pretrained'] = None
    model_cfg['backbone'].pop('init_cfg', None)
    model_cfg['backbone'].pop('pretrained', None)
    backbone = swap_backbone_depth(model_cfg, job['depth'])
    test_cfg = dict(model_cfg.get('test_cfg') or dict(mode='whole'))
    if job['slide']:
        ch, cw, sh, sw = job['slide']
        test_cfg.update(mode='slide', crop_size=(ch, cw), stride=(sh, sw))
    if test_cfg.get('mode') == 'slide' and job['window_factor'] != 1:
        f = job['window_factor']
        test_cfg['crop_size'] = tuple(max(1, round(c * f)) for c in test_cfg['crop_size'])
        test_cfg['stride'] = tuple(max(1, round(s * f)) for s in test_cfg['stride'])
    model_cfg['test_cfg'] = test_cfg
    torch.manual_seed(0)  # the same weights in every process (streamed and naive compared)
    model = MODELS.build(ConfigDict(model_cfg))
    model.eval()
    if job['mode'] != 'plain':
        # after construction: a single scale other than 1.0 is refused by the constructor
        model.test_cfg.scales = tuple(job['scales'])
    return model, backbone


def count_windows(test_cfg, height: int, width: int, scales: Sequence[float]) -> int:
    """Network passes of one prediction: sliding windows summed over the scales (1 = whole)."""
    total = 0
    for s in scales:
        h, w = max(1, int(round(height * s))), max(1, int(round(width * s)))
        if test_cfg.get('mode', 'whole') != 'slide':
            total += 1
            continue
        (ch, cw), (sh, sw) = test_cfg['crop_size'], test_cfg['stride']
        total += ((max(h - ch + sh - 1, 0) // sh + 1) * (max(w - cw + sw - 1, 0) // sw + 1))
    return total


# ---------------------------------------------------------------------------- inference
def make_samples(height: int, width: int, img_shape: Optional[Tuple[int, int]] = None) -> list:
    from mmseg.structures import SegDataSample
    img_shape = img_shape or (height, width)
    return [SegDataSample(metainfo=dict(ori_shape=(height, width), img_shape=img_shape,
                                        pad_shape=img_shape, padding_size=[0, 0, 0, 0],
                                        scale_factor=(img_shape[1] / width,
                                                      img_shape[0] / height),
                                        flip=False, flip_direction=None))]


def predict_naive(model, inputs, scales: Sequence[float]):
    """Multi-scale SSR keeping every scale's prediction until the end (SegTTAModel-style).

    Returns:
        list[SegDataSample]: One sample with the fused ``seg_logits`` and ``pred_sem_seg``.
    """
    import torch.nn.functional as F

    from mmseg_fusion.functional import scale_fusion as sf
    height, width = inputs.shape[-2:]
    views = []
    for s in scales:
        size = (max(1, int(round(height * s))), max(1, int(round(width * s))))
        x = inputs if s == 1.0 else F.interpolate(inputs, size=size, mode='bilinear',
                                                  align_corners=False)
        # logits (C, H, W) and density (1, H, W) at the input size, kept until all are done
        views.append(model.predict_view(x, make_samples(height, width, size), scale=s)[0])
        del x
    logits = [v.seg_logits.data[None] for v in views]
    densities = ([v.seg_density.data[None] for v in views]
                 if 'seg_density' in views[0] else None)
    # the model's registered scale fusion: its method and options (phi, terminal for SSR)
    fused = sf.fuse_scales(logits, densities, method=model.fusion.method,
                           **model.fusion.options())
    return model.postprocess_result(fused, make_samples(height, width))


def run_once(model, job: dict, inputs):
    height, width = inputs.shape[-2:]
    if job['mode'] == 'naive':
        return predict_naive(model, inputs, job['scales'])
    return model.predict(inputs, make_samples(height, width))


def worker(job: dict) -> dict:
    """Measure one configuration in this (fresh) process."""
    import torch
    torch.set_num_threads(job['threads'])
    torch.set_flush_denormal(True)
    rss_start = rss_bytes()
    model, backbone = build_model(job)
    height, width = job['height'], job['width']
    warm = (height // 8, width // 8) if height >= 512 else (height, width)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        run_once(model, job, torch.randn(1, 3, *warm, generator=g))
        gc.collect()
        inputs = torch.randn(1, 3, height, width, generator=g)
        gc.collect()
        with PeakMemory() as memory:
            start = time.perf_counter()
            out = run_once(model, job, inputs)
            times = [time.perf_counter() - start]
        logits = out[0].seg_logits.data
        result = dict(
            name=job['name'], mode=job['mode'], scales=job['scales'], backbone=backbone,
            test_mode=model.test_cfg.get('mode', 'whole'),
            windows=count_windows(model.test_cfg, height, width, job['scales'] or [1.0]),
            params=sum(p.numel() for p in model.parameters()),
            baseline_bytes=memory.before - rss_start, peak_bytes=memory.peak,
            exact=memory.exact,
            logits_shape=list(logits.shape), finite=bool(torch.isfinite(logits).all()),
            class_sums=logits.double().sum(dim=(1, 2)).tolist())
        del out, logits
        for _ in range(job['repeat'] - 1):
            start = time.perf_counter()
            run_once(model, job, inputs)
            times.append(time.perf_counter() - start)
    result['time_s'] = statistics.median(times)
    return result


# ---------------------------------------------------------------------------- driver
def parse_scales(text: str) -> Tuple[float, ...]:
    try:
        scales = tuple(float(s) for s in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'not a comma-separated list of numbers: {text!r}') from None
    if 1.0 not in scales or any(s <= 0 for s in scales) or list(scales) != sorted(set(scales)):
        raise argparse.ArgumentTypeError(
            f'a scale set must be positive, strictly ascending and contain 1.0, got {text!r}')
    return scales


def resolve_config(name: str) -> Tuple[str, str]:
    """(short name, absolute path) of a ``--configs`` entry (a name of CONFIGS or a path)."""
    if name in CONFIGS:
        return name, osp.join(ROOT, CONFIGS[name])
    path = name if osp.isabs(name) else osp.join(os.getcwd(), name)
    if not osp.isfile(path):
        raise SystemExit(f'memory_full_resolution: --configs: {name!r} is neither one of '
                         f'{sorted(CONFIGS)} nor a config file')
    return osp.splitext(osp.basename(path))[0], path


def is_multiscale(path: str) -> bool:
    from mmengine.config import Config
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # pkg_resources deprecation from mmengine
        model = Config.fromfile(path, import_custom_modules=False).model
    return model.get('type') == 'SSREncoderDecoder'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', nargs='+', default=DEFAULT_CONFIGS,
                        help=f'names ({", ".join(CONFIGS)}) or config files')
    parser.add_argument('--scales', nargs='+', type=parse_scales,
                        default=[parse_scales(s) for s in DEFAULT_SCALES],
                        help='SSR scale sets, each comma-separated (e.g. 0.5,1.0)')
    parser.add_argument('--backbone-depth', type=int, default=18,
                        help='ResNet depth replacing the config\'s (0: keep the config\'s)')
    parser.add_argument('--height', type=int, default=1024)
    parser.add_argument('--width', type=int, default=2048)
    parser.add_argument('--slide', type=int, nargs=4, metavar=('CH', 'CW', 'SH', 'SW'),
                        help='force sliding-window inference (crop, stride) for every config')
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    parser.add_argument('--repeat', type=int, default=1, help='timed predictions per process')
    parser.add_argument('--jobs', type=int, default=1,
                        help='worker processes run at once (peaks stay per process; times '
                        'are then disturbed: for smoke tests)')
    parser.add_argument('--no-naive', action='store_true',
                        help='skip the naive (all scales kept) SSR runs')
    parser.add_argument('--json', help='also write the raw results to this file')
    parser.add_argument('--quick', action='store_true',
                        help=f'{QUICK_SIZE[0]}x{QUICK_SIZE[1]} image, windows scaled to match')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.height, args.width = QUICK_SIZE
    if min(args.repeat, args.threads, args.jobs) < 1 or args.backbone_depth < 0:
        parser.error('--repeat, --threads and --jobs must be >= 1, --backbone-depth >= 0')
    return args


def make_jobs(args: argparse.Namespace) -> List[dict]:
    common = dict(height=args.height, width=args.width, depth=args.backbone_depth,
                  threads=args.threads, repeat=args.repeat, slide=args.slide,
                  window_factor=args.height / 1024 if args.quick else 1)
    jobs = []
    for entry in args.configs:
        name, path = resolve_config(entry)
        if not is_multiscale(path):
            jobs.append(dict(common, name=name, config=path, mode='plain', scales=None))
            continue
        wanted = [('single', (s, )) for s in sorted({s for ss in args.scales for s in ss})]
        wanted += [('stream', ss) for ss in args.scales]
        if not args.no_naive:
            wanted += [('naive', ss) for ss in args.scales if len(ss) > 1]
        seen = set()
        for mode, scales in wanted:
            # a one-scale set is its own single-scale run
            key = ('stream' if mode == 'single' else mode, scales)
            if key in seen:
                continue
            seen.add(key)
            jobs.append(dict(common, name=name, config=path, mode=key[0], scales=list(scales)))
    return jobs


def run_job(job: dict) -> dict:
    """Measure ``job`` in a fresh process; its result, or one with an ``error``."""
    # no spinning threads on a shared CPU
    env = memory_env(OMP_WAIT_POLICY='PASSIVE', PYTHONWARNINGS='ignore')
    try:
        return run_json([sys.executable, osp.abspath(__file__), '--worker', json.dumps(job)],
                        env)
    except RuntimeError as e:
        return dict(name=job['name'], mode=job['mode'], scales=job['scales'], error=str(e))


def _mib(x: Optional[float]) -> str:
    return '-' if x is None else f'{x / MIB:.0f}'


def _peak(r: dict) -> str:
    return _mib(r['peak_bytes']) + ('' if r['exact'] else '*')


def _minus(r: dict, largest: Optional[int]) -> Optional[int]:
    return None if largest is None else r['peak_bytes'] - largest


def _scales(scales: Sequence[float]) -> str:
    return '(' + ', '.join(f'{s:g}' for s in scales) + ')'


def print_tables(args: argparse.Namespace, results: List[dict]) -> None:
    ok = [r for r in results if 'error' not in r]
    print(f'\nimage 1x3x{args.height}x{args.width}, {args.threads} CPU threads, random weights, '
          f'backbone depth {args.backbone_depth or "as configured"}; peak = VmHWM during '
          'predict - RSS before it (fresh process each row)\n')
    plain = [r for r in ok if r['mode'] == 'plain']
    if plain:
        print('| config | backbone | test mode (windows) | params (M) | model+input (MiB) '
              '| peak during inference (MiB) | time (s) |')
        print('|---|---|---|---:|---:|---:|---:|')
        for r in plain:
            print(f"| {r['name']} | {r['backbone']} | {r['test_mode']} ({r['windows']}) | "
                  f"{r['params'] / 1e6:.1f} | {_mib(r['baseline_bytes'])} | {_peak(r)} | "
                  f"{r['time_s']:.1f} |")
    for name in dict.fromkeys(r['name'] for r in ok if r['mode'] != 'plain'):
        rows = [r for r in ok if r['name'] == name]
        single = {r['scales'][0]: r for r in rows if r['mode'] == 'stream'
                  and len(r['scales']) == 1}
        classes = rows[0]['logits_shape'][0]
        logit_map = classes * args.height * args.width * 4
        print(f'\n{name} ({rows[0]["backbone"]}, {rows[0]["test_mode"]}): single scales')
        print('| scale | input | windows | model+input (MiB) | peak (MiB) | time (s) |')
        print('|---:|---|---:|---:|---:|---:|')
        for s, r in sorted(single.items()):
            print(f"| {s:g} | {round(args.height * s)}x{round(args.width * s)} | "
                  f"{r['windows']} | {_mib(r['baseline_bytes'])} | {_peak(r)} | "
                  f"{r['time_s']:.1f} |")
        print(f'\n{name}: scale sets (one fp32 logit map at the input size: '
              f'{_mib(logit_map)} MiB; running SSR state: {classes} + 1 maps = '
              f'{_mib(logit_map * (classes + 1) / classes)} MiB)')
        print('| scales | windows | streamed peak (MiB) | streamed - largest single (MiB) | '
              'streamed time (s) | naive peak (MiB) | naive - largest single (MiB) | '
              'naive time (s) | peak streamed / naive | same output |')
        print('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|')
        for scales in args.scales:
            scales = list(scales)
            stream = next((r for r in rows if r['mode'] == 'stream' and r['scales'] == scales),
                          None)
            if stream is None:
                continue
            naive = next((r for r in rows if r['mode'] == 'naive' and r['scales'] == scales),
                         None)
            largest = (max(single[s]['peak_bytes'] for s in scales)
                       if all(s in single for s in scales) else None)
            cells = [_scales(scales), str(stream['windows']), _peak(stream),
                     _mib(_minus(stream, largest)), f"{stream['time_s']:.1f}"]
            if naive is None:
                cells += ['-'] * 5
            else:
                a, b = stream['class_sums'], naive['class_sums']
                rel = max(abs(x - y) for x, y in zip(a, b)) / max(max(map(abs, a)), 1e-12)
                cells += [_peak(naive), _mib(_minus(naive, largest)), f"{naive['time_s']:.1f}",
                          f"{stream['peak_bytes'] / naive['peak_bytes']:.2f}",
                          f'yes ({rel:.0e})' if rel < 1e-4 else f'NO ({rel:.1e})']
            print('| ' + ' | '.join(cells) + ' |')
    if any(not r['exact'] for r in ok):
        print('\n* VmHWM could not be reset (/proc/self/clear_refs): upper bound')
    for r in results:
        if 'error' in r:
            print(f"\nFAILED {r['name']} {r['mode']} {r['scales']}: {r['error']}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if not osp.isfile('/proc/self/status'):
        raise SystemExit('memory_full_resolution: needs Linux /proc to read the peak RSS')
    jobs = make_jobs(args)
    total = time.perf_counter()

    def run_and_report(job: dict) -> dict:
        start = time.perf_counter()
        r = run_job(job)
        what = f"{job['name']} {job['mode']}" + (
            f" {_scales(job['scales'])}" if job['scales'] else '')
        status = (f"failed: {r['error'][-300:]}" if 'error' in r else
                  f"peak {_mib(r['peak_bytes'])} MiB, predict {r['time_s']:.1f} s")
        print(f'[{jobs.index(job) + 1}/{len(jobs)}] {what}: {status} '
              f'({time.perf_counter() - start:.0f} s with start-up)', flush=True)
        return r

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_and_report, jobs))
    print_tables(args, results)
    print(f'\ntotal: {time.perf_counter() - total:.0f} s')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    bad = [r for r in results if 'error' in r or not r['finite'] or r['peak_bytes'] <= 0]
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
