"""The mmseg_fusion:: config scope: mmengine's scope table and the scope's registries."""
from mmengine.config.utils import MODULE2PACKAGE, _get_package_and_cfg_path

import mmseg_fusion  # noqa: F401
from mmseg_fusion.engine import SCOPE, register_config_scope


def test_scope_is_known_to_mmengine():
    register_config_scope()  # idempotent
    assert MODULE2PACKAGE[SCOPE] == 'mmseg_fusion'
    assert _get_package_and_cfg_path('mmseg_fusion::ssr/x.py') == ('mmseg_fusion', 'ssr/x.py')
