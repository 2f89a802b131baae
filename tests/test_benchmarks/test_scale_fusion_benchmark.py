"""benchmarks/scale_fusion_benchmark.py: rows, counted compute, one tiny run, tables, plot."""
import os.path as osp

import pytest


@pytest.fixture(scope='module')
def bench(benchmark_script):
    return benchmark_script('scale_fusion_benchmark')


def test_rows_parse_and_groups_name_known_rows(bench):
    for rows in bench.GROUPS.values():
        for row in rows:
            bench.parse_row(row)
    assert bench.parse_row('ssr@1000') == ('ssr', 1000)
    with pytest.raises(SystemExit, match="row 'ssr' must be <method>@<iterations>"):
        bench.parse_row('ssr')
    with pytest.raises(SystemExit, match="row 'median@10'"):
        bench.parse_row('median@10')


def test_row_configs_train_on_the_data_with_the_recipe(bench, tmp_path):
    plain, iters = bench.row_config('plain@7', '/data/x', str(tmp_path / 'w'))
    assert iters == 7 and plain.train_cfg.max_iters == 7 and plain.param_scheduler[0].end == 7
    assert plain.model.type == 'EncoderDecoder'
    assert plain.train_dataloader.dataset.data_root == '/data/x'
    resize, crop = plain.train_dataloader.dataset.pipeline[2:4]
    assert resize.ratio_range == (1.0, 1.0) and crop.cat_max_ratio == 1.0
    aug = bench.row_config('plain-aug@7', '/data/x', str(tmp_path / 'w'))[0]
    resize, crop = aug.train_dataloader.dataset.pipeline[2:4]
    # mmseg's scale augmentation, as its configs write it
    assert resize.type == 'RandomResize' and tuple(resize.ratio_range) == (0.5, 2.0)
    assert crop.type == 'RandomCrop' and crop.cat_max_ratio == 0.75
    hma = bench.row_config('hma@7', '/data/x', str(tmp_path / 'w'))[0]
    assert hma.model.type == 'SSREncoderDecoder' and hma.model.fusion == 'hma'
    official = bench.row_config('ssr-official@7', '/data/x', str(tmp_path / 'w'))[0]
    assert official.model.fusion.terminal is False
    assert official.model.scale_loss_weight == 0.05
    # the same network and optimizer for the plain and the fusion rows
    for key in ('backbone', 'decode_head', 'auxiliary_head'):
        assert {k: v for k, v in plain.model[key].items() if k != 'init_cfg'} == {
            k: v for k, v in hma.model[key].items() if k != 'init_cfg'}, key
    assert plain.optim_wrapper.optimizer == hma.optim_wrapper.optimizer


def test_training_compute_is_counted(bench):
    plain = bench.train_flops(bench.PLAIN, {}, batch=2, size=32)
    ssr = bench.train_flops(bench.SSR, {}, batch=2, size=32)
    official = bench.train_flops(bench.SSR, dict(bench.METHODS['ssr-official'][1]), batch=2,
                                 size=32)
    # a random pair of the default sets costs (1.25 + 1.5625 + 3.25 + 5) / 4 = 2.77 1.0-scale
    # steps (plus the scale attention); the official (0.5, 1) about 1.25
    assert 2.6 < ssr / plain < 3.3
    assert 1.15 < official / plain < 1.6


def test_retrofit_starts_from_the_plain_model_for_a_fifth_of_its_compute(bench, tmp_path):
    cfg, iters = bench.row_config('retrofit-ssr', '/data/x', str(tmp_path / 'runs' / 'r'),
                                  base=100)
    assert cfg.model.type == 'SSREncoderDecoder'
    assert osp.normpath(cfg.load_from) == str(tmp_path / 'runs' / 'plain-aug@100' / 'model.pth')
    plain = bench.train_flops(bench.PLAIN, {})
    ssr = bench.train_flops(bench.SSR, {})
    assert iters == round(0.2 * 100 * plain / ssr)
    cont = bench.row_config('plain-aug-cont', '/data/x', str(tmp_path / 'runs' / 'c'),
                            base=100)[1]
    assert cont == 20
    # <name>@<base>: from plain-aug@<base>, whatever the default base
    cfg, iters = bench.row_config('retrofit-hma@50', '/data/x', str(tmp_path / 'runs' / 'h'),
                                  base=100)
    assert osp.normpath(cfg.load_from) == str(tmp_path / 'runs' / 'plain-aug@50' / 'model.pth')
    assert bench.parse_row('retrofit-hma@50') == ('retrofit-hma', 0)
    assert bench.retrofit_base('retrofit-hma@50') == 50
    assert bench.retrofit_base('retrofit-hma') == bench.RETROFIT_BASE
    assert bench.is_retrofit('plain-aug-cont@50') and not bench.is_retrofit('plain-aug@50')
    with pytest.raises(SystemExit, match="row 'retrofit-ssr@x'"):
        bench.parse_row('retrofit-ssr@x')


