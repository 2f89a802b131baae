"""benchmarks/video_attention_benchmark.py: one tiny run per head, the seed table."""
import pytest


@pytest.fixture(scope='module')
def bench(benchmark_script):
    return benchmark_script('video_attention_benchmark')


def test_frames_are_the_generated_dataset(bench, monkeypatch, tmp_path):
    from mmseg_fusion.datasets import generate_video_dataset, read_degraded
    small = dict(num_train=2, num_val=2, num_frames=4, image_size=32, degrade_prob=0.5, seed=3)
    monkeypatch.setattr(bench, 'DATA', small)
    frames = bench._Frames('val')
    root = str(tmp_path / 'video')
    generate_video_dataset(root, **{k: v for k, v in small.items()})
    degraded = read_degraded(root, 'val')
    assert frames.names == [f'v{v:04d}_{t:04d}.png' for v in range(2) for t in range(4)]
    assert {n[:-4]: k for n, k in zip(frames.names, frames.kinds) if k} == degraded


@pytest.mark.slow  # ~10 s per head on a loaded 2-core machine (config, model, 2 iterations)
@pytest.mark.parametrize('head', ['2d', '3d'])
def test_one_tiny_run(bench, monkeypatch, head):
    monkeypatch.setattr(bench, 'DATA', dict(num_train=2, num_val=1, num_frames=8,
                                            image_size=32, degrade_prob=0.5, seed=0))
    res = bench.run_one(head, 0, iters=2, threads=1)
    assert res['head'] == head and res['iters'] == 2
    assert res['frames']['all'] == 8 and res['frames']['clean'] + res['frames']['degraded'] == 8
    assert res['frames']['degraded'] == res['frames']['noise'] + res['frames']['occlusion']
    for group in bench.GROUPS:
        if res['frames'][group]:
            assert 0.0 <= res['miou'][group] <= 100.0, group


def test_table(bench):
    frames = dict(all=8, degraded=2, clean=6, noise=1, occlusion=1)

    def result(head, seed, value):
        return dict(head=head, seed=seed, train_s=1.0, gamma=0.01 * seed, frames=frames,
                    miou={g: value + seed for g in bench.GROUPS})

    text = bench.table([result('2d', 0, 30.0), result('2d', 1, 30.0), result('3d', 0, 33.0),
                        result('3d', 1, 33.0)])
    assert '| `RCCAHead` (2D) | 2 | 30.5 ± 0.7 |' in text
    assert '| `RCCA3DHead` (3D, T = 4) | 2 | 33.5 ± 0.7 |' in text
    assert 'mIoU degraded (2 frames)' in text
    assert 'seed 1: all +3.0, degraded +3.0, clean +3.0' in text
