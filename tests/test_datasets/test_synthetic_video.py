"""Synthetic videos: deterministic, mmseg layout, clean-scene labels, atomic writing."""
import filecmp
import os
import os.path as osp

import numpy as np
import pytest

from mmseg_fusion.datasets import (
    SyntheticVideoDataset,
    generate_video,
    generate_video_dataset,
    read_degraded,
)


def video(degrade_prob, seed=4, frames=6, size=32):
    return generate_video(np.random.default_rng(seed), frames, size, degrade_prob)


def test_shapes_and_kinds():
    frames, labels, kinds = video(0.5, frames=7)
    assert len(frames) == len(labels) == len(kinds) == 7
    assert frames[0].shape == (32, 32, 3) and frames[0].dtype == np.uint8
    assert labels[0].shape == (32, 32) and set(np.unique(np.stack(labels))) <= set(range(5))
    assert kinds[0] is None and set(kinds) <= {None, 'noise', 'occlusion'}


def test_objects_move_and_labels_are_the_clean_scene():
    clean = video(0.0)
    degraded = video(1.0)
    assert all(k is None for k in clean[2]) and all(k is not None for k in degraded[2][1:])
    # the degradation corrupts the image only: same labels, frame 0 identical
    for a, b in zip(clean[1], degraded[1]):
        assert np.array_equal(a, b)
    assert np.array_equal(clean[0][0], degraded[0][0])
    diffs = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(clean[0][1:],
                                                                          degraded[0][1:])]
    assert min(diffs) > 5
    # objects drift: consecutive label maps differ, but only a little
    changed = [(a != b).mean() for a, b in zip(clean[1], clean[1][1:])]
    assert 0 < max(changed) < 0.3


def test_dataset_layout_and_determinism(tmp_path):
    root_a, root_b = str(tmp_path / 'a'), str(tmp_path / 'b')
    calls = []
    counts = generate_video_dataset(root_a, num_train=2, num_val=1, num_frames=4, image_size=32,
                                    seed=1, progress=lambda d, t: calls.append((d, t)))
    assert counts == dict(train=8, val=4) and calls[-1] == (3, 3)
    generate_video_dataset(root_b, num_train=2, num_val=1, num_frames=4, image_size=32, seed=1)
    names = sorted(os.listdir(osp.join(root_a, 'img_dir', 'train')))
    assert names == [f'v{v:04d}_{t:04d}.png' for v in range(2) for t in range(4)]
    for sub in ('img_dir/train', 'ann_dir/train', 'img_dir/val', 'ann_dir/val'):
        files = sorted(os.listdir(osp.join(root_a, sub)))
        match, mismatch, errors = filecmp.cmpfiles(osp.join(root_a, sub), osp.join(root_b, sub),
                                                   files, shallow=False)
        assert match == files and not mismatch and not errors
    degraded = read_degraded(root_a, 'train')
    assert set(degraded.values()) <= {'noise', 'occlusion'}
    assert all(stem + '.png' in names and not stem.endswith('_0000') for stem in degraded)
    dataset = SyntheticVideoDataset(data_root=root_a, data_prefix=dict(
        img_path='img_dir/train', seg_map_path='ann_dir/train'), pipeline=[])
    assert len(dataset) == 8
    assert [osp.basename(dataset.get_data_info(i)['img_path']) for i in range(8)] == names


def test_nothing_written_on_failure_and_no_overwrite(tmp_path):
    root = str(tmp_path / 'data')

    def fail(done, total):
        raise RuntimeError('interrupted')

    with pytest.raises(RuntimeError):
        generate_video_dataset(root, num_train=2, num_val=1, num_frames=2, image_size=16,
                               progress=fail)
    assert not osp.exists(root) and os.listdir(tmp_path) == []
    generate_video_dataset(root, num_train=1, num_val=1, num_frames=2, image_size=16)
    with pytest.raises(FileExistsError, match='generate_video_dataset: out_dir .* not empty'):
        generate_video_dataset(root, num_train=1, num_val=1, num_frames=2, image_size=16)


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_frames=0), r'num_frames must be an int >= 1, got 0'),
    (dict(num_train=1.5), r'num_train must be an int >= 1, got 1.5'),
    (dict(image_size=8), r'image_size must be an int >= 16, got 8'),
    (dict(degrade_prob=1.5), r'degrade_prob must be in \[0, 1\], got 1.5'),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match='generate_video_dataset: ' + match):
        generate_video_dataset(str(tmp_path / 'x'), **kwargs)
