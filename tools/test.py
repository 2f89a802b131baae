"""Test (and evaluate) a segmentor: mmseg's ``tools/test.py`` with mmseg_fusion imported.

Same command line as mmseg's (``--tta`` included). Checkpoints load with
``weights_only=True`` plus exactly what mmengine writes (see ``mmseg_fusion.engine``).
"""
import argparse
import os

from mmengine.config import Config, DictAction

import mmseg_fusion  # noqa: F401  (registers our modules; safe checkpoint loading)
from mmseg_fusion.engine import build_runner, default_work_dir, shutdown_distributed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='MMSeg test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the metric results are dumped into this directory as json')
    parser.add_argument(
        '--out', type=str, help='directory to save output predictions for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir', help='directory (under work_dir/timestamp) for painted images')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, as key=value pairs (see mmseg)')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
        help='job launcher')
    parser.add_argument('--tta', action='store_true', help='Test time augmentation')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg: Config, args: argparse.Namespace) -> Config:
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise SystemExit("tools/test.py: --show/--show-dir need default_hooks.visualization = "
                         "dict(type='SegVisualizationHook')")
    hooks.visualization['draw'] = True
    if args.show:
        hooks.visualization['show'] = True
        hooks.visualization['wait_time'] = args.wait_time
    if args.show_dir:
        cfg.visualizer['save_dir'] = args.show_dir
    return cfg


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = default_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise SystemExit('tools/test.py: --tta needs `tta_model` and `tta_pipeline` in '
                             f'the config {args.config}')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True

    build_runner(cfg).test()
    # a finished distributed run ends cleanly (no abort of a rank at exit)
    shutdown_distributed()


if __name__ == '__main__':
    main()
