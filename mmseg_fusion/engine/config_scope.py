"""The ``mmseg_fusion::`` config scope: inherit this package's configs as mmseg's are inherited.

mmengine resolves ``_base_ = 'mmseg::deeplabv3plus/...py'`` by looking the scope up in its
table ``mmengine.config.utils.MODULE2PACKAGE`` (a fixed list of OpenMMLab packages), then
reading the config from the installed package's ``.mim/configs`` folder. This package ships
that folder (``setup.py``), and :func:`register_config_scope` adds its entry to the table, so
after ``import mmseg_fusion`` (which our ``tools/`` do before they parse a config)::

    _base_ = 'mmseg_fusion::ssr/ssr_fcn_r18-d8_1xb8-1500_synthetic-128x128.py'

works like any ``mmseg::`` base. Only the lookup table gains an entry; no mmengine function is
replaced. mmengine marks every component of a config inherited that way with ``_scope_=
'mmseg_fusion'`` and looks it up in the registries of that scope, which
:mod:`mmseg_fusion.registry` declares (see there).

mmseg's own ``tools/train.py`` parses the config before it runs ``custom_imports``, so there
the scope is unknown: use our ``tools/train.py`` / ``tools/test.py`` (also shipped as
``mmseg_fusion/.mim/tools``, which ``mim train mmseg_fusion`` runs), or name the base config
by its path. Editable installs (``pip install -e .``) cannot be resolved by mmengine, whose
``get_installed_path`` looks for the package next to its ``.dist-info`` folder.
"""
from ..registry import REGISTRIES, SCOPE

__all__ = ['SCOPE', 'REGISTRIES', 'register_config_scope']


def register_config_scope() -> None:
    """Let mmengine resolve ``mmseg_fusion::`` config paths (idempotent)."""
    from mmengine.config import utils
    utils.MODULE2PACKAGE.setdefault(SCOPE, SCOPE)
