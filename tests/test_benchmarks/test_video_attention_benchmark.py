"""benchmarks/video_attention_benchmark.py: configs on mmseg's pipeline, frame groups, cache and
the seed table; one tiny run per head through the Runner."""
import json
import os.path as osp

import pytest


@pytest.fixture(scope='module')
def bench(benchmark_script):
    return benchmark_script('video_attention_benchmark')


@pytest.fixture(scope='module')
def tiny_videos(tmp_path_factory):
    """2 training and 2 validation videos of 8 frames of 32x32, some frames degraded."""
    from mmseg_fusion.datasets import generate_video_dataset
    root = str(tmp_path_factory.mktemp('video') / 'synthetic_video')
    generate_video_dataset(root, num_train=2, num_val=2, num_frames=8, image_size=32,
                           degrade_prob=0.5, seed=0)
    return root


def test_run_config_is_the_video_config_on_the_data(bench):
    for head, decode in (('2d', 'RCCAHead'), ('3d', 'RCCA3DHead')):
        cfg = bench.run_config(head, '/data/v', 7)
        assert cfg.model.decode_head.type == decode
        assert cfg.train_cfg.max_iters == 7 and cfg.param_scheduler[0].end == 7
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            assert cfg[loader].dataset.data_root == '/data/v'
            assert cfg[loader].dataset.type == 'SyntheticVideoDataset'
            assert cfg[loader].sampler.type == 'ClipSampler'
        assert cfg.train_dataloader.batch_size == 2 * cfg.clip_length  # two clips
        assert cfg.train_dataloader.sampler.shuffle and not cfg.test_dataloader.sampler.shuffle


def test_frame_groups_follow_the_degraded_list(bench, tiny_videos):
    from mmseg_fusion.datasets import read_degraded
    kinds = read_degraded(tiny_videos, 'val')
    assert kinds and set(kinds.values()) <= {'noise', 'occlusion'}
    groups = bench.frame_groups(kinds)
    for stem, kind in kinds.items():
        assert groups(dict(img_path=f'/x/img_dir/val/{stem}.png')) == ('degraded', kind)
    clean = next(f'v{v:04d}_{t:04d}' for v in range(2) for t in range(8)
                 if f'v{v:04d}_{t:04d}' not in kinds)
    assert groups(dict(img_path=f'{clean}.png')) == ('clean', )


def test_make_data_generates_once(bench, tmp_path, monkeypatch):
    small = dict(num_train=1, num_val=1, num_frames=4, image_size=16, degrade_prob=0.5, seed=1)
    root = str(tmp_path / 'v')
    assert bench.make_data(root, small) == root
    assert osp.isfile(osp.join(root, 'img_dir', 'val', 'v0000_0003.png'))
    import mmseg_fusion.datasets as datasets
    monkeypatch.setattr(datasets, 'generate_video_dataset', None)  # not called again
    assert bench.make_data(root, small) == root


def _result(bench, head, seed, value, gamma=0.01):
    frames = dict(all=8, degraded=2, clean=6, noise=1, occlusion=1)
    return dict(head=head, seed=seed, iters=10, train_s=10.0 + seed, gamma=gamma * seed,
                frames=frames, miou={g: value + seed for g in bench.GROUPS})


def test_table_gives_mean_and_std_over_seeds(bench):
    text = bench.table([_result(bench, '2d', 0, 30.0), _result(bench, '2d', 1, 30.0),
                        _result(bench, '3d', 0, 33.0), _result(bench, '3d', 1, 33.0)])
    lines = text.splitlines()
    assert lines[0].startswith('| head | seeds | mIoU all (8 frames) | mIoU degraded (2 frames)')
    assert len(lines[0].split('|')) == len(lines[1].split('|'))
    # sample standard deviation of (30, 31) and of the gammas (0, 0.01)
    assert lines[2] == ('| `RCCAHead` (2D) | 2 | 30.5 ± 0.7 | 30.5 ± 0.7 | 30.5 ± 0.7 | '
                        '30.5 ± 0.7 | 30.5 ± 0.7 | 0.005 ± 0.007 | 10 |')
    assert lines[3].startswith('| `RCCA3DHead` (3D, T = 4) | 2 | 33.5 ± 0.7 |')
    assert 'seed 1: all +3.0, degraded +3.0, clean +3.0' in text


def test_table_of_one_seed_and_an_empty_group(bench):
    r = _result(bench, '3d', 0, 40.0)
    r['miou']['noise'] = None  # no noisy frame in the validation split
    text = bench.table([r])
    assert '| `RCCA3DHead` (3D, T = 4) | 1 | 40.0 | 40.0 | 40.0 |  | 40.0 | 0.000 | 10 |' in text
    assert 'RCCAHead` (2D)' not in text and 'Per seed' not in text


def test_main_trains_only_what_is_missing(bench, tmp_path, monkeypatch, capsys):
    """Jobs go to run_jobs; results come from the cache; a failed run is reported."""
    monkeypatch.setattr(bench, 'make_data', lambda root: root)
    calls = []

    def fake_run_jobs(jobs, command, num_jobs, log_dir, threads, describe):
        calls.append([describe(j) for j in jobs])
        codes = []
        for job in jobs:
            cmd = command(job)
            assert cmd[1].endswith('video_attention_benchmark.py') and cmd[2] == '--worker'
            assert json.loads(cmd[3]) == job and threads == 1 and num_jobs == 2
            if job['head'] == '3d' and job['seed'] == 1:
                codes.append(1)  # this one fails
                continue
            bench.JsonCache(job['cache']).put(job['key'], _result(
                bench, job['head'], job['seed'], 30.0 if job['head'] == '2d' else 33.0))
            codes.append(0)
        return codes

    monkeypatch.setattr(bench, 'run_jobs', fake_run_jobs)
    out = str(tmp_path / 'out')
    argv = ['--seeds', '0', '1', '--iters', '10', '--jobs', '2', '--out', out]
    assert bench.main(argv) == 1
    assert calls[0] == ['2d seed 0', '2d seed 1', '3d seed 0', '3d seed 1']
    with open(osp.join(out, 'table_it10.md')) as f:
        table = f.read()
    assert '| `RCCAHead` (2D) | 2 | 30.5 ± 0.7 |' in table
    assert '| `RCCA3DHead` (3D, T = 4) | 1 | 33.0 |' in table
    assert "1 runs failed: [('3d', 1)]" in capsys.readouterr().err
    # the second run trains only the failed one
    assert bench.main(argv) == 1 and calls[1] == ['3d seed 1']


# ~4 s per head on a loaded 2-core machine (config, Runner, 2 iterations, 16 frames)
@pytest.mark.parametrize('head', ['2d', '3d'])
def test_one_tiny_run_through_the_runner(bench, tiny_videos, tmp_path, head):
    res = bench.worker(dict(head=head, seed=0, iters=2, data_root=tiny_videos,
                            work_dir=str(tmp_path / head)))
    assert res['head'] == head and res['iters'] == 2 and res['seed'] == 0
    frames = res['frames']
    assert frames['all'] == 16 and frames['clean'] + frames['degraded'] == 16
    assert frames['degraded'] == frames['noise'] + frames['occlusion'] > 0
    for group in bench.GROUPS:
        if frames[group]:
            assert 0.0 <= res['miou'][group] <= 100.0, group
        else:
            assert res['miou'][group] is None
    assert len(res['class_iou']) == bench.NUM_CLASSES and res['train_s'] > 0
    assert osp.isfile(osp.join(tmp_path, head, 'iter_2.pth'))
    json.dumps(res)
