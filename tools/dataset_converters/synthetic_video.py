"""Generate the synthetic video segmentation dataset (mmseg layout, degraded frames listed).

Usage: ``python tools/dataset_converters/synthetic_video.py data/synthetic_video
[--num-train 40] [--num-val 10] [--num-frames 8] [--image-size 64] [--degrade-prob 0.3]
[--seed 0] [--overwrite]``
"""
import argparse
import sys

from mmengine.utils import ProgressBar

from mmseg_fusion.datasets import generate_video_dataset


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='target folder (created; must be empty)')
    parser.add_argument('--num-train', type=int, default=40, help='training videos')
    parser.add_argument('--num-val', type=int, default=10, help='validation videos')
    parser.add_argument('--num-frames', type=int, default=8, help='frames per video')
    parser.add_argument('--image-size', type=int, default=64)
    parser.add_argument('--degrade-prob', type=float, default=0.3,
                        help='probability that a frame (after the first) is degraded')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a non-empty out_dir')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    bar = ProgressBar(args.num_train + args.num_val)
    try:
        counts = generate_video_dataset(
            args.out_dir, num_train=args.num_train, num_val=args.num_val,
            num_frames=args.num_frames, image_size=args.image_size,
            degrade_prob=args.degrade_prob, seed=args.seed, overwrite=args.overwrite,
            progress=lambda done, total: bar.update())
    except (FileExistsError, ValueError) as err:
        print(f'\nerror: {err}', file=sys.stderr)
        return 2
    print(f'\nwrote {counts} frames to {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
