"""tools/analysis/scale_fusion_benchmark.py: recipes build, one tiny run, the seed table."""
import statistics

import pytest


@pytest.fixture(scope='module')
def bench(analysis_tool):
    return analysis_tool('scale_fusion_benchmark')


def test_every_row_builds_and_groups_name_known_rows(bench):
    import copy

    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmseg_fusion  # noqa: F401
    init_default_scope('mmseg')
    for group, rows in bench.GROUPS.items():
        assert set(rows) <= set(bench.ROWS), group
    for name, spec in bench.ROWS.items():
        model = MODELS.build(copy.deepcopy(spec['model']))
        assert type(model).__name__ == spec['model']['type'], name
    # one change per ablation row: each differs from the chosen recipe in one argument
    chosen = bench.ROWS['ssr']['model']
    for name in bench.GROUPS['ssr-ablation']:
        if name in ('ssr', 'ssr-official') or bench.ROWS[name]['aug']:
            continue
        cfg = bench.ROWS[name]['model']
        changed = [k for k in set(cfg) | set(chosen) if cfg.get(k) != chosen.get(k)]
        assert len(changed) == 1, (name, changed)
    # the chosen recipe is SSREncoderDecoder's default
    import inspect
    defaults = {k: p.default for k, p in inspect.signature(
        MODELS.get('SSREncoderDecoder')).parameters.items()}
    for key, value in bench.CHOSEN.items():
        assert defaults[key] == value, key


def test_one_tiny_run_gives_per_class_ious(bench, monkeypatch):
    monkeypatch.setitem(bench.DATASETS, 'tiny', dict(image_size=32, min_size=4.0,
                                                      max_objects=4, num_train=8, num_val=3,
                                                      seed=0))
    res = bench.run_one('ssr', 0, iters=2, data_name='tiny', threads=1, lr=0.01, batch=2)
    for key in ('single', 'mean_tta', 'fused', 'fused_train_scales'):
        assert len(res[key]) == bench.NUM_CLASSES
        assert all(0.0 <= v <= 100.0 for v in res[key])
    for row in ('plain', 'afa', 'concat'):
        plain = bench.run_one(row, 0, iters=2, data_name='tiny', threads=1, lr=0.01, batch=2)
        assert 'fused' not in plain and len(plain['mean_tta']) == bench.NUM_CLASSES


def test_table_reports_mean_and_std_over_seeds(bench):
    results = [dict(row='plain', seed=s, train_s=10.0, single=[v, v, v, v, v - 10],
                    mean_tta=[v + 1] * 5, per_scale={'0.5': [v - 5] * 5, '2': [v - 1] * 5})
               for s, v in enumerate((50.0, 52.0, 57.0))]
    text = bench.table(results, ['plain', 'ssr'])
    means = [statistics.mean([v, v, v, v, v - 10]) for v in (50.0, 52.0, 57.0)]
    assert f'{statistics.mean(means):.1f} ± {statistics.stdev(means):.1f}' in text
    assert '54.0 ±' in text  # mean-TTA column
    assert '`ssr`' not in text  # rows without results are left out
    # the best other scale alone, and the worst class (seed means) at 1.0 / in the best column
    # (mean-TTA here), then the training time
    assert '| 2: 52.0 | 43.0 / 54.0 | 10 |' in text


def test_width_option_widens_fcn_rows_and_refuses_necks(bench):
    import copy

    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmseg_fusion  # noqa: F401
    init_default_scope('mmseg')
    cfg = bench._widen(copy.deepcopy(bench.ROWS['ssr']['model']), 'ssr', 16)
    model = MODELS.build(cfg)
    assert model.decode_head.conv_seg.in_channels == 64
    assert model.scale_attention is not None
    with pytest.raises(ValueError, match="--width 16 .* row 'afa' has a neck"):
        bench._widen(copy.deepcopy(bench.ROWS['afa']['model']), 'afa', 16)
    # the data sets' styles: a named one, or a named one with changed fields
    assert bench.dataset_style('legible').period_divisor == 4.0
    assert bench.dataset_style('a').max_size_ratio == 1.25
    assert bench.dataset_style('b').period_divisor == 5.0


def test_hma_in_nvidia_order_mixes_the_same_maps_in_another_order(bench):
    """NVIDIA's nscale_forward order: close to predict's HMA, not equal; the largest scale's
    attention unused; a scale < 1 mixed at its own size before enlarging."""
    import copy

    import torch
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmseg_fusion  # noqa: F401
    from mmseg_fusion.utils import init_weights_quietly
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(bench.ROWS['hma-nvidia-order']['model']))
    init_weights_quietly(model)
    model.eval()
    with torch.no_grad():
        model.decode_head.conv_seg.weight.mul_(100)  # logits of order 1
    inputs = torch.randn(2, 3, 37, 45)
    scales = (0.5, 1.0, 2.0)
    with torch.no_grad():
        ours = bench.hma_nvidia_order(model, inputs, scales)
        model.fusion, model.test_cfg['scales'] = 'hma', scales
        metas = [dict(img_shape=(37, 45), ori_shape=(37, 45))] * 2
        theirs = model.inference(inputs, metas)
    assert ours.shape == theirs.shape == (2, bench.NUM_CLASSES, 37, 45)
    agree = (ours.argmax(1) == theirs.argmax(1)).float().mean()
    assert agree > 0.8
    assert not torch.allclose(ours, theirs, atol=1e-4)

    # with one scale the order changes nothing
    with torch.no_grad():
        model.test_cfg['scales'] = (1.0, )
        torch.testing.assert_close(bench.hma_nvidia_order(model, inputs, (1.0, )),
                                   model.inference(inputs, metas), rtol=1e-5, atol=1e-5)

    # the largest scale's attention is never used: a density that differs only there
    decode = model._decode

    def shifted(x, scale, *args, **kwargs):
        out = decode(x, scale, *args, **kwargs)
        return (out[0], out[1] + 5.0, *out[2:]) if scale == 2.0 else out

    model._decode = shifted
    with torch.no_grad():
        torch.testing.assert_close(bench.hma_nvidia_order(model, inputs, scales), ours)