def _result(row, seed, v, fused=None):
    out = dict(row=row, method=row.split('@')[0], seed=seed, train_gflops=100.0 * (seed + 1),
               single=dict(mIoU=v, class_iou=[v] * 4 + [v - 10]),
               mean_tta=dict(mIoU=v + 1, class_iou=[v + 1] * 5))
    if fused is not None:
        out['fused'] = dict(mIoU=fused, class_iou=[fused] * 5)
    return out


def test_table_reports_mean_and_std_over_seeds(bench):
    import statistics
    results = [_result('plain@10', s, v) for s, v in enumerate((50.0, 52.0, 57.0))]
    results += [_result('ssr@10', s, 60.0, fused=61.0 + s) for s in range(3)]
    text = bench.table(results, ['plain@10', 'ssr@10', 'hma@10'])
    values = (50.0, 52.0, 57.0)
    assert f'{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}' in text
    assert '| 54.0 ± 3.6 |' in text  # mean-TTA
    assert '| 62.0 ± 1.0 |' in text  # fused
    assert '`hma@10`' not in text  # rows without results are left out
    # training GFLOPs (mean over the seeds) and the worst class of the best column
    assert '| `plain@10` | plain FCN, no scale augmentation | 3 | 200 |' in text
    assert text.splitlines()[2].endswith('| 54.0 |')


def test_plot_and_scale_set_table(bench, tmp_path):
    results = []
    for iters, v in ((10, 50.0), (20, 55.0)):
        for s in range(2):
            r = _result(f'plain-aug@{iters}', s, v + s)
            r['train_gflops'] = 10.0 * iters
            results.append(r)
            r = _result(f'ssr@{iters}', s, v, fused=v + 3 + s)
            r['train_gflops'] = 28.0 * iters
            r['scale_sets'] = {'1': dict(mIoU=v, gflops=1.0, latency_ms=2.0),
                               '0.5,1,2': dict(mIoU=v + 2, gflops=6.25, latency_ms=11.0)}
            results.append(r)
    path = str(tmp_path / 'plot.png')
    bench.plot(results, path, 'test')
    assert osp.getsize(path) > 5000
    text = bench.scale_set_table(results)
    assert '| `ssr@10` | (0.5,1,2) | 52.0 ± 0.0 | 6.250 | 11.0 |' in text


@pytest.mark.slow
def test_one_tiny_run_through_the_runner(bench, tmp_path, monkeypatch, synthetic_root):
    """Two rows trained for 2 iterations on the session's tiny data, end to end."""
    import json
    monkeypatch.setattr(bench, 'make_data', lambda name, root: synthetic_root)
    out = str(tmp_path / 'out')
    assert bench.main(['--rows', 'plain@2', 'ssr@2', '--seeds', '0', '--jobs', '2',
                       '--out', out]) == 0
    with open(osp.join(out, 'results', 'a_ssr-2_0.json')) as f:
        ssr = json.load(f)
    for key in ('single', 'mean_tta', 'fused'):
        assert 0.0 <= ssr[key]['mIoU'] <= 100.0 and len(ssr[key]['class_iou']) == 5
    assert ssr['train_gflops'] == pytest.approx(2 * ssr['step_gflops'])
    with open(osp.join(out, 'tables_a.md')) as f:
        text = f.read()
    assert '`plain@2`' in text and '`ssr@2`' in text
    assert osp.isfile(osp.join(out, 'compute_a.png'))
