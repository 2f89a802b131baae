"""What makes the host stack (mmengine 0.10.7, mmseg 1.2.2) work on today's PyTorch."""
from .checkpoint import (
                         CheckpointSecurityError,
                         load_checkpoint_file,
                         load_local_checkpoint,
                         mmengine_safe_globals,
                         register_checkpoint_loader,
)
from .distributed import FusionDistributedDataParallel, setup_distributed
from .runner import build_runner, default_work_dir
from .sync_bn import CPUSyncBatchNorm, convert_sync_batchnorm_for_cpu

__all__ = [
    'CPUSyncBatchNorm', 'CheckpointSecurityError', 'FusionDistributedDataParallel',
    'build_runner', 'convert_sync_batchnorm_for_cpu', 'default_work_dir', 'load_checkpoint_file',
    'load_local_checkpoint', 'mmengine_safe_globals', 'register_checkpoint_loader',
    'setup_distributed'
]
