"""Deterministic synthetic segmentation data whose objects span very different scales.

No public dataset can be downloaded where this project is developed and tested, so demos and
end-to-end tests run on data generated here. Every image shows 2 to ``max_objects`` objects of
four classes on a textured background. Object sizes are log-uniform between ``min_size`` (a
few pixels) and a fraction of the image (:class:`SampleStyle` ``max_size_ratio``: half the
image by default, 1.25 times the image in the ``'wide'`` style, where the largest objects are
only partly visible), and **each object's texture period grows with its size**: at full
resolution a small receptive field sees a large object only as a few wide stripes, whereas a
tiny object must be seen at full resolution. This is the situation multi-scale fusion (SSR,
HMA, attention-to-scale) is made for.

Classes (index: name = shape + texture):

* 0 ``background``: smooth colour field plus fine noise;
* 1 ``disc``: filled circle with horizontal stripes;
* 2 ``square``: axis-aligned square with a checkerboard;
* 3 ``triangle``: triangle with a dot lattice;
* 4 ``ring``: annulus with diagonal stripes.

The layout is mmseg's: ``img_dir/{train,val}/NNNNN.png`` (RGB) and
``ann_dir/{train,val}/NNNNN.png`` (8-bit class indices). Sample ``i`` of a split depends only
on ``(seed, split, i)``, so the same arguments give byte-identical files.
"""
import dataclasses
import os
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..utils.atomic_io import atomic_folder

__all__ = ['CLASSES', 'PALETTE', 'STYLES', 'SampleStyle', 'generate_sample', 'generate_dataset']

CLASSES: Tuple[str, ...] = ('background', 'disc', 'square', 'triangle', 'ring')
PALETTE: Tuple[Tuple[int, int, int], ...] = ((0, 0, 0), (220, 20, 60), (0, 142, 70),
                                             (250, 170, 30), (70, 130, 180))
_SPLIT_OFFSET = {'train': 0, 'val': 1_000_003}


@dataclass(frozen=True)
class SampleStyle:
    """How legible the objects of :func:`generate_sample` are.

    Args:
        period_divisor (float): Texture period = object size / this. Defaults to 5.
        dot_radius (float): Radius of the triangle's dots, in periods. Defaults to 0.3.
        background_noise (float): Std of the background's pixel noise. Defaults to 12.
        min_contrast (float): Least L1 distance of a texture's two tones. Defaults to 150.
        triangle_scale (float): Triangle diameter / drawn size (1: inscribed in the size's
            circle, 41% of a disc's area). Defaults to 1.
        ring_inner (float): Inner / outer radius of a ring. Defaults to 0.55.
        max_size_ratio (float): Largest object diameter / image size (above 1 the largest
            objects are only partly visible). Defaults to 0.5.
        class_size_ratios (tuple, optional): Per foreground class (disc, square, triangle,
            ring), the (smallest, largest) diameter / image size, in place of ``min_size``
            and ``max_size_ratio`` (classes with their own typical size, as poles and roads
            of street scenes). Defaults to None.
        textures_by_class (bool): Each class has its own texture; False draws every
            object's texture at random, so that only the outline tells the class.
            Defaults to True.
    """

    period_divisor: float = 5.0
    dot_radius: float = 0.3
    background_noise: float = 12.0
    min_contrast: float = 150.0
    triangle_scale: float = 1.0
    ring_inner: float = 0.55
    max_size_ratio: float = 0.5
    class_size_ratios: Optional[Tuple[Tuple[float, float], ...]] = None
    textures_by_class: bool = True


# 'classic': the original data; 'legible': bolder dots, thicker rings, larger triangles, calmer
# background and stronger tones (every class learnable by a small FCN in 1000 iterations);
# 'wide': legible, objects up to 1.25 x the image (scale-limited at 1.0: the benchmark's and
# the demo's data, see benchmarks/README.md)
STYLES: Dict[str, SampleStyle] = {
    'classic': SampleStyle(),
    'legible': SampleStyle(period_divisor=4.0, dot_radius=0.42, background_noise=6.0,
                           min_contrast=250.0, triangle_scale=1.4, ring_inner=0.45),
}
STYLES['wide'] = dataclasses.replace(STYLES['legible'], max_size_ratio=1.25)


