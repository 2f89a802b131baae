"""mmseg_fusion: attention-based fusion methods for MMSegmentation 1.x.

``import mmseg_fusion`` (or ``custom_imports = dict(imports=['mmseg_fusion'])`` in a config)
registers every model, dataset and engine component into the mmseg / mmengine registries and
lets mmengine resolve ``_base_ = 'mmseg_fusion::...'`` configs; unless ``MMSEG_FUSION_ENGINE=0``,
it also makes mmengine load its own checkpoints on PyTorch >= 2.6 and write local files
atomically (see :mod:`mmseg_fusion.engine` and README.md, "What ``import mmseg_fusion`` changes
in mmengine").
"""
from .utils import check_host_versions, engine_changes_enabled
from .version import __version__

check_host_versions()
# read first: a bad MMSEG_FUSION_ENGINE value fails before anything is registered
_ENGINE_CHANGES = engine_changes_enabled()

from . import datasets, engine, models  # noqa: E402  (registers into the registries)

# only adds: one entry in mmengine's scope table (kept with MMSEG_FUSION_ENGINE=0)
engine.register_config_scope()
# changes how mmengine loads and writes local files (off with MMSEG_FUSION_ENGINE=0)
if _ENGINE_CHANGES:
    engine.register_checkpoint_loader()
    engine.register_atomic_local_backend()

__all__ = ['__version__', 'datasets', 'engine', 'models']
