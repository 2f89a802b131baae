"""Train a segmentor: mmseg's ``tools/train.py`` with mmseg_fusion imported.

Same command line as mmseg's. In addition, ``torchrun ... tools/train.py CFG --launcher
pytorch`` also runs on machines without CUDA (gloo; see ``mmseg_fusion.engine``).
"""
import argparse
import logging
import os

from mmengine.config import Config, DictAction
from mmengine.logging import print_log

import mmseg_fusion  # noqa: F401  (registers our modules; safe checkpoint loading)
from mmseg_fusion.engine import (
    RNGStateHook,
    build_runner,
    default_work_dir,
    shutdown_distributed,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', action='store_true', default=False,
        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument(
        '--amp', action='store_true', default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, as key=value pairs (see mmseg)')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = default_work_dir(cfg, args.config, args.work_dir)

    if args.amp:
        if cfg.optim_wrapper.type == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.', logger='current',
                      level=logging.WARNING)
        elif cfg.optim_wrapper.type != 'OptimWrapper':
            raise SystemExit('tools/train.py: --amp needs optim_wrapper.type == '
                             f"'OptimWrapper', got {cfg.optim_wrapper.type!r}")
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    cfg.resume = args.resume
    # checkpoints carry the generator states, so --resume continues the run exactly (mmengine
    # saves none: dropout would draw other masks after a resume); see RNGStateHook
    custom_hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(isinstance(hook, dict) and hook.get('type') in ('RNGStateHook', RNGStateHook)
               for hook in custom_hooks):
        cfg.custom_hooks = custom_hooks + [dict(type='RNGStateHook')]

    build_runner(cfg).train()
    # a finished distributed run ends cleanly (no abort of a rank at exit)
    shutdown_distributed()


if __name__ == '__main__':
    main()