def _style(style: Union[str, SampleStyle], owner: str) -> SampleStyle:
    """The :class:`SampleStyle` of a name of :data:`STYLES` or a style."""
    if isinstance(style, SampleStyle):
        return style
    if style not in STYLES:
        raise ValueError(f'{owner}: style must be one of {sorted(STYLES)} or a SampleStyle, '
                         f'got {style!r}')
    return STYLES[style]


def _texture(cls: int, size: float, yy: np.ndarray, xx: np.ndarray, phase: float,
             style: SampleStyle = STYLES['classic']) -> np.ndarray:
    """Binary texture (H, W) of a class with a period proportional to the object size."""
    period = max(2.0, size / style.period_divisor)
    if cls == 1:  # horizontal stripes
        return (np.floor((yy + phase) / period) % 2).astype(bool)
    if cls == 2:  # checkerboard
        return ((np.floor((yy + phase) / period) + np.floor((xx + phase) / period)) % 2
                ).astype(bool)
    if cls == 3:  # dot lattice
        cy = (yy + phase) % period - period / 2
        cx = (xx + phase) % period - period / 2
        return cy * cy + cx * cx < (period * style.dot_radius)**2
    # diagonal stripes
    return (np.floor((xx + yy + phase) / (1.4 * period)) % 2).astype(bool)


def _shape_mask(cls: int, size: float, cy: float, cx: float, angle: float, yy: np.ndarray,
                xx: np.ndarray, ring_inner: float = 0.55) -> np.ndarray:
    """Boolean mask (H, W) of an object of class ``cls`` and diameter ``size``."""
    r = size / 2.0
    dy, dx = yy - cy, xx - cx
    if cls == 1:
        return dy * dy + dx * dx <= r * r
    if cls == 2:
        return (np.abs(dy) <= r) & (np.abs(dx) <= r)
    if cls == 3:
        # equilateral triangle: inside three half-planes
        inside = np.ones_like(dy, dtype=bool)
        for k in range(3):
            theta = angle + k * 2 * np.pi / 3
            inside &= dx * np.cos(theta) + dy * np.sin(theta) <= r / 2
        return inside
    d2 = dy * dy + dx * dx
    return (d2 <= r * r) & (d2 >= (ring_inner * r)**2)


