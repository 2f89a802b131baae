"""ClipSampler: whole clips of consecutive frames of one video, every frame once in evaluation."""
import re

import pytest
import torch
from mmseg.registry import DATA_SAMPLERS

import mmseg_fusion  # noqa: F401  (registers the sampler)
from mmseg_fusion.datasets import ClipSampler


class Frames:
    """A dataset stand-in: only ``get_data_info(i)['img_path']``."""

    def __init__(self, names):
        self.names = list(names)

    def __len__(self):
        return len(self.names)

    def get_data_info(self, index):
        return dict(img_path=f'/data/img_dir/train/{self.names[index]}.png')


def videos(lengths, shuffle_names=False):
    names = [f'v{v:02d}_{t:04d}' for v, n in enumerate(lengths) for t in range(n)]
    if shuffle_names:  # dataset order need not be frame order
        names = [names[i] for i in torch.randperm(len(names), generator=torch.Generator()
                                                  .manual_seed(0)).tolist()]
    return Frames(names)


def parse(dataset, index):
    video, frame = re.match(r'.*/(v\d+)_(\d+)\.png', dataset.get_data_info(index)['img_path']
                            ).groups()
    return video, int(frame)


def clips_of(sampler, dataset):
    indices = list(sampler)
    assert len(indices) == len(sampler)
    t = sampler.clip_length
    assert len(indices) % t == 0
    return [[parse(dataset, i) for i in indices[s:s + t]] for s in range(0, len(indices), t)]


def assert_consecutive(clip):
    assert len({video for video, _ in clip}) == 1, clip
    frames = [frame for _, frame in clip]
    assert frames == list(range(frames[0], frames[0] + len(frames))), clip


@pytest.mark.parametrize('shuffle_names', [False, True])
def test_evaluation_yields_every_frame_once_in_order(shuffle_names):
    dataset = videos([8, 4, 12], shuffle_names)
    sampler = ClipSampler(dataset, clip_length=4, shuffle=False, seed=0)
    clips = clips_of(sampler, dataset)
    assert len(clips) == 6
    for clip in clips:
        assert_consecutive(clip)
    assert sorted(f for c in clips for f in c) == sorted(parse(dataset, i)
                                                        for i in range(len(dataset)))
    starts = [c[0] for c in clips]
    expected = [('v00', 0), ('v00', 4), ('v01', 0), ('v02', 0), ('v02', 4), ('v02', 8)]
    # videos in order of first appearance in the dataset, each video's clips in frame order
    assert (sorted(starts) if shuffle_names else starts) == expected
    for video in ('v00', 'v02'):
        frames = [f for v, f in starts if v == video]
        assert frames == sorted(frames)


def test_training_clips_are_consecutive_shuffled_and_cover_every_frame():
    dataset = videos([10, 7, 9])
    sampler = ClipSampler(dataset, clip_length=4, shuffle=True, seed=3)
    seen, orders, starts = set(), set(), set()
    for epoch in range(30):
        sampler.set_epoch(epoch)
        clips = clips_of(sampler, dataset)
        assert len(clips) == 2 + 1 + 2 == len(sampler) // 4
        for clip in clips:
            assert_consecutive(clip)
            seen.update(clip)
            starts.add(clip[0])
        orders.add(tuple(c[0][0] for c in clips))
    # random offsets reach the tail frames of every video, clip order changes per epoch
    assert seen == {parse(dataset, i) for i in range(len(dataset))}
    assert ('v00', 1) in starts and ('v00', 2) in starts and len(orders) > 1


def test_deterministic_for_a_seed_and_epoch():
    dataset = videos([9, 9, 9])
    a, b = (ClipSampler(dataset, clip_length=3, seed=5) for _ in range(2))
    a.set_epoch(2), b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)


@pytest.mark.parametrize('round_up', [True, False])
def test_ranks_split_the_clips(monkeypatch, round_up):
    dataset = videos([8, 8, 4])   # 5 clips of 4
    per_rank = []
    for rank in range(2):
        monkeypatch.setattr('mmseg_fusion.datasets.clip_sampler.get_dist_info',
                            lambda rank=rank: (rank, 2))
        sampler = ClipSampler(dataset, clip_length=4, shuffle=False, seed=0, round_up=round_up)
        per_rank.append(clips_of(sampler, dataset))
    assert [len(c) for c in per_rank] == ([3, 3] if round_up else [3, 2])
    everything = [tuple(c) for clips in per_rank for c in clips]
    assert len(set(everything)) == 5
    for clips in per_rank:
        for clip in clips:
            assert_consecutive(clip)


def test_built_from_the_registry_with_runner_defaults():
    dataset = videos([4, 4])
    sampler = DATA_SAMPLERS.build(dict(type='ClipSampler', clip_length=2, shuffle=False),
                                  default_args=dict(dataset=dataset, seed=None))
    assert isinstance(sampler, ClipSampler) and len(sampler) == 8


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"ClipSampler: video 'v01' has 6 frames, not a "
                                         r'multiple of clip_length=4'):
        ClipSampler(videos([8, 6]), clip_length=4, shuffle=False, seed=0)
    with pytest.raises(ValueError, match=r"ClipSampler: video 'v01' has 2 frames, fewer than "
                                         r'clip_length=4'):
        ClipSampler(videos([8, 2]), clip_length=4, shuffle=True, seed=0)
    with pytest.raises(ValueError, match=r"ClipSampler: the file name 'frame7.png' does not "
                                         r'match frame_pattern'):
        ClipSampler(Frames(['frame7']), clip_length=1, seed=0)
    with pytest.raises(ValueError, match=r"ClipSampler: video 'a' has a repeated frame number"):
        ClipSampler(Frames(['a_1', 'a_01']), clip_length=1, seed=0)
    for value in (0, 2.0, True):
        with pytest.raises(ValueError, match=rf'ClipSampler: clip_length must be an int >= 1, '
                                             rf'got {value!r}'):
            ClipSampler(videos([4]), clip_length=value, seed=0)


def test_custom_frame_pattern():
    # CamVid-like names: sequence prefix, frame number after the underscore
    dataset = Frames(['0001TP_006690', '0001TP_006720', 'Seq05VD_f00030', 'Seq05VD_f00060'])
    sampler = ClipSampler(dataset, clip_length=2, shuffle=False, seed=0,
                          frame_pattern=r'(?P<video>.+)_f?(?P<frame>\d+)')
    assert list(sampler) == [0, 1, 2, 3]
