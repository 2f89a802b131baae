"""mmseg_fusion: attention-based fusion methods for MMSegmentation 1.x.

``import mmseg_fusion`` (or ``custom_imports = dict(imports=['mmseg_fusion'])`` in a config)
registers every model, dataset and engine component into the mmseg / mmengine registries and
makes mmengine load its own checkpoints on PyTorch >= 2.6, write local files atomically and
resolve ``_base_ = 'mmseg_fusion::...'`` configs (see :mod:`mmseg_fusion.engine`).
"""
from .utils import check_host_versions
from .version import __version__

check_host_versions()

from . import datasets, engine, models  # noqa: E402  (registers into the registries)

engine.register_checkpoint_loader()
engine.register_atomic_local_backend()
engine.register_config_scope()

__all__ = ['__version__', 'datasets', 'engine', 'models']
