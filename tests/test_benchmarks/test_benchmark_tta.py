"""benchmarks/benchmark_tta.py: the views, one worker in-process, a tiny run of both models."""
import os.path as osp
from types import SimpleNamespace

import pytest


@pytest.fixture(scope='module')
def bench(benchmark_script):
    return benchmark_script('benchmark_tta')


def test_views_are_scales_times_flips(bench):
    data = bench.make_views(20, 30, [0.5, 1.0, 1.5])
    assert len(data['inputs']) == len(data['data_samples']) == 6
    sizes = [tuple(x[0].shape[-2:]) for x in data['inputs']]
    assert sizes == [(10, 15), (10, 15), (20, 30), (20, 30), (30, 45), (30, 45)]
    flips = [s[0].metainfo['flip'] for s in data['data_samples']]
    assert flips == [False, True] * 3
    assert all(s[0].metainfo['ori_shape'] == (20, 30) for s in data['data_samples'])


def test_bad_arguments(bench, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(['--repeat', '0'])
    assert '--repeat and --threads must be >= 1' in capsys.readouterr().err


@pytest.mark.skipif(not osp.isfile('/proc/self/status'), reason='reads /proc (Linux)')
def test_worker_in_process(bench):
    args = SimpleNamespace(worker='ssr', threads=1, classes=3, height=16, width=24,
                           scales=[0.5, 1.0], repeat=2)
    result = bench.worker(args)
    assert result['model'] == 'ssr' and result['views'] == 4
    assert result['pred_shape'] == [16, 24] and result['time_s'] > 0
    assert isinstance(result['peak_bytes'], int) and isinstance(result['exact'], bool)


@pytest.mark.slow  # two fresh processes
def test_tiny_run_prints_both_models(bench, run_tool):
    out = run_tool([bench.__file__, '--height', '96', '--width', '128', '--classes', '19',
                    '--scales', '0.5', '1.0', '--repeat', '1', '--threads', '1'],
                   timeout=300).stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.startswith(('SegTTAModel', 'SSRTTAModel'))}
    assert set(rows) == {'SegTTAModel', 'SSRTTAModel'}, out[-3000:]
    for cells in rows.values():
        assert float(cells[1]) > 0 and float(cells[2].rstrip('*')) > 0, cells
    assert 'views: 4 (scales [0.5, 1.0] x 2 flips), image 96x128, 19 classes' in out
    assert 'peak memory ratio SSR/Seg' in out
