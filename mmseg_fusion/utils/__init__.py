"""Helpers shared by the package (no registry, no models)."""
from .quiet_init import init_weights_quietly
from .stale_temporaries import atomic_folder, remove_stale_temporaries, temporary_prefix
from .tracing import is_tracing, scaled_size
from .version_check import TESTED_VERSIONS, check_host_versions

__all__ = [
    'TESTED_VERSIONS', 'atomic_folder', 'check_host_versions', 'init_weights_quietly',
    'is_tracing', 'remove_stale_temporaries', 'scaled_size', 'temporary_prefix'
]
