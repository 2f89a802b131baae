"""Deterministic synthetic videos: moving textured objects, some frames degraded.

The data on which temporal context can matter (CCNet's 3D criss-cross attention, TPAMI 2020):
every video shows 2-5 objects of the classes of :mod:`.synthetic_generator` (disc, square,
triangle, ring, each with its own texture that moves with the object) drifting over a static
textured background, 0.5-2 pixels per frame. Some frames are **degraded**: either strong
Gaussian noise over the whole frame or an occluder (a rectangle of random colour noise over
20-45 % of the frame). The degradation corrupts the image only; the label map is that of the
clean scene (sensor noise, a smudge on the lens), so a degraded frame can be segmented from its
clean neighbours. The first frame of every video is clean.

Layout (mmseg's): ``img_dir/{train,val}/vVVVV_FFFF.png`` (RGB) and
``ann_dir/{train,val}/vVVVV_FFFF.png`` (class indices), ``V`` the video and ``F`` the frame, so
the sorted file list holds each video's frames consecutively in frame order (what
:class:`~mmseg_fusion.datasets.ClipSampler` needs), plus ``degraded_{split}.txt`` listing the
stems of the degraded frames with their kind (``noise`` or ``occlusion``). Video ``v`` of a
split depends only on ``(seed, split, v)``: equal arguments give byte-identical files.
"""
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from ..utils.atomic_io import atomic_folder
from ..utils.checks import check_int
from .synthetic_generator import (
    _SPLIT_OFFSET,
    CLASSES,
    PALETTE,
    _shape_mask,
    _texture,
    _write_png,
)

__all__ = ['SyntheticVideoDataset', 'generate_video', 'generate_video_dataset', 'read_degraded']


DEGRADATIONS = ('noise', 'occlusion')


def generate_video(rng: np.random.Generator,
                   num_frames: int = 8,
                   image_size: int = 64,
                   degrade_prob: float = 0.3,
                   noise_std: float = 90.0) -> Tuple[List[np.ndarray], List[np.ndarray],
                                                     List[Optional[str]]]:
    """Draw one video, its label maps and which frames are degraded.

    Args:
        rng (np.random.Generator): Source of randomness (the video depends only on it).
        num_frames (int): Frames T. Defaults to 8.
        image_size (int): Height and width. Defaults to 64.
        degrade_prob (float): Probability that a frame after the first is degraded.
            Defaults to 0.3.
        noise_std (float): Standard deviation of the noise degradation (0-255 scale).
            Defaults to 90.

    Returns:
        tuple[list, list, list]: T RGB frames (H, W, 3) uint8, T label maps (H, W) uint8 and,
        per frame, ``None`` (clean), ``'noise'`` or ``'occlusion'``.
    """
    h = w = image_size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    low = rng.uniform(40, 215, size=(4, 4, 3)).astype(np.float32)
    background = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    background += rng.normal(0, 12, size=(h, w, 3)).astype(np.float32)
    objects = []
    for _ in range(int(rng.integers(2, 6))):
        cls = int(rng.integers(1, len(CLASSES)))
        size = float(rng.uniform(0.2, 0.5) * image_size)
        speed = rng.uniform(0.5, 2.0)
        direction = rng.uniform(0, 2 * np.pi)
        c0, c1 = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
        if np.abs(c0 - c1).sum() < 150:
            c1 = 255.0 - c0
        objects.append(dict(cls=cls, size=size, cy=rng.uniform(0, h), cx=rng.uniform(0, w),
                            vy=speed * np.sin(direction), vx=speed * np.cos(direction),
                            angle=rng.uniform(0, 2 * np.pi), phase=rng.uniform(0, size),
                            c0=c0, c1=c1))
    frames, labels, kinds = [], [], []
    for t in range(num_frames):
        image = background.copy()
        label = np.zeros((h, w), dtype=np.uint8)
        for obj in objects:
            cy, cx = obj['cy'] + t * obj['vy'], obj['cx'] + t * obj['vx']
            mask = _shape_mask(obj['cls'], obj['size'], cy, cx, obj['angle'], yy, xx)
            # the texture is drawn in the object's frame: it moves with the object
            tex = _texture(obj['cls'], obj['size'], yy - cy, xx - cx, obj['phase'])
            image[mask] = np.where(tex[..., None], obj['c0'], obj['c1'])[mask]
            label[mask] = obj['cls']
        image += rng.normal(0, 6, size=(h, w, 3)).astype(np.float32)
        kind = None
        if t > 0 and rng.uniform() < degrade_prob:
            kind = DEGRADATIONS[int(rng.integers(0, 2))]
        if kind == 'noise':
            image += rng.normal(0, noise_std, size=(h, w, 3)).astype(np.float32)
        elif kind == 'occlusion':
            area = rng.uniform(0.2, 0.45) * h * w
            aspect = rng.uniform(0.5, 2.0)
            oh = int(min(h, round(np.sqrt(area * aspect))))
            ow = int(min(w, round(area / max(oh, 1))))
            y0, x0 = int(rng.integers(0, h - oh + 1)), int(rng.integers(0, w - ow + 1))
            image[y0:y0 + oh, x0:x0 + ow] = rng.uniform(0, 255, size=(oh, ow, 3))
        frames.append(np.clip(image, 0, 255).astype(np.uint8))
        labels.append(label)
        kinds.append(kind)
    return frames, labels, kinds


