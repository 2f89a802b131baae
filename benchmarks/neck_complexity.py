"""Parameters, FLOPs and CPU forward time of a segmentor with each fusion neck.

Builds the same segmentor (ResNetV1c backbone without dilation, levels at strides 4-32) with
every neck / fusion choice of ``mmseg_fusion`` and mmseg's FPN:

- AFA neck (``AFANeck``) with ``fusion='afa' | 'concat' | 'add'`` and an FCN head (one 3x3
  conv) on the fused map;
- iAFF-FPN (``IAFFNeck``) with ``fusion='iaff' | 'aff' | 'add'`` and mmseg's FPN, each with
  the Semantic-FPN head (``FPNHead``).

FLOPs come from :func:`mmengine.analysis.get_model_complexity_info` (fvcore's counter: one
multiply-add counts as one FLOP; element-wise operations such as the attention products are
not counted), parameters from the model, the forward time from ``--repeat`` timed inference
runs after one warm-up (round-robin over the variants), all in the same process, with
``torch.set_num_threads(--threads)``.

Example::

    python benchmarks/neck_complexity.py --depth 18 --shape 512 1024 --repeat 3
"""
import argparse
import statistics
import time
from typing import Dict, List

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_fusion  # noqa: F401  (registers the necks)

BASE_CHANNELS = {18: [64, 128, 256, 512], 34: [64, 128, 256, 512],
                 50: [256, 512, 1024, 2048], 101: [256, 512, 1024, 2048]}


def segmentor_cfg(depth: int, neck: str, fusion: str, num_classes: int) -> ConfigDict:
    """Config of the segmentor for one neck choice (``neck`` in ``afa``, ``iaff``, ``fpn``)."""
    channels = BASE_CHANNELS[depth]
    norm_cfg = dict(type='BN', requires_grad=True)
    backbone = dict(type='ResNetV1c', depth=depth, num_stages=4, out_indices=(0, 1, 2, 3),
                    dilations=(1, 1, 1, 1), strides=(1, 2, 2, 2), norm_cfg=norm_cfg,
                    contract_dilation=True)
    if neck == 'afa':
        neck_cfg = dict(type='AFANeck', in_channels=channels, fusion=fusion,
                        norm_cfg=norm_cfg)
        head = dict(type='FCNHead', in_channels=channels[0], in_index=0, channels=channels[0],
                    num_convs=1, concat_input=False, num_classes=num_classes,
                    norm_cfg=norm_cfg)
    else:
        neck_cfg = dict(type='FPN', in_channels=channels, out_channels=256, num_outs=4)
        if neck == 'iaff':
            neck_cfg.update(type='IAFFNeck', fusion=fusion)
        head = dict(type='FPNHead', in_channels=[256] * 4, in_index=[0, 1, 2, 3],
                    feature_strides=[4, 8, 16, 32], channels=128, num_classes=num_classes,
                    norm_cfg=norm_cfg)
    return ConfigDict(type='EncoderDecoder', data_preprocessor=dict(type='SegDataPreProcessor'),
                      backbone=backbone, neck=neck_cfg, decode_head=head,
                      test_cfg=dict(mode='whole'))


VARIANTS = [('AFANeck', 'afa', 'afa'), ('AFANeck', 'afa', 'concat'), ('AFANeck', 'afa', 'add'),
            ('IAFFNeck', 'iaff', 'iaff'), ('IAFFNeck', 'iaff', 'aff'),
            ('IAFFNeck', 'iaff', 'add'), ('FPN (mmseg)', 'fpn', '-')]


def measure(depth: int, shape: List[int], repeat: int, num_classes: int) -> List[Dict]:
    """Measure every variant; returns one dict per row of the table.

    The timed passes go round-robin over the variants (``repeat`` rounds), so that a load
    change on a shared machine affects all of them alike.
    """
    rows, models = [], []
    x = torch.randn(1, 3, *shape)
    for name, neck, fusion in VARIANTS:
        model = MODELS.build(segmentor_cfg(depth, neck, fusion, num_classes)).eval()
        with torch.no_grad():
            info = get_model_complexity_info(model, inputs=(x, ), show_table=False,
                                             show_arch=False)
            model(x)  # warm-up
        models.append(model)
        rows.append(dict(neck=name, fusion=fusion, times=[], flops=info['flops'],
                         params=sum(p.numel() for p in model.parameters()),
                         neck_params=sum(p.numel() for p in model.neck.parameters())))
        print(f'measured {name} {fusion}', flush=True)
    with torch.no_grad():
        for _ in range(repeat):
            for model, row in zip(models, rows):
                start = time.perf_counter()
                model(x)
                row['times'].append(time.perf_counter() - start)
    for row in rows:
        row['time'] = statistics.median(row.pop('times'))
    return rows


def markdown(rows: List[Dict], depth: int, shape: List[int], threads: int,
             repeat: int) -> str:
    """The measurements as a Markdown table."""
    lines = [f'ResNetV1c-{depth} (no dilation), input 1x3x{shape[0]}x{shape[1]}, '
             f'{threads} CPU threads, median of {repeat} forward passes '
             '(round-robin over the variants):', '',
             '| neck | fusion | params (M) | neck params (M) | GFLOPs | CPU forward (s) |',
             '|---|---|---:|---:|---:|---:|']
    for r in rows:
        lines.append(f"| {r['neck']} | {r['fusion']} | {r['params'] / 1e6:.2f} | "
                     f"{r['neck_params'] / 1e6:.2f} | {r['flops'] / 1e9:.1f} | "
                     f"{r['time']:.2f} |")
    return '\n'.join(lines)


def parse_args() -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--depth', type=int, default=18, choices=sorted(BASE_CHANNELS),
                        help='ResNetV1c depth')
    parser.add_argument('--shape', type=int, nargs=2, default=[512, 1024],
                        help='input height and width')
    parser.add_argument('--repeat', type=int, default=3, help='timed forward passes')
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    parser.add_argument('--num-classes', type=int, default=19, help='classes of the head')
    return parser.parse_args()


def main() -> None:
    """Print the table."""
    args = parse_args()
    if args.repeat < 1:
        raise SystemExit(f'neck_complexity: --repeat must be >= 1, got {args.repeat}')
    torch.set_num_threads(args.threads)
    init_default_scope('mmseg')
    rows = measure(args.depth, args.shape, args.repeat, args.num_classes)
    print(markdown(rows, args.depth, args.shape, args.threads, args.repeat))


if __name__ == '__main__':
    main()
