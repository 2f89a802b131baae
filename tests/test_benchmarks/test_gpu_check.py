"""benchmarks/gpu_check.sh: the CPU smoke run gives every row with sane values; --device cuda
refuses a machine without CUDA (the script and pytest's ``--device`` option)."""
import glob
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'benchmarks', 'gpu_check.sh')
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason='checks the refusal without CUDA')


def load_driver():
    spec = importlib.util.spec_from_file_location(
        'gpu_check', osp.join(ROOT, 'benchmarks', 'gpu_check.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(args, timeout=600, **env):
    full_env = dict(os.environ, MMSEG_FUSION_PYTHON=sys.executable, **env)
    full_env.pop('LOCAL_RANK', None)
    return subprocess.run(args, cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


def parse_table(text):
    """``[{column: cell}]`` of the markdown table in ``text``."""
    lines = [line for line in text.splitlines() if line.startswith('| ')]
    header = [c.strip() for c in lines[0].strip('|').split('|')]
    rows = []
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        assert len(cells) == len(header), line
        rows.append(dict(zip(header, cells)))
    return rows


def test_synthetic_configs_and_their_options():
    driver = load_driver()
    configs = driver.synthetic_configs()
    expected = sorted(osp.relpath(p, ROOT) for p in glob.glob(
        osp.join(ROOT, 'configs', '*', '*synthetic*.py')))
    assert configs == expected and len(configs) >= 9
    data = dict(scales='/d/scales', video='/d/video')
    video = driver.train_options('configs/ccnet/x_synthetic-video-64x64.py', data, 20)
    assert 'train_dataloader.dataset.data_root=/d/video' in video
    assert 'train_dataloader.batch_size=4' in video  # one clip of 4 frames
    assert not any('pipeline' in opt for opt in video)
    scales = driver.train_options('configs/ssr/x_synthetic-128x128.py', data, 20)
    assert 'train_dataloader.dataset.data_root=/d/scales' in scales
    assert {'train_cfg.max_iters=20', 'default_hooks.logger.interval=1',
            'train_dataloader.dataset.pipeline.3.crop_size=(64,64)'} <= set(scales)


def test_loss_lines_and_table():
    driver = load_driver()
    log = ('12/05 - mmengine - INFO - Iter(train) [1/2]  lr: 1e-02  eta: 0:00:01  time: 0.1  '
           'loss: 2.2950  decode.loss_ce: 1.6  decode.acc_seg: 20.0\n'
           '12/05 - mmengine - INFO - Iter(train) [2/2]  lr: 1e-02  loss: nan  '
           'decode.loss_ce: nan\n'
           '12/05 - mmengine - INFO - Iter(val) [4/4]  loss: 9.0 \n')
    assert driver.LOSS_RE.findall(log) == ['2.2950', 'nan']
    rows = [driver.Row('train', 'a', 'cpu', 'ok', '1 / 2', 1.23456, None)]
    parsed = parse_table(driver.table(rows))
    assert parsed == [{'check': 'train', 'case': 'a', 'setting': 'cpu', 'status': 'ok',
                       'result': '1 / 2', 'time (s)': '1.235', 'peak memory (MiB)': '-'}]


@pytest.mark.skipif(not osp.isfile('/proc/self/status'), reason='reads /proc (Linux)')
def test_measure_gives_the_median_time_and_the_peak_of_one_call():
    """The timed workers' harness: harness.PeakMemory around one call after a warm-up."""
    driver = load_driver()
    calls = []

    def fn():
        calls.append(1)
        x = torch.ones(64 * 2**20 // 4)  # 64 MiB, every page written
        return float(x.sum())

    seconds, peak_mib, exact = driver.measure(fn, 'cpu', repeat=3)
    assert len(calls) == 1 + 3 and seconds > 0  # warm-up, then 3 timed calls
    assert isinstance(exact, bool)
    assert peak_mib >= 60, peak_mib
    if exact:
        assert peak_mib < 200, peak_mib
    assert driver._bound(True) == '' and 'upper bound' in driver._bound(False)


@NO_CUDA
def test_device_cuda_without_cuda_is_refused():
    # pytest's --device option (tests/conftest.py): a usage error, exit code 4
    out = run([sys.executable, '-m', 'pytest', '--device', 'cuda', '--collect-only', '-q',
               '-p', 'no:cacheprovider', osp.join(ROOT, 'tests', 'test_functional')],
              timeout=300)
    assert out.returncode == 4, out.stdout[-3000:]
    assert '--device cuda: CUDA is not available' in out.stdout, out.stdout[-3000:]
    # the script's default device
    out = run(['bash', SCRIPT], timeout=300)
    assert out.returncode == 2, out.stdout[-3000:]
    assert '--device cuda needs CUDA' in out.stdout and '--device cpu' in out.stdout


@pytest.mark.slow  # the whole CPU smoke run: under 2 minutes on an idle 2-core machine
def test_cpu_mode_prints_every_row(tmp_path):
    out_file = tmp_path / 'gpu_check.md'
    out = run(['bash', SCRIPT, '--device', 'cpu', '--out', str(out_file)])
    assert out.returncode == 0, out.stdout[-6000:]
    text = out_file.read_text()
    assert text.split('\n\n', 1)[1] in out.stdout  # the same table is printed
    rows = parse_table(text)
    by_check = {}
    for row in rows:
        by_check.setdefault(row['check'], []).append(row)
        assert row['status'] == 'ok', row
    assert list(by_check) == ['tests', 'train', 'criss-cross', 'ssr']

    (tests, ) = by_check['tests']
    passed, failed, skipped = (int(tests['result'].split(f' {word}')[0].split(', ')[-1])
                               for word in ('passed', 'failed', 'skipped'))
    assert passed >= 20 and failed == 0, tests
    assert '--device cpu' in tests['setting']

    configs = load_driver().synthetic_configs()
    train = by_check['train']
    assert [r['case'] for r in train] == [osp.splitext(osp.basename(c))[0] for c in configs]
    for row in train:
        assert row['result'].startswith('4/4 logged losses finite'), row
        assert 'float32' in row['setting'] and 'AMP refuses CPU' in row['setting'], row
        assert 0 < float(row['time (s)']) < 300, row

    cca = by_check['criss-cross']
    cases = {(r['case'], r['setting'].split(', ')[1]) for r in cca}
    assert cases == {(case, precision) for precision in ('float32', 'autocast bfloat16')
                     for case in ('CrissCrossAttention (ours)', 'mmcv.ops.CrissCrossAttention',
                                  'criss_cross_attention (ours, function)')}
    for row in cca:
        assert 'smaller CPU size' in row['setting'], row
        assert 0 < float(row['time (s)']) < 30 and 0 < float(row['peak memory (MiB)']) < 1000
        if row['case'] == 'CrissCrossAttention (ours)':
            diff = float(row['result'].split('max diff from mmcv ')[1].split()[0])
            assert diff < (1e-4 if 'float32' in row['setting'] else 5e-2), row

    ssr = by_check['ssr']
    assert [r['case'] for r in ssr] == ['SSREncoderDecoder.predict', 'SSRTTAModel',
                                       'SegTTAModel (mmseg)']
    for row in ssr:
        assert '64x128' in row['setting'] and 'small CPU size' in row['setting'], row
        assert row['result'].startswith('5 ') and 'prediction 64x128' in row['result'], row
        assert 0 < float(row['time (s)']) < 60 and 0 < float(row['peak memory (MiB)']) < 2000