def generate_video_dataset(out_dir: str,
                           num_train: int = 40,
                           num_val: int = 10,
                           num_frames: int = 8,
                           image_size: int = 64,
                           degrade_prob: float = 0.3,
                           seed: int = 0,
                           overwrite: bool = False,
                           progress: Optional[Callable[[int, int], None]] = None
                           ) -> Dict[str, int]:
    """Write a synthetic video dataset in mmseg's layout (atomically).

    The dataset is written into a temporary folder next to ``out_dir`` and moved into place
    only when complete; on failure nothing is left under ``out_dir``.

    Args:
        out_dir (str): Target folder; must not exist or be empty unless ``overwrite``.
        num_train (int): Training videos. Defaults to 40.
        num_val (int): Validation videos. Defaults to 10.
        num_frames (int): Frames per video. Defaults to 8.
        image_size (int): Frame height and width. Defaults to 64.
        degrade_prob (float): Probability that a frame after the first is degraded.
            Defaults to 0.3.
        seed (int): Seed; equal arguments give identical files. Defaults to 0.
        overwrite (bool): Replace a non-empty ``out_dir``. Defaults to False.
        progress (callable, optional): Called as ``progress(done, total)`` after each video.

    Returns:
        dict: Number of frames written per split.

    Raises:
        FileExistsError: If ``out_dir`` is not empty and ``overwrite`` is False.
        ValueError: If an argument is out of range.
    """
    for name, value, low in (('num_train', num_train, 1), ('num_val', num_val, 1),
                             ('num_frames', num_frames, 1), ('image_size', image_size, 16)):
        check_int('generate_video_dataset', name, value, low=low)
    if not 0 <= degrade_prob <= 1:
        raise ValueError('generate_video_dataset: degrade_prob must be in [0, 1], got '
                         f'{degrade_prob!r}')
    total, done = num_train + num_val, 0
    with atomic_folder(out_dir, 'generate_video_dataset', overwrite) as tmp:
        for split, num in (('train', num_train), ('val', num_val)):
            img_dir, ann_dir = osp.join(tmp, 'img_dir', split), osp.join(tmp, 'ann_dir', split)
            os.makedirs(img_dir)
            os.makedirs(ann_dir)
            degraded = []
            for v in range(num):
                rng = np.random.default_rng([seed, _SPLIT_OFFSET[split] + v])
                frames, labels, kinds = generate_video(rng, num_frames, image_size, degrade_prob)
                for t, (image, label, kind) in enumerate(zip(frames, labels, kinds)):
                    stem = f'v{v:04d}_{t:04d}'
                    _write_png(osp.join(img_dir, f'{stem}.png'), image)
                    _write_png(osp.join(ann_dir, f'{stem}.png'), label)
                    if kind is not None:
                        degraded.append(f'{stem} {kind}\n')
                done += 1
                if progress is not None:
                    progress(done, total)
            with open(osp.join(tmp, f'degraded_{split}.txt'), 'w') as f:
                f.writelines(degraded)
    return dict(train=num_train * num_frames, val=num_val * num_frames)


def read_degraded(data_root: str, split: str) -> Dict[str, str]:
    """Stems of the degraded frames of a split and their kind (``noise``/``occlusion``)."""
    path = osp.join(data_root, f'degraded_{split}.txt')
    with open(path) as f:
        return dict(line.split() for line in f if line.strip())


@DATASETS.register_module()
class SyntheticVideoDataset(BaseSegDataset):
    """Generated videos of moving textured objects, in mmseg's folder layout.

    Same classes and palette as :class:`SyntheticScalesDataset`; frames and label maps are
    PNG files ``vVVVV_FFFF.png``. Generate the data with
    ``python tools/dataset_converters/synthetic_video.py data/synthetic_video``.
    """

    METAINFO = dict(classes=CLASSES, palette=[list(c) for c in PALETTE])

    def __init__(self, img_suffix: str = '.png', seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False, **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)
