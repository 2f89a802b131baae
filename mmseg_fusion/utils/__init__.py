"""Helpers shared by the package (no registry, no models)."""
from .atomic_io import (
    AtomicFile,
    atomic_folder,
    atomic_open,
    atomic_write_bytes,
    current_umask,
    new_file_mode,
)
from .engine_switch import ENGINE_SWITCH, engine_changes_enabled
from .quiet_init import init_weights_quietly
from .stale_temporaries import remove_stale_temporaries, temporary_prefix
from .tracing import is_tracing, scaled_size
from .version_check import TESTED_VERSIONS, check_host_versions

__all__ = [
    'ENGINE_SWITCH', 'TESTED_VERSIONS', 'AtomicFile', 'atomic_folder', 'atomic_open',
    'atomic_write_bytes', 'check_host_versions', 'current_umask', 'engine_changes_enabled',
    'init_weights_quietly', 'is_tracing', 'new_file_mode', 'remove_stale_temporaries',
    'scaled_size', 'temporary_prefix'
]
