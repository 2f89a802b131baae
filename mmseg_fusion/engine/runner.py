"""Building the ``Runner`` for ``tools/train.py`` and ``tools/test.py``."""
import logging
import os.path as osp
from typing import Optional

import torch.nn as nn
from mmengine.config import Config
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner import Runner

from .distributed import setup_distributed

__all__ = ['build_runner', 'check_model_wiring', 'default_work_dir']


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
    :func:`~mmseg_fusion.engine.setup_distributed`), and the run's log says so. The model's
    backbone/neck/heads wiring is checked once it is built (:func:`check_model_wiring`).
    """
    note = setup_distributed(cfg, cfg.get('launcher', 'none'))
    if 'runner_type' in cfg:
        from mmseg.registry import RUNNERS
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    if note is not None:
        runner.logger.log(logging.WARNING, note)
    check_model_wiring(runner.model)
    return runner


def check_model_wiring(model: nn.Module) -> None:
    """Check the backbone/neck/heads wiring of a plain mmseg ``EncoderDecoder``.

    :class:`~mmseg_fusion.models.SSREncoderDecoder` checks itself when it is built; mmseg's
    ``EncoderDecoder`` (and its subclasses, e.g. ``CascadeEncoderDecoder``) does not, so the
    runner does it right after building the model
    (:func:`~mmseg_fusion.models.utils.check_encoder_decoder`). Model wrappers (DDP) and
    test-time-augmentation models are unwrapped first; any other model is left alone.

    Args:
        model (nn.Module): The runner's model.

    Raises:
        ValueError: When a neck's ``in_channels`` or a head's ``in_channels``/``in_index``
            does not fit the outputs it receives.
    """
    from mmseg.models.segmentors import EncoderDecoder

    from ..models.segmentors import SSREncoderDecoder
    from ..models.utils import check_encoder_decoder

    if is_model_wrapper(model):
        model = model.module
    if isinstance(model, BaseTTAModel):
        model = model.module
    if isinstance(model, EncoderDecoder) and not isinstance(model, SSREncoderDecoder):
        check_encoder_decoder(model)
