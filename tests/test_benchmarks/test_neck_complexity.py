import importlib.util
import os.path as osp

import pytest
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

SCRIPT = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'benchmarks',
                  'neck_complexity.py')


def load_script():
    spec = importlib.util.spec_from_file_location('neck_complexity', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_variant_builds_on_the_same_backbone():
    from mmseg_fusion.models.fusions import PAIR_FUSIONS
    tool = load_script()
    init_default_scope('mmseg')
    backbones = set()
    for _, neck, fusion in tool.VARIANTS:
        cfg = tool.segmentor_cfg(18, neck, fusion, num_classes=3)
        model = MODELS.build(cfg)
        backbones.add(sum(p.numel() for p in model.backbone.parameters()))
        if neck in ('afa', 'iaff'):  # the shorthand builds its registered pair fusion
            modules = {type(m).__name__ for m in model.neck.modules()}
            assert PAIR_FUSIONS[fusion] in modules, (neck, fusion, modules)
    assert len(backbones) == 1


@pytest.mark.slow
def test_runs_and_prints_the_table(run_tool):
    out = run_tool([SCRIPT, '--shape', '32', '64', '--repeat', '1', '--num-classes', '3'])
    table = [line for line in out.stdout.splitlines() if line.startswith('| ')]
    assert len(table) == 1 + 7, out.stdout[-3000:]
    assert table[1].startswith('| AFANeck | afa |') and table[-1].startswith('| FPN (mmseg) |')
