"""benchmarks/benchmark_attention.py: the compared pairs agree, one memory case in-process, a
tiny CPU run of part 1 and part 3."""
import os.path as osp

import pytest

LINUX_PROC = pytest.mark.skipif(not osp.isfile('/proc/self/status'),
                                reason='peak memory reads /proc (Linux)')


@pytest.fixture(scope='module')
def bench(benchmark_script):
    return benchmark_script('benchmark_attention')


@pytest.mark.parametrize('pair', [('cca-ours', 'cca-mmcv'), ('emau-ours', 'emau-mmseg'),
                                  ('cca2d-frames', 'cca3d-t1')])
def test_compared_implementations_agree(bench, pair):
    # (a clip of one frame has no other frame to attend to: the 3D layer is the 2D one)
    (module_a, run_a), (module_b, run_b) = (bench.build_case(name, 16) for name in pair)
    module_a.eval()
    module_b.eval()
    assert bench.max_difference(run_a, run_b, (2, 16, 9, 11), 'cpu') < 1e-5


@LINUX_PROC
def test_memory_child_measures_one_case(bench):
    result = bench.memory_child('cca-ours', (2, 64, 33, 33), 'fwd+bwd', threads=1)
    assert set(result) == {'peak_mb', 'exact'} and isinstance(result['exact'], bool)
    assert result['peak_mb'] >= 0


@pytest.mark.slow  # 4 fresh processes for the memory cases
def test_tiny_cpu_run_prints_the_tables(bench, run_tool):
    out = run_tool([bench.__file__, '--device', 'cpu', '--cca-shapes', '2,64,33,33',
                    '--repeat', '1', '--threads', '1', '--video', '--video-shapes',
                    '4,64,17,19', '--clip-length', '2'], timeout=300).stdout
    rows = {line.split('|')[1].strip(): line for line in out.splitlines()
            if line.startswith('| ') and not line.startswith('| module')}
    assert set(rows) == {'cca-mmcv', 'cca-ours', 'cca2d-frames', 'cca3d-t2'}, out[-3000:]
    for line in rows.values():
        peaks = [float(c) for c in line.strip().strip('|').split('|')[3:5]]
        assert all(p > 0 for p in peaks), line
    assert 'cca-ours / cca-mmcv: time fwd' in out and 'cca3d-t2 / cca2d-frames' in out
    assert 'largest relative output difference' in out
