"""CPU latency of onnxruntime vs PyTorch for one or more configs (random weights).

    python tools/analysis/benchmark_onnx.py CONFIG [CONFIG ...] [--shape 512 1024]
        [--threads 1] [--repeat 3] [--scales 0.5 1.0] [--cfg-options KEY=VALUE ...]
    python tools/analysis/benchmark_onnx.py --family ccnet ssr [...]   # or --family all

Each config is built with random weights (:func:`build_export_model` with no checkpoint and
``--cfg-options``), exported at ``--shape`` (static graph, :func:`export_onnx`, into a
temporary folder) and both runtimes get the same normalised random image (batch 1), each with
``--threads`` intra-op threads. Latency is the median of ``--repeat`` runs after one warm-up
run; ``ratio`` is PyTorch / onnxruntime (> 1: onnxruntime is faster). ``max |diff|`` is the
largest logit difference (``max |logit|`` gives its scale) and ``agree`` the argmax agreement
on that image. SSR configs fuse ``--scales`` (default: their ``test_cfg.scales``; whole
image). ``--family NAME`` is a shorthand for one config of this repository per model family
(:data:`FAMILIES`, with the options that make the variant, e.g. ``afa-deconv``); ``all`` runs
every family. A config that fails to build, export or run prints its error in its row and the
others go on (exit code 1). Rows are printed as they finish; the last lines are a Markdown
table.
"""
import argparse
import os
import os.path as osp
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: name -> (config under configs/, --cfg-options): one config per family (``--family``)
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
    """Parse the command line; at least one CONFIG or ``--family`` is required.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` when None.
            Defaults to None.

    Returns:
        argparse.Namespace: ``config``, ``family``, ``shape``, ``threads``, ``repeat``,
        ``scales``, ``opset`` and ``cfg_options`` (a dict or None).
    """
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(
        description='onnxruntime vs PyTorch CPU latency of configs with random weights')
    parser.add_argument('config', nargs='*', help='config files to benchmark')
    parser.add_argument('--family', nargs='+', default=[], metavar='NAME',
                        choices=list(FAMILIES) + ['all'],
                        help='also benchmark the config of these model families of this '
                             f'repository ({", ".join(FAMILIES)}; all: every one)')
    parser.add_argument('--shape', type=int, nargs=2, default=[512, 1024], metavar=('H', 'W'),
                        help='input size of the static graph (default 512 1024)')
    parser.add_argument('--threads', type=int, default=1,
                        help='intra-op threads of each runtime (default 1)')
    parser.add_argument('--repeat', type=int, default=3,
                        help='timed runs per runtime after one warm-up run; the median is '
                             'reported (default 3)')
    parser.add_argument('--scales', type=float, nargs='+', default=None,
                        help='scales of SSR models (default: their test_cfg.scales)')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset (default 17)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override settings of every config, e.g. '
                             'model.decode_head.num_classes=19')
    args = parser.parse_args(argv)
    if not args.config and not args.family:
        parser.error('give at least one CONFIG or --family NAME')
    for config in args.config:
        if not osp.isfile(config):
            parser.error(f'config {config!r} does not exist')
    if args.repeat < 1 or args.threads < 1:
        parser.error('--repeat and --threads must be >= 1')
    return args


def resolve_targets(args: argparse.Namespace) -> List[Tuple[str, str, dict]]:
    """``(name, config path, cfg options)`` of each CONFIG, then of each ``--family``.

    The name of a CONFIG is its file name without ``.py``; ``--cfg-options`` override the
    options of a family.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        list[tuple[str, str, dict]]: What to benchmark, in order.
    """
    user = dict(args.cfg_options or {})
    targets = [(osp.splitext(osp.basename(c))[0], c, dict(user)) for c in args.config]
    families = list(FAMILIES) if 'all' in args.family else list(dict.fromkeys(args.family))
    for name in families:
        config, options = FAMILIES[name]
        targets.append((name, osp.join(ROOT, 'configs', config), {**options, **user}))
    return targets


def median_time(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time (s) of ``repeat`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_config(name: str, config: str, options: dict, args: argparse.Namespace,
                 folder: str) -> dict:
    """Export one config and time both runtimes.

    Args:
        name (str): Name of the row.
        config (str): Config file.
        options (dict): Its ``--cfg-options``.
        args (argparse.Namespace): ``shape``, ``threads``, ``repeat``, ``scales``, ``opset``.
        folder (str): Where the ONNX file is written.

    Returns:
        dict: The row: ``name``, ``config`` (relative to the repository when inside it),
        ``scales``, ``torch_s``, ``ort_s``, ``ratio``, ``max_abs_diff``, ``max_abs_logit``,
        ``agreement``, ``export_s``; or ``error`` on failure.
    """
    from mmseg_fusion.deployment import (
        SegmentorExportWrapper,
        build_export_model,
        export_onnx,
        onnx_session,
    )

    shown = osp.relpath(osp.abspath(config), ROOT)
    row = dict(name=name, config=config if shown.startswith('..') else shown)
    try:
        torch.manual_seed(0)
        segmentor = build_export_model(config, None, options)
        scales = args.scales if hasattr(segmentor, 'fusion') else None
        wrapper = SegmentorExportWrapper(segmentor, scales=scales)
        row['scales'] = wrapper.scales
        path = osp.join(folder, f'{len(os.listdir(folder))}.onnx')
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
    except Exception as err:  # reported in the row; the other configs go on
        row['error'] = f'{type(err).__name__}: {str(err).splitlines()[0][:300]}'
    return row


def format_row(row: dict) -> str:
    """One Markdown table row of :func:`bench_config`'s result."""
    if 'error' in row:
        return f"| {row['name']} | `{row['config']}` | failed: {row['error']} | | | | | | |"
    scales = ','.join(f'{s:g}' for s in row['scales'])
    # milliseconds to 2 decimals below 10 ms, so that a sub-millisecond time keeps the
    # precision of the ratio printed beside it
    torch_ms, ort_ms = (f'{1e3 * t:.{2 if t < 0.01 else 1}f}' for t in (row['torch_s'],
                                                                      row['ort_s']))
    return (f"| {row['name']} | `{row['config']}` | {scales} | {torch_ms} | "
            f"{ort_ms} | {row['ratio']:.2f} | {row['max_abs_diff']:.2g} | "
            f"{row['max_abs_logit']:.2g} | "
            f"{100 * row['agreement']:.3f} % |")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Benchmark every CONFIG and ``--family``; returns 1 if one of them failed, else 0."""
    args = parse_args(argv)
    import mmseg_fusion  # noqa: F401

    targets = resolve_targets(args)
    h, w = args.shape
    header = ('| name | config | scales | PyTorch ms | onnxruntime ms | ratio | max abs diff '
              '| max abs logit | argmax agreement |\n|---|---|---|---|---|---|---|---|---|')
    print(f'input 1x3x{h}x{w}, {args.threads} thread(s) each, median of {args.repeat} runs '
          f'after a warm-up, random weights; ratio = PyTorch / onnxruntime', flush=True)
    rows: List[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        for name, config, options in targets:
            print(f'[{len(rows) + 1}/{len(targets)}] {name} ...', flush=True)
            row = bench_config(name, config, options, args, folder)
            rows.append(row)
            print(format_row(row), flush=True)
    print('\n' + header)
    for row in rows:
        print(format_row(row))
    sys.stdout.flush()
    return 1 if any('error' in row for row in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
