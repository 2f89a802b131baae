"""Compare SSRTTAModel with mmseg's SegTTAModel on the same test-time views (time, peak memory).

    python benchmarks/benchmark_tta.py [--height 512 --width 1024 --classes 19
                                            --scales 0.5 1.0 1.5 --repeat 3]

Both wrap the same small ``SSREncoderDecoder`` (ResNetV1c-18 at 1/8 width, random weights) and
see the same batch: one image, views = scales x {no flip, flip} (6 by default) built as mmcv's
``TestTimeAug`` does. ``SegTTAModel`` runs each view through ``module.test_step`` (single scale,
``test_cfg.scales=(1.0,)``) and averages the softmax of all views; ``SSRTTAModel`` predicts each
view with its density and fuses it into a running SSR state at once.

Peak memory on CPU (:class:`harness.PeakMemory`): each model is measured in its own fresh
process (:func:`harness.run_json`). Tensors of more than 128 KiB (every per-view logit map
here) are ``mmap``-allocated by glibc's malloc (the children run with
:func:`harness.memory_env`'s fixed threshold) and unmapped when freed, so the resident set
follows the bytes of live large tensors. After one warm-up ``test_step``, the kernel's
high-water mark of the resident set is reset and ``VmHWM`` during the next ``test_step``
minus the resident set just before it is the peak of the memory the TTA step allocates
(network activations plus the views held for the merge; the network part is the same for
both); it is marked ``*`` where the mark could not be reset (an upper bound). Time: the
median of ``--repeat`` runs of ``test_step`` in that process, the measured run included.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from harness import MIB, PeakMemory, run_json  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description='SSRTTAModel vs SegTTAModel')
    parser.add_argument('--height', type=int, default=512)
    parser.add_argument('--width', type=int, default=1024)
    parser.add_argument('--classes', type=int, default=19)
    parser.add_argument('--scales', type=float, nargs='+', default=[0.5, 1.0, 1.5])
    parser.add_argument('--repeat', type=int, default=3,
                        help='timed runs per model (the median is reported)')
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    parser.add_argument('--worker', choices=['ssr', 'seg'], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.repeat, args.threads) < 1:
        parser.error(f'--repeat and --threads must be >= 1, got {args.repeat}, {args.threads}')
    return args


def build(kind: str, num_classes: int) -> torch.nn.Module:
    """``SSRTTAModel`` (``kind='ssr'``) or ``SegTTAModel`` around the small SSR segmentor."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmseg_fusion  # noqa: F401
    init_default_scope('mmseg')
    norm = dict(type='BN', requires_grad=True)
    segmentor = dict(
        type='SSREncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
                      out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1),
                      norm_cfg=norm),
        decode_head=dict(type='FCNHead', in_channels=64, in_index=3, channels=16, num_convs=1,
                         num_classes=num_classes, norm_cfg=norm,
                         loss_decode=dict(type='CrossEntropyLoss')),
        test_cfg=dict(mode='whole', scales=(1.0, )))
    tta = 'SSRTTAModel' if kind == 'ssr' else 'SegTTAModel'
    return MODELS.build(dict(type=tta, module=segmentor)).eval()


def make_views(height: int, width: int, scales: Sequence[float]) -> dict:
    """One image, views = scales x flips, as mmcv's TestTimeAug + pseudo_collate give them."""
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(0)
    img = (torch.rand(3, height, width, generator=g) * 255).to(torch.uint8)
    inputs: List[list] = []
    samples: List[list] = []
    for scale in scales:
        for flip in (False, True):
            size = (int(round(height * scale)), int(round(width * scale)))
            x = F.interpolate(img[None].float(), size=size, mode='bilinear',
                              align_corners=False)[0].to(torch.uint8)
            x = x.flip(-1) if flip else x
            meta = dict(img_path='bench.png', ori_shape=(height, width), img_shape=size,
                        scale_factor=(size[1] / width, size[0] / height), flip=flip,
                        flip_direction='horizontal' if flip else None)
            inputs.append([x])
            samples.append([SegDataSample(metainfo=meta)])
    return dict(inputs=inputs, data_samples=samples)


def worker(args: argparse.Namespace) -> dict:
    """Measure one model in this (fresh) process: peak bytes, median time, prediction shape."""
    torch.set_num_threads(args.threads)
    model = build(args.worker, args.classes)
    data = make_views(args.height, args.width, args.scales)
    with torch.no_grad():
        model.test_step(data)  # warm-up: lazy kernel and thread-pool set-up
        with PeakMemory() as memory:
            start = time.perf_counter()
            out = model.test_step(data)
            times = [time.perf_counter() - start]
        for _ in range(args.repeat - 1):
            start = time.perf_counter()
            out = model.test_step(data)
            times.append(time.perf_counter() - start)
    return dict(model=args.worker, peak_bytes=memory.peak, exact=memory.exact,
                time_s=statistics.median(times), views=len(data['inputs']),
                pred_shape=list(out[0].pred_sem_seg.shape))


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Measure both models, each in a fresh process, and print the comparison."""
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return
    results = {}
    base = [sys.executable, os.path.abspath(__file__), '--height', str(args.height), '--width',
            str(args.width), '--classes', str(args.classes), '--repeat', str(args.repeat),
            '--threads', str(args.threads), '--scales', *map(str, args.scales)]
    for kind in ('seg', 'ssr'):
        print(f'benchmark_tta: measuring {kind} in a fresh process', flush=True)
        try:
            results[kind] = run_json(base + ['--worker', kind])
        except RuntimeError as e:
            raise SystemExit(f'benchmark_tta: the {kind} worker failed: {e}') from None
    seg, ssr = results['seg'], results['ssr']
    view_mib = args.classes * args.height * args.width * 4 / MIB
    print(f'views: {ssr["views"]} (scales {args.scales} x 2 flips), image '
          f'{args.height}x{args.width}, {args.classes} classes '
          f'(one fp32 logit map at the original size: {view_mib:.1f} MiB)')
    print(f'{"model":<14}{"time (s)":>10}{"peak (MiB)":>12}')
    for name, r in (('SegTTAModel', seg), ('SSRTTAModel', ssr)):
        mark = '' if r['exact'] else '*'
        print(f'{name:<14}{r["time_s"]:>10.3f}{r["peak_bytes"] / MIB:>11.1f}{mark or " "}')
    print(f'time ratio SSR/Seg: {ssr["time_s"] / seg["time_s"]:.3f}   '
          f'peak memory ratio SSR/Seg: {ssr["peak_bytes"] / seg["peak_bytes"]:.3f}')
    if not (seg['exact'] and ssr['exact']):
        print('* the high-water mark could not be reset: an upper bound')


if __name__ == '__main__':
    main()
