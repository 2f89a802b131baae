"""The registries of the mmseg_fusion scope fall through to mmseg's and mmengine's."""
from mmengine.registry import DefaultScope

import mmseg_fusion  # noqa: F401
from mmseg_fusion.registry import REGISTRIES, SCOPE


def test_scope_registries_fall_through_to_mmseg_and_mmengine():
    from mmseg import registry as mmseg_registry
    assert set(REGISTRIES) >= {'MODELS', 'HOOKS', 'DATASETS', 'TRANSFORMS', 'METRICS'}
    for name, reg in REGISTRIES.items():
        assert reg.scope == SCOPE and reg.parent is getattr(mmseg_registry, name), name
    # what a config inherited through mmseg_fusion:: builds: components marked with its scope
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = mmseg_registry.MODELS.build(dict(
            type='RCCAHead', _scope_=SCOPE, in_channels=8, channels=8, num_classes=3))
        metric = mmseg_registry.METRICS.build(dict(type='IoUMetric', _scope_=SCOPE))
        hook = mmseg_registry.HOOKS.get(f'{SCOPE}.SegVisualizationHook')
        loop = mmseg_registry.LOOPS.get(f'{SCOPE}.IterBasedTrainLoop')
    assert type(model).__name__ == 'RCCAHead'  # ours, registered in mmseg's registry
    assert type(metric).__name__ == 'IoUMetric'  # mmseg's (imported lazily)
    assert hook.__name__ == 'SegVisualizationHook'  # mmseg's
    assert loop.__name__ == 'IterBasedTrainLoop'  # mmengine's
