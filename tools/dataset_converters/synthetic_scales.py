"""Generate the synthetic multi-scale segmentation dataset (mmseg layout).

Usage: ``python tools/dataset_converters/synthetic_scales.py data/synthetic_scales
[--num-train 200] [--num-val 50] [--image-size 128] [--seed 0] [--overwrite]``
"""
import argparse
import sys

from mmengine.utils import ProgressBar

from mmseg_fusion.datasets import generate_dataset


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='target folder (created; must be empty)')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--image-size', type=int, default=128)
    parser.add_argument('--min-size', type=float, default=4.0,
                        help='smallest object diameter in pixels')
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
            overwrite=args.overwrite, progress=lambda done, total: bar.update())
    except (FileExistsError, ValueError) as err:
        print(f'\nerror: {err}', file=sys.stderr)
        return 2
    print(f'\nwrote {counts} images to {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
