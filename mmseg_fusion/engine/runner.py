"""Building the ``Runner`` for ``tools/train.py`` and ``tools/test.py``."""
import logging
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.runner import Runner

from .distributed import setup_distributed

__all__ = ['build_runner', 'default_work_dir']


def default_work_dir(cfg: Config, config_path: str, work_dir: Optional[str]) -> str:
    """Resolve the work dir as mmseg does: CLI, then the config, then the config's name."""
    if work_dir is not None:
        return work_dir
    if cfg.get('work_dir', None) is not None:
        return cfg.work_dir
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def build_runner(cfg: Config) -> Runner:
    """Build the runner of ``cfg`` (``cfg.launcher`` set), CPU-distributed runs included.

    On a machine without CUDA a distributed launch switches to gloo (see
    :func:`~mmseg_fusion.engine.setup_distributed`), and the run's log says so.
    """
    note = setup_distributed(cfg, cfg.get('launcher', 'none'))
    if 'runner_type' in cfg:
        from mmseg.registry import RUNNERS
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    if note is not None:
        runner.logger.log(logging.WARNING, note)
    return runner
