"""``import mmseg_fusion``: registration, no collisions, idempotent imports."""
from mmengine.registry import MODEL_WRAPPERS as ROOT_WRAPPERS
from mmseg.registry import DATASETS, MODELS

import mmseg_fusion

PUBLIC_MODELS = ('AFANeck', 'IAFFNeck', 'RCCAHead', 'RCCA3DHead', 'EMAUHead', 'A2Head',
                 'OCRBlockHead', 'DLA', 'CategoryConsistentLoss', 'SSREncoderDecoder',
                 'SSRTTAModel', 'AFAFusion', 'MultiAFAFusion', 'AFFFusion', 'IAFFFusion',
                 'ConcatFusion', 'AddFusion', 'SSRScaleFusion', 'HMAScaleFusion',
                 'SoftmaxScaleFusion', 'MeanScaleFusion', 'MaxScaleFusion')
MMSEG_NAMES = ('CCHead', 'EMAHead', 'SegTTAModel', 'EncoderDecoder', 'FPN', 'FCNHead')


def ours(registry) -> dict:
    # by module name: classes registered by test files or benchmarks/ (loaded from their
    # paths) have no module in sys.modules
    return {name: cls for name, cls in registry.module_dict.items()
            if getattr(cls, '__module__', '').startswith('mmseg_fusion')}


def test_registered_names():
    assert 'SyntheticScalesDataset' in ours(DATASETS)
    assert 'FusionDistributedDataParallel' in ours(ROOT_WRAPPERS)
    registered = ours(MODELS)
    # every public name that exists in the package is registered under its class name
    for name, cls in registered.items():
        assert cls.__name__ == name
    for name in PUBLIC_MODELS:
        assert name in registered, name
        assert getattr(mmseg_fusion.models, name) is MODELS.get(name)


def test_no_collision_with_mmseg():
    registered = ours(MODELS)
    for name in MMSEG_NAMES:
        cls = MODELS.get(name)
        assert cls is not None and cls.__module__.startswith('mmseg.'), name
        assert name not in registered


def test_repeated_import(run_tool):
    code = ('import importlib, mmseg_fusion\n'
            'from mmengine.config import Config\n'
            'importlib.import_module("mmseg_fusion")\n'
            'cfg = Config(dict(custom_imports=dict(imports=["mmseg_fusion", "mmseg_fusion"], '
            'allow_failed_imports=False)))\n'
            'from mmengine.utils import import_modules_from_strings\n'
            'import_modules_from_strings(["mmseg_fusion", "mmseg_fusion.models"])\n'
            'print("ok", mmseg_fusion.__version__)\n')
    out = run_tool(['-c', code])
    assert out.stdout.strip().endswith(f'ok {mmseg_fusion.__version__}')
