"""What makes the host stack (mmengine 0.10.7, mmseg 1.2.2) work on today's PyTorch."""
from ..utils.engine_switch import ENGINE_SWITCH, engine_changes_enabled
from .atomic_backend import AtomicLocalBackend, register_atomic_local_backend
from .checkpoint import (
    ESCAPE_HATCH,
    CheckpointSecurityError,
    escape_hatch_set,
    load_checkpoint_file,
    load_local_checkpoint,
    mmengine_safe_globals,
    register_checkpoint_loader,
)
from .config_scope import SCOPE, register_config_scope
from .distributed import FusionDistributedDataParallel, setup_distributed, shutdown_distributed
from .publish import (
    atomic_save,
    hashed_filename,
    plain_value,
    publish_checkpoint,
    publishable_checkpoint,
    sha256_file,
    software_versions,
)
from .rng_state import RNGStateHook, get_rng_states, set_rng_states
from .runner import build_runner, default_work_dir
from .sync_bn import CPUSyncBatchNorm, convert_sync_batchnorm_for_cpu

__all__ = [
    'ENGINE_SWITCH', 'ESCAPE_HATCH', 'SCOPE', 'AtomicLocalBackend', 'CPUSyncBatchNorm',
    'CheckpointSecurityError', 'FusionDistributedDataParallel', 'RNGStateHook', 'atomic_save',
    'build_runner', 'convert_sync_batchnorm_for_cpu', 'default_work_dir',
    'engine_changes_enabled', 'escape_hatch_set', 'get_rng_states', 'hashed_filename',
    'load_checkpoint_file', 'load_local_checkpoint', 'mmengine_safe_globals', 'plain_value',
    'publish_checkpoint', 'publishable_checkpoint', 'register_atomic_local_backend',
    'register_checkpoint_loader', 'register_config_scope', 'set_rng_states',
    'setup_distributed', 'sha256_file', 'shutdown_distributed', 'software_versions'
]
