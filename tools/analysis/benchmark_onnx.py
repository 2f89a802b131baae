"""CPU latency of onnxruntime vs PyTorch for one config per model family (random weights).

    python tools/analysis/benchmark_onnx.py [--shape 512 1024] [--threads 1] [--repeat 3]
                                            [--families ccnet emanet ...]

Each family's config is built with random weights (:func:`build_export_model` with no
checkpoint), exported at ``--shape`` (static graph, :func:`export_onnx`, into a temporary
folder) and both runtimes get the same normalised random image (batch 1), each with
``--threads`` intra-op threads. Latency is the median of ``--repeat`` runs after one warm-up
run; ``ratio`` is PyTorch / onnxruntime (> 1: onnxruntime is faster). ``max |diff|`` is the
largest logit difference (``max |logit|`` gives its scale) and ``agree`` the argmax agreement
on that image. SSR configs fuse
their ``test_cfg.scales`` (whole image); a family that fails to build, export or run prints its
error in its row and the others go on. Rows are printed as they finish; the last lines are a
Markdown table.
"""
import argparse
import os.path as osp
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: name -> (config under configs/, --cfg-options): one config per family
FAMILIES: Dict[str, Tuple[str, dict]] = {
    'ccnet': ('ccnet/ccnet_r50-d8_4xb2-80k_cityscapes-512x1024.py', {}),
    'ccnet-official': ('ccnet/ccnet-official_r101-d8_4xb2-60k_cityscapes-769x769.py', {}),
    'emanet': ('emanet/emanet_r50-d8_4xb2-80k_cityscapes-512x1024.py', {}),
    'emanet-official': ('emanet/emanet-official_r101-d8_4xb4-30k_voc12aug-512x512.py', {}),
    'a2net': ('a2net/a2net_r50-d8_4xb2-80k_cityscapes-512x1024.py', {}),
    'afa-bilinear': ('afa/afa_r50_4xb2-80k_cityscapes-512x1024.py', {}),
    'afa-deconv': ('afa/afa_r50_4xb2-80k_cityscapes-512x1024.py',
                   {'model.neck.upsample': 'deconv'}),
    'iaff': ('iaff/iaff_r50_4xb2-80k_cityscapes-512x1024.py', {}),
    'afa-official-ssr': ('afa/afa-official_dla102x-ocr-ssr_8xb1-140k_cityscapes-1024x2048.py',
                         {}),
    'ssr': ('ssr/ssr_deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py', {}),
    'hma': ('ssr/hma_deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py', {}),
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='onnxruntime vs PyTorch CPU latency')
    parser.add_argument('--shape', type=int, nargs=2, default=[512, 1024], metavar=('H', 'W'))
    parser.add_argument('--threads', type=int, default=1,
                        help='intra-op threads of each runtime (default 1)')
    parser.add_argument('--repeat', type=int, default=3, help='timed runs per runtime')
    parser.add_argument('--families', nargs='+', default=list(FAMILIES),
                        choices=list(FAMILIES), help='families to run (default: all)')
    parser.add_argument('--scales', type=float, nargs='+', default=None,
                        help='scales of the SSR families (default: their test_cfg.scales)')
    parser.add_argument('--opset', type=int, default=17)
    return parser.parse_args(argv)


def median_time(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time (s) of ``repeat`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_family(name: str, args: argparse.Namespace, folder: str) -> dict:
    """Export one family and time both runtimes; returns a row (``error`` on failure)."""
    from mmseg_fusion.deployment import (
        SegmentorExportWrapper,
        build_export_model,
        export_onnx,
        onnx_session,
    )

    config, options = FAMILIES[name]
    row = dict(family=name, config=config)
    try:
        torch.manual_seed(0)
        segmentor = build_export_model(osp.join(ROOT, 'configs', config), None, options)
        scales = args.scales if hasattr(segmentor, 'fusion') else None
        wrapper = SegmentorExportWrapper(segmentor, scales=scales)
        row['scales'] = wrapper.scales
        path = osp.join(folder, f'{name}.onnx')
        start = time.perf_counter()
        export_onnx(wrapper, path, shape=args.shape, opset=args.opset)
        row['export_s'] = time.perf_counter() - start
        x = torch.randn(1, 3, *args.shape, generator=torch.Generator().manual_seed(0))
        session = onnx_session(path, threads=args.threads)
        feed = {'input': x.numpy()}
        torch.set_num_threads(args.threads)
        with torch.no_grad():
            row['torch_s'] = median_time(lambda: wrapper(x), args.repeat)
            row['ort_s'] = median_time(lambda: session.run(None, feed), args.repeat)
            ref_logits, ref_labels = wrapper(x)
        ort_logits, ort_labels = session.run(None, feed)
        row['max_abs_diff'] = (torch.from_numpy(ort_logits) - ref_logits).abs().max().item()
        row['max_abs_logit'] = ref_logits.abs().max().item()
        row['agreement'] = (torch.from_numpy(ort_labels) == ref_labels).double().mean().item()
        row['ratio'] = row['torch_s'] / row['ort_s']
    except Exception as err:  # reported in the row; the other families go on
        row['error'] = f'{type(err).__name__}: {str(err).splitlines()[0][:300]}'
    return row


def format_row(row: dict) -> str:
    if 'error' in row:
        return f"| {row['family']} | `{row['config']}` | failed: {row['error']} | | | | | | |"
    scales = ','.join(f'{s:g}' for s in row['scales'])
    return (f"| {row['family']} | `{row['config']}` | {scales} | {1e3 * row['torch_s']:.1f} | "
            f"{1e3 * row['ort_s']:.1f} | {row['ratio']:.2f} | {row['max_abs_diff']:.2g} | "
            f"{row['max_abs_logit']:.2g} | "
            f"{100 * row['agreement']:.3f} % |")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    import mmseg_fusion  # noqa: F401

    h, w = args.shape
    header = ('| family | config | scales | PyTorch ms | onnxruntime ms | ratio | max |diff| '
              '| max |logit| | agree |\n|---|---|---|---|---|---|---|---|---|')
    print(f'input 1x3x{h}x{w}, {args.threads} thread(s) each, median of {args.repeat} runs, '
          f'random weights; ratio = PyTorch / onnxruntime', flush=True)
    rows: List[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.families:
            print(f'[{len(rows) + 1}/{len(args.families)}] {name} ...', flush=True)
            row = bench_family(name, args, folder)
            rows.append(row)
            print(format_row(row), flush=True)
    print('\n' + header)
    for row in rows:
        print(format_row(row))
    sys.stdout.flush()
    return 1 if any('error' in row for row in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
