"""A sampler that yields clips of consecutive frames of one video (the clip pipeline).

mmseg has no notion of a clip. The least intrusive one: the dataset stays an ordinary frame
dataset, and this sampler orders the sample indices so that every run of ``clip_length``
indices is ``clip_length`` consecutive frames of one video, in frame order. With a dataloader
``batch_size`` that is a multiple of ``clip_length`` every batch then holds whole clips, and a
clip-aware head (:class:`~mmseg_fusion.models.decode_heads.RCCA3DHead`) regroups its
``N = B * T`` frames into clips; data pipeline, data preprocessor, losses, metrics,
``tools/train.py`` and ``tools/test.py`` are mmseg's, unchanged.

Videos and frame numbers are read from the file names (``img_path``) with a regular expression
on the stem, by default ``<video>_<frame number>`` (e.g. ``v0003_0007.png``, CamVid's
``0001TP_006690.png``). Random geometric transforms of mmseg's pipelines draw their parameters
per sample; a clip config should use none (or only deterministic ones), so that the frames of a
clip stay aligned.
"""
import math
import os.path as osp
import re
from collections import defaultdict
from typing import Dict, Iterator, List, Optional, Sized

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmseg.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from ..utils.checks import check_int

__all__ = ['ClipSampler']


@DATA_SAMPLERS.register_module()
class ClipSampler(Sampler):
    r"""Yield the indices of clips of ``clip_length`` consecutive frames of one video.

    Training (``shuffle=True``): each epoch, every video of L frames is cut into
    ``L // clip_length`` non-overlapping clips starting at a random offset in
    ``[0, L mod clip_length]`` (so every frame is used over the epochs), and the clips of all
    videos are shuffled. Evaluation (``shuffle=False``): clips start at frame 0 of each video,
    in dataset order, and every video's length must be a multiple of ``clip_length`` so that
    every frame is predicted exactly once. Under distributed training the clips are split
    between the ranks as mmengine's ``DefaultSampler`` splits samples (``round_up`` repeats
    clips so that every rank gets as many).

    Args:
        dataset (Sized): A dataset whose ``get_data_info(i)['img_path']`` names frame ``i``.
        clip_length (int): Frames per clip.
        shuffle (bool): Shuffle the clips and draw random offsets. Defaults to True.
        seed (int, optional): Random seed (synchronised between ranks when None).
            Defaults to None.
        frame_pattern (str): Regular expression matched against the file stem, with groups
            ``video`` and ``frame`` (digits). Defaults to ``r'(?P<video>.+)_(?P<frame>\d+)'``.
        round_up (bool): Repeat clips so that every rank gets the same number.
            Defaults to True.
    """

    def __init__(self,
                 dataset: Sized,
                 clip_length: int,
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 frame_pattern: str = r'(?P<video>.+)_(?P<frame>\d+)',
                 round_up: bool = True) -> None:
        check_int('ClipSampler', 'clip_length', clip_length)
        self.dataset = dataset
        self.clip_length = clip_length
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.round_up = round_up
        self.epoch = 0
        self.rank, self.world_size = get_dist_info()
        self.videos = self._group_videos(dataset, re.compile(frame_pattern))
        for name, frames in self.videos.items():
            if len(frames) < clip_length:
                raise ValueError(f'ClipSampler: video {name!r} has {len(frames)} frames, fewer '
                                 f'than clip_length={clip_length}')
            if not shuffle and len(frames) % clip_length:
                raise ValueError(
                    f'ClipSampler: video {name!r} has {len(frames)} frames, not a multiple of '
                    f'clip_length={clip_length}; evaluation (shuffle=False) predicts every '
                    'frame exactly once, so every video length must be a multiple')
        num_clips = sum(len(f) // clip_length for f in self.videos.values())
        if round_up:
            self.clips_per_rank = math.ceil(num_clips / self.world_size)
        else:
            self.clips_per_rank = math.ceil((num_clips - self.rank) / self.world_size)

    @staticmethod
    def _group_videos(dataset: Sized, pattern: 're.Pattern') -> Dict[str, List[int]]:
        """Dataset indices of every video, in frame order (videos in order of appearance)."""
        frames: Dict[str, List[tuple]] = defaultdict(list)
        for index in range(len(dataset)):
            path = dataset.get_data_info(index)['img_path']
            stem = osp.splitext(osp.basename(path))[0]
            match = pattern.fullmatch(stem)
            if match is None:
                raise ValueError(f'ClipSampler: the file name {osp.basename(path)!r} does not '
                                 f'match frame_pattern {pattern.pattern!r} (groups video and '
                                 'frame expected)')
            frames[match.group('video')].append((int(match.group('frame')), index))
        videos = {}
        for name, entries in frames.items():
            entries.sort()
            numbers = [number for number, _ in entries]
            if len(set(numbers)) != len(numbers):
                raise ValueError(f'ClipSampler: video {name!r} has a repeated frame number')
            videos[name] = [index for _, index in entries]
        return videos

    def _clips(self) -> List[List[int]]:
        """All clips of this epoch, in sampling order."""
        t = self.clip_length
        clips = []
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        for frames in self.videos.values():
            offset = 0
            if self.shuffle:
                offset = int(torch.randint(len(frames) % t + 1, (1,), generator=gen))
            clips += [frames[s:s + t] for s in range(offset, len(frames) - t + 1, t)]
        if self.shuffle:
            clips = [clips[i] for i in torch.randperm(len(clips), generator=gen).tolist()]
        return clips

    def __iter__(self) -> Iterator[int]:
        """Indices of this rank's clips, each clip's frames consecutive and in order."""
        clips = self._clips()
        if self.round_up:
            total = self.clips_per_rank * self.world_size
            clips = (clips * math.ceil(total / len(clips)))[:total]
        for clip in clips[self.rank::self.world_size]:
            yield from clip

    def __len__(self) -> int:
        """Number of indices (frames) this rank yields per epoch."""
        return self.clips_per_rank * self.clip_length

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch (new offsets and order when shuffling)."""
        self.epoch = epoch
