"""benchmarks/harness.py: statistics, the JSON cache, peak memory, worker processes, mmseg runs."""
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
import torch

LINUX_PROC = pytest.mark.skipif(not osp.isfile('/proc/self/status'),
                                reason='peak memory reads /proc/self/status (Linux)')
MB = 10**6


@pytest.fixture(scope='module')
def harness(benchmark_script):
    return benchmark_script('harness')


# ----------------------------------------------------------------------------- statistics
def test_mean_and_sample_std(harness):
    assert harness.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert harness.mean_std([80.0, 81.0, 81.6]) == pytest.approx((80.8667, 0.80829), abs=1e-4)
    assert harness.mean_std([7.5]) == (7.5, 0.0)  # one value: no spread
    with pytest.raises(ValueError, match='mean_std: no values'):
        harness.mean_std([])


def test_fmt_mean_std(harness):
    assert harness.fmt_mean_std([1.0, 2.0, 3.0]) == '2.0 ± 1.0'
    assert harness.fmt_mean_std([80.0, 81.0, 81.6]) == '80.9 ± 0.8'
    assert harness.fmt_mean_std([0.01, 0.02], digits=3) == '0.015 ± 0.007'
    assert harness.fmt_mean_std([5.0]) == '5.0'  # one seed: no ± part
    assert harness.fmt_mean_std([]) == ''
    assert harness.fmt_mean_std([None, 2.0, None, 4.0]) == '3.0 ± 1.4'  # missing values skipped


# ----------------------------------------------------------------------------- cache
def test_json_cache_round_trip(harness, tmp_path):
    cache = harness.JsonCache(str(tmp_path / 'results'))
    assert osp.isdir(cache.folder)
    assert cache.get('a_ssr-10_0') is None
    value = dict(mIoU=81.25, class_iou=[90.0, 72.5], row='ssr@10', nested=dict(seed=0))
    cache.put('a_ssr-10_0', value)
    assert cache.path('a_ssr-10_0') == str(tmp_path / 'results' / 'a_ssr-10_0.json')
    assert cache.get('a_ssr-10_0') == value
    # a second cache on the same folder sees it; a rewrite replaces it; no temporary is left
    again = harness.JsonCache(cache.folder)
    again.put('a_ssr-10_0', dict(value, mIoU=82.0))
    assert cache.get('a_ssr-10_0')['mIoU'] == 82.0
    assert os.listdir(cache.folder) == ['a_ssr-10_0.json']


# ----------------------------------------------------------------------------- memory
def _touched(nbytes: int) -> np.ndarray:
    array = np.empty(nbytes, dtype=np.uint8)
    array.fill(1)  # every page resident
    return array


@LINUX_PROC
def test_peak_memory_sees_an_allocation_inside_the_block(harness):
    with harness.PeakMemory() as mem:
        array = _touched(200 * MB)
        del array
    assert mem.peak >= 190 * MB, mem.peak
    assert mem.peak_mib == mem.peak / harness.MIB
    assert mem.before > 0


@LINUX_PROC
def test_peak_memory_leaves_out_an_allocation_made_before(harness):
    array = _touched(200 * MB)
    rss = harness.rss_bytes()
    with harness.PeakMemory() as mem:
        small = _touched(1 * MB)
    if not mem.exact:
        pytest.skip('the kernel refused to reset VmHWM (/proc/self/clear_refs)')
    assert mem.before >= 190 * MB and abs(mem.before - rss) < 20 * MB
    assert mem.peak < 50 * MB, mem.peak
    del array, small


