"""Soft check of the host stack's versions: warn, never assert."""
import os
import warnings
from importlib import metadata
from typing import Dict, List, Tuple

__all__ = ['TESTED_VERSIONS', 'check_host_versions']

#: distribution name -> (tested version prefix, what is known about others)
TESTED_VERSIONS: Dict[str, Tuple[str, str]] = {
    'torch': ('2.13', 'torch >= 2.6 is required for safe checkpoint loading'),
    'mmcv': ('2.1.0', 'mmseg 1.2.2 accepts 2.0.0rc4 <= mmcv < 2.2.0'),
    'mmengine': ('0.10.7', 'the fixes in mmseg_fusion.engine target mmengine 0.10.7'),
    'mmsegmentation': ('1.2.2', 'mmseg_fusion targets mmseg 1.x'),
}


def check_host_versions(warn: bool = True) -> List[str]:
    """Compare installed versions of the host stack with the tested ones.

    Set ``MMSEG_FUSION_SKIP_VERSION_CHECK=1`` to silence the warnings.

    Args:
        warn (bool): Emit a :class:`UserWarning` per untested version. Defaults to True.

    Returns:
        list[str]: One message per untested or missing distribution.
    """
    messages = []
    for dist, (tested, note) in TESTED_VERSIONS.items():
        try:
            found = metadata.version(dist)
        except metadata.PackageNotFoundError:
            messages.append(f'mmseg_fusion: {dist} is not installed (tested: {tested})')
            continue
        if found.split('+')[0] != tested and not found.startswith(tested + '.'):
            messages.append(f'mmseg_fusion was tested with {dist} {tested}, found {found} ({note})')
    if warn and not os.environ.get('MMSEG_FUSION_SKIP_VERSION_CHECK'):
        for message in messages:
            warnings.warn(message, UserWarning, stacklevel=3)
    return messages
