"""Helpers shared by the package (no registry, no models)."""
from .version_check import TESTED_VERSIONS, check_host_versions

__all__ = ['TESTED_VERSIONS', 'check_host_versions']