@LINUX_PROC
def test_rss_follows_a_large_allocation(harness):
    before = harness.rss_bytes()
    array = _touched(100 * MB)
    assert harness.rss_bytes() - before >= 90 * MB
    del array


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_peak_memory_on_cuda(harness):
    kept = torch.ones(2**20, device='cuda')
    with harness.PeakMemory('cuda') as mem:
        x = torch.ones(64 * 2**20 // 4, device='cuda')
        del x
    assert mem.exact and mem.before >= kept.numel() * 4
    assert 64 * 2**20 <= mem.peak < 80 * 2**20


def test_memory_env_keeps_what_is_set(harness, monkeypatch):
    monkeypatch.delenv('MALLOC_MMAP_THRESHOLD_', raising=False)
    monkeypatch.delenv('OMP_WAIT_POLICY', raising=False)
    env = harness.memory_env(OMP_WAIT_POLICY='PASSIVE')
    assert env['MALLOC_MMAP_THRESHOLD_'] == '131072' and env['OMP_WAIT_POLICY'] == 'PASSIVE'
    assert env['MMSEG_FUSION_SKIP_VERSION_CHECK'] == '1' and env['PYTHONUNBUFFERED'] == '1'
    monkeypatch.setenv('MALLOC_MMAP_THRESHOLD_', '65536')
    monkeypatch.setenv('OMP_WAIT_POLICY', 'ACTIVE')
    env = harness.memory_env(OMP_WAIT_POLICY='PASSIVE')
    assert env['MALLOC_MMAP_THRESHOLD_'] == '65536' and env['OMP_WAIT_POLICY'] == 'ACTIVE'


def test_run_json_returns_the_last_json_line(harness):
    code = ('import json, os; print("progress"); print(json.dumps({"a": 1})); '
            'print(json.dumps({"mmap": os.environ["MALLOC_MMAP_THRESHOLD_"]}))')
    result = harness.run_json([sys.executable, '-c', code])
    assert result['mmap'] == os.environ.get('MALLOC_MMAP_THRESHOLD_', '131072')
    with pytest.raises(RuntimeError, match=r'exit 3: .*broken'):
        harness.run_json([sys.executable, '-c',
                         'import sys; print("{}"); sys.stderr.write("broken"); sys.exit(3)'])
    with pytest.raises(RuntimeError, match='exit 0'):  # no JSON line
        harness.run_json([sys.executable, '-c', 'print("no result")'])


# ----------------------------------------------------------------------------- jobs
def test_run_jobs_exit_codes_and_logs(harness, tmp_path, capsys):
    jobs = [dict(name='a', code=0), dict(name='b', code=3), dict(name='c', code=0)]

    def command(job):
        return [sys.executable, '-c',
                'import os, sys; print("job", sys.argv[1], "threads", '
                'os.environ["OMP_NUM_THREADS"]); sys.exit(int(sys.argv[2]))',
                job['name'], str(job['code'])]

    log_dir = str(tmp_path / 'logs')
    codes = harness.run_jobs(jobs, command, num_jobs=2, log_dir=log_dir,
                            describe=lambda job: f"job {job['name']}")
    assert codes == [0, 3, 0]
    for i, job in enumerate(jobs):
        with open(osp.join(log_dir, f'{i}.log')) as f:
            assert f.read().strip() == f"job {job['name']} threads 1"
    out = capsys.readouterr().out
    assert out.count('start ') == 3 and out.count('done   ') == 2
    assert f"FAILED (3, see {osp.join(log_dir, '1.log')}) 2/3 job b" in out


# ----------------------------------------------------------------------------- models
def test_random_samples(harness):
    samples = harness.random_samples(3, 23, 29, num_classes=5)
    assert len(samples) == 3
    for s in samples:
        assert s.gt_sem_seg.data.shape == (1, 23, 29)
        assert s.metainfo['img_shape'] == (23, 29) == s.metainfo['ori_shape']
        labels = s.gt_sem_seg.data
        assert labels.dtype == torch.int64 and labels.min() >= 0 and labels.max() < 5


def test_step_flops_counts_a_matmul(harness):
    a, b = torch.randn(4, 8), torch.randn(8, 16)
    assert harness.step_flops(lambda: a @ b) == 2 * 4 * 8 * 16


def test_evaluate_groups_agrees_with_evaluate(harness, tmp_path):
    """The 'all' group is :func:`evaluate`; the groups split the images (video config)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mmseg_fusion.datasets import generate_video_dataset
    root = str(tmp_path / 'video')
    generate_video_dataset(root, num_train=1, num_val=2, num_frames=4, image_size=32, seed=0)
    options = {'test_dataloader.dataset.data_root': root, 'test_dataloader.num_workers': 0,
               'test_dataloader.persistent_workers': False}
    cfg = harness.load_config(osp.join(harness.ROOT, 'configs', 'ccnet',
                                      'ccnet_r18-d8_1xb8-1k_synthetic-video-64x64.py'), options)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    plain = harness.evaluate(model, cfg, num_classes=5)

    def groups(meta):
        video = osp.basename(meta['img_path'])[:5]  # v0000 / v0001
        return (video, 'odd') if int(meta['img_path'][-5]) % 2 else (video, )

    evals = harness.evaluate_groups(model, cfg, 5, groups)
    assert list(evals) == ['all', 'v0000', 'odd', 'v0001']  # in the order first met
    assert {k: v['images'] for k, v in evals.items()} == dict(all=8, v0000=4, v0001=4, odd=4)
    assert evals['all']['mIoU'] == pytest.approx(plain['mIoU'])
    assert evals['all']['aAcc'] == pytest.approx(plain['aAcc'])
    assert evals['all']['class_iou'] == pytest.approx(plain['class_iou'])
    for value in evals.values():
        assert 0.0 <= value['mIoU'] <= 100.0 and len(value['class_iou']) == 5
    json.dumps(evals)  # JSON-able, for the cache
