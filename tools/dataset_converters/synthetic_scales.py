"""Generate the synthetic multi-scale segmentation dataset (mmseg layout).

Usage: ``python tools/dataset_converters/synthetic_scales.py data/synthetic_scales
[--num-train 400] [--num-val 100] [--image-size 128] [--min-size 6] [--max-objects 8]
[--style wide] [--seed 0] [--overwrite]``

The defaults make the demo's data: data set ``a`` of ``benchmarks/scale_fusion_benchmark.py``
(the ``'wide'`` style: objects of 6 px up to 1.25 times the image).
"""
import argparse
import sys

from mmengine.utils import ProgressBar

from mmseg_fusion.datasets import generate_dataset
from mmseg_fusion.datasets.synthetic_generator import STYLES


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='target folder (created; must be empty)')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--image-size', type=int, default=128)
    parser.add_argument('--min-size', type=float, default=6.0,
                        help='smallest object diameter in pixels')
    parser.add_argument('--max-objects', type=int, default=8, help='most objects per image')
    parser.add_argument('--style', choices=sorted(STYLES), default='wide',
                        help='look and size range of the objects (mmseg_fusion.datasets.'
                             'synthetic_generator.STYLES)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a non-empty out_dir')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    bar = ProgressBar(args.num_train + args.num_val)
    try:
        counts = generate_dataset(
            args.out_dir, num_train=args.num_train, num_val=args.num_val,
            image_size=args.image_size, min_size=args.min_size, seed=args.seed,
            max_objects=args.max_objects, style=args.style,
            overwrite=args.overwrite, progress=lambda done, total: bar.update())
    except (FileExistsError, ValueError) as err:
        print(f'\nerror: {err}', file=sys.stderr)
        return 2
    print(f'\nwrote {counts} images to {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
