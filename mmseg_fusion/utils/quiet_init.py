"""``init_weights`` without mmengine's one log line per parameter."""
import torch.nn as nn

__all__ = ['init_weights_quietly']


def init_weights_quietly(model: nn.Module) -> None:
    """Call ``model.init_weights()`` with mmengine's current logger at WARNING level.

    mmengine's ``BaseModule.init_weights`` logs the initialisation of every parameter at INFO
    level; scripts that build many models (benchmarks, exporters) only want its warnings.
    The logger's level is restored afterwards, also on error.

    Args:
        model (nn.Module): A model with ``init_weights`` (an mmengine ``BaseModule``).
    """
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
