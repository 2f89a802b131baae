"""benchmarks/memory_full_resolution.py: windows, scale sets, the lighter backbone, the naive
fusion against the streamed one, one worker in-process and a quick run of the tables."""
import argparse
import importlib.util
import json
import math
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'benchmarks', 'memory_full_resolution.py')


def load_script():
    spec = importlib.util.spec_from_file_location('memory_full_resolution', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cells(line):
    return [c.strip() for c in line.strip().strip('|').split('|')]


def test_windows_of_the_cityscapes_settings():
    tool = load_script()
    ssr = dict(mode='slide', crop_size=(1024, 1024), stride=(768, 768))
    # 512x1024 (1), 1024x2048 (1 x 3), 1536x3072 (2 x 4), 2048x4096 (3 x 5)
    assert tool.count_windows(ssr, 1024, 2048, [0.5, 1.0, 1.5, 2.0]) == 1 + 3 + 8 + 15
    mmseg0 = dict(mode='slide', crop_size=(512, 1024), stride=(341, 683))
    assert tool.count_windows(mmseg0, 1024, 2048, [1.0]) == 9
    assert tool.count_windows(dict(mode='whole'), 1024, 2048, [0.5, 1.0]) == 2


def test_scale_sets_are_validated():
    tool = load_script()
    assert tool.parse_scales('0.5,1.0,2') == (0.5, 1.0, 2.0)
    for bad in ('0.5', '1.0,0.5', '1.0,1.0', 'a,1.0', '0,1.0'):
        with pytest.raises(argparse.ArgumentTypeError):
            tool.parse_scales(bad)


def test_lighter_backbone_keeps_the_head():
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    tool = load_script()
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(ROOT, tool.CONFIGS['ssr'])).model.to_dict()
    cfg = tool._replace_type(cfg, 'SyncBN', 'BN')
    head = dict(cfg['decode_head'])
    assert tool.swap_backbone_depth(cfg, 18) == 'ResNetV1c-18 (config: 50)'
    assert cfg['decode_head']['in_channels'] == 512  # stage 4 of ResNet-18
    assert cfg['decode_head']['c1_in_channels'] == 64  # stage 1
    assert cfg['auxiliary_head']['in_channels'] == 256  # stage 3
    for key in ('channels', 'c1_channels', 'dilations', 'num_classes', 'in_index'):
        assert cfg['decode_head'][key] == head[key]
    assert tool.swap_backbone_depth(cfg, 0) == 'ResNetV1c-18'


@pytest.mark.parametrize('fusion', ['ssr', 'hma', 'softmax', 'mean'])
def test_naive_fusion_equals_the_streamed_prediction(fusion):
    """All scales kept, then fused by the model's fusion, as SSREncoderDecoder streams them."""
    import torch
    tool = load_script()
    config = osp.join(ROOT, 'configs', 'ssr', f'{fusion}_fcn_r18-d8_1xb8-600_synthetic-128x128.py')
    job = dict(config=config, depth=0, slide=None, window_factor=1, mode='naive',
               scales=[0.5, 1.0])
    model, backbone = tool.build_model(job)
    assert backbone == 'ResNetV1c-18' and model.fusion.method == fusion
    inputs = torch.randn(1, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        naive = tool.run_once(model, job, inputs)[0].seg_logits.data
        streamed = tool.run_once(model, dict(job, mode='stream'), inputs)[0].seg_logits.data
    assert naive.shape == streamed.shape == (5, 32, 48)
    torch.testing.assert_close(naive, streamed, rtol=1e-5, atol=1e-5)


def test_worker_reports_the_peak_of_one_prediction():
    tool = load_script()
    config = osp.join(ROOT, 'configs', 'ssr', 'hma_fcn_r18-d8_1xb8-600_synthetic-128x128.py')
    result = tool.worker(dict(name='hma', config=config, depth=0, slide=None, window_factor=1,
                              mode='stream', scales=[0.5, 1.0], height=32, width=48,
                              threads=1, repeat=1))
    assert result['windows'] == 2 and result['test_mode'] == 'whole'
    assert result['finite'] and result['logits_shape'] == [5, 32, 48]
    assert isinstance(result['exact'], bool) and result['time_s'] > 0
    # in this (not fresh) process freed pages are reused: only the plumbing is checked here,
    # the values in the fresh processes of the quick run below
    assert isinstance(result['peak_bytes'], int) and isinstance(result['baseline_bytes'], int)
    json.dumps(result)


@pytest.mark.slow
def test_quick_run_prints_the_tables(run_tool, tmp_path):
    out = run_tool([SCRIPT, '--quick', '--configs', 'ccnet', 'ssr', '--scales', '0.5,1.0',
                    '--threads', '1', '--jobs', '5', '--json', tmp_path / 'r.json'],
                   timeout=300)
    rows = [cells(line) for line in out.stdout.splitlines() if line.startswith('| ')]

    def positive(text):
        value = float(text)
        assert math.isfinite(value) and value > 0, out.stdout[-3000:]

    head = [r for r in rows if r[0] == 'ccnet']
    assert len(head) == 1, out.stdout[-3000:]
    assert head[0][2] == 'whole (1)'
    for text in head[0][3:]:  # params, model+input, peak, time
        positive(text)
    single = {r[0]: r for r in rows if r[0] in ('0.5', '1')}
    assert set(single) == {'0.5', '1'}, out.stdout[-3000:]
    for r in single.values():
        for text in r[2:]:  # windows, model+input, peak, time
            positive(text)
    sets = [r for r in rows if r[0] == '(0.5, 1)']
    assert len(sets) == 1, out.stdout[-3000:]
    r = sets[0]
    assert r[1] == '4'  # windows: 1 at 0.5 + 3 at 1.0 (crop 64, stride 48 on 64x128)
    for i in (2, 4, 5, 7, 8):  # peaks, times, ratio
        positive(r[i])
    for i in (3, 6):  # peak minus the largest single-scale peak
        assert math.isfinite(float(r[i]))
    assert r[9].startswith('yes'), out.stdout[-3000:]
    results = json.loads((tmp_path / 'r.json').read_text())
    assert len(results) == 5 and all(x['finite'] for x in results)