def generate_sample(rng: np.random.Generator,
                    image_size: int = 128,
                    min_size: float = 4.0,
                    max_objects: int = 6,
                    style: Union[str, SampleStyle] = 'classic'
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """Draw one image and its label map.

    Args:
        rng (np.random.Generator): Source of randomness (the sample depends only on it).
        image_size (int): Height and width. Defaults to 128.
        min_size (float): Smallest object diameter in pixels. Defaults to 4.
        max_objects (int): Most objects per image (at least 2 are drawn). Defaults to 6.
        style (str | SampleStyle): A key of :data:`STYLES` or a style. Defaults to
            ``'classic'``.

    Returns:
        tuple[np.ndarray, np.ndarray]: RGB image (H, W, 3) uint8 and labels (H, W) uint8.
    """
    look = _style(style, 'generate_sample')
    h = w = image_size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # background: a random low-frequency colour field plus fine noise
    low = rng.uniform(40, 215, size=(4, 4, 3)).astype(np.float32)
    image = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    image += rng.normal(0, look.background_noise, size=(h, w, 3)).astype(np.float32)
    labels = np.zeros((h, w), dtype=np.uint8)

    max_size = image_size * look.max_size_ratio
    for _ in range(int(rng.integers(2, max_objects + 1))):
        cls = int(rng.integers(1, len(CLASSES)))
        low, high = min_size, max_size
        if look.class_size_ratios is not None:
            low, high = (r * image_size for r in look.class_size_ratios[cls - 1])
        size = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        if cls == 3:
            size *= look.triangle_scale
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        mask = _shape_mask(cls, size, cy, cx, rng.uniform(0, 2 * np.pi), yy, xx,
                           look.ring_inner)
        if not mask.any():
            continue
        tex_cls = cls if look.textures_by_class else int(rng.integers(1, len(CLASSES)))
        tex = _texture(tex_cls, size, yy - cy, xx - cx, rng.uniform(0, size), look)
        c0, c1 = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
        # keep the two tones of a texture clearly apart
        if np.abs(c0 - c1).sum() < look.min_contrast:
            c1 = 255.0 - c0
        obj = np.where(tex[..., None], c0, c1) + rng.normal(0, 6, size=(h, w, 3))
        image[mask] = obj[mask]
        labels[mask] = cls
    return np.clip(image, 0, 255).astype(np.uint8), labels


def _write_png(path: str, array: np.ndarray) -> None:
    """Write a PNG (RGB arrays are stored as RGB)."""
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(path, array):
        raise OSError(f'could not write {path}')


def generate_dataset(out_dir: str,
                     num_train: int = 200,
                     num_val: int = 50,
                     image_size: int = 128,
                     min_size: float = 4.0,
                     seed: int = 0,
                     overwrite: bool = False,
                     progress: Optional[Callable[[int, int], None]] = None,
                     max_objects: int = 6,
                     style: Union[str, SampleStyle] = 'classic') -> Dict[str, int]:
    """Write a synthetic dataset in mmseg's layout.

    The dataset is written into a temporary folder next to ``out_dir`` and moved into place
    only when complete, so an interrupted run never leaves a partial dataset under
    ``out_dir``.

    Args:
        out_dir (str): Target folder; must not exist or be empty unless ``overwrite``.
        num_train (int): Training images. Defaults to 200.
        num_val (int): Validation images. Defaults to 50.
        image_size (int): Image height and width. Defaults to 128.
        min_size (float): Smallest object diameter in pixels. Defaults to 4.
        seed (int): Seed; equal arguments give identical files. Defaults to 0.
        overwrite (bool): Replace a non-empty ``out_dir``. Defaults to False.
        progress (callable, optional): Called as ``progress(done, total)`` after each sample.
        max_objects (int): Most objects per image. Defaults to 6.
        style (str | SampleStyle): A key of :data:`STYLES` or a style. Defaults to
            ``'classic'``.

    Returns:
        dict: Number of images written per split.

    Raises:
        FileExistsError: If ``out_dir`` is not empty and ``overwrite`` is False.
        ValueError: If an argument is out of range.
    """
    for name, value, low in (('num_train', num_train, 1), ('num_val', num_val, 1),
                             ('image_size', image_size, 16)):
        if int(value) < low:
            raise ValueError(f'generate_dataset: {name} must be >= {low}, got {value!r}')
    _style(style, 'generate_dataset')
    if not 1 <= min_size <= image_size / 2:
        raise ValueError(f'generate_dataset: min_size must be in [1, image_size/2 = '
                         f'{image_size / 2}], got {min_size!r}')
    splits: Sequence[Tuple[str, int]] = (('train', num_train), ('val', num_val))
    total, done = num_train + num_val, 0
    with atomic_folder(out_dir, 'generate_dataset', overwrite) as tmp:
        for split, num in splits:
            img_dir = osp.join(tmp, 'img_dir', split)
            ann_dir = osp.join(tmp, 'ann_dir', split)
            os.makedirs(img_dir)
            os.makedirs(ann_dir)
            for i in range(num):
                rng = np.random.default_rng([seed, _SPLIT_OFFSET[split] + i])
                image, labels = generate_sample(rng, image_size, min_size, max_objects, style)
                _write_png(osp.join(img_dir, f'{i:05d}.png'), image)
                _write_png(osp.join(ann_dir, f'{i:05d}.png'), labels)
                done += 1
                if progress is not None:
                    progress(done, total)
    return dict(splits)
