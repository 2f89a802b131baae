"""Loading transforms that reject bad files with an error naming the file.

Registered into ``mmseg.registry.TRANSFORMS``; drop-in replacements of ``LoadImageFromFile``
(mmcv) and ``LoadAnnotations`` (mmseg) in a pipeline, at the same positions.

Where they go. mmseg's inference APIs find the image loader of a config's test pipeline by its
name: ``MMSegInferencer`` replaces the transform named ``LoadImageFromFile`` of
``test_dataloader.dataset.pipeline`` by its own loader (and refuses a pipeline without one), and
``inference_model`` turns the first transform of ``test_pipeline`` into
``LoadImageFromNDArray`` for an array. Both drop only a transform named ``LoadAnnotations``.
So the synthetic configs (``configs/_base_/datasets/synthetic_*.py``) use them as follows:

- training pipelines: both checked loaders (every check);
- test pipelines (``test_pipeline``, the val and test dataloaders): mmcv's own
  ``LoadImageFromFile`` (a test image is decoded as by mmcv: one that does not decode raises
  mmcv's error, a grayscale or RGBA one is converted), then :class:`LoadCheckedAnnotations`,
  which checks every label map ``tools/test.py`` and the validation loop load (its size
  against the image's, its values), and returns the sample unchanged when it has no
  ``seg_map_path`` (an image given to ``inference_model`` or ``MMSegInferencer``);
- ``tta_pipeline`` (``tools/test.py --tta`` only, not used by the inference APIs): both.

Then ``inference_model`` and ``MMSegInferencer`` work on every config, on image paths and on
arrays, without removing or renaming anything.

Without them a bad sample fails far from its cause: a corrupt or truncated image makes mmcv's
decoder return None (``AssertionError: failed to load image``) or raise a bare OpenCV error; a
grayscale or RGBA image is silently turned into 3 channels; a label map of another size than
its image is cropped or resized together with it (or stops ``PackSegInputs`` with a shape
error); a label value that is neither a class nor the ignore index reaches the loss, where it
raises ``IndexError: Target 7 is out of bounds`` (a device-side assert on CUDA) without naming
the file.
"""
import io
from typing import Optional, Tuple

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS
from PIL import Image, UnidentifiedImageError

__all__ = ['LoadCheckedAnnotations', 'LoadCheckedImageFromFile', 'UnreadableImageError']

#: PIL modes of single-channel images (1-bit, 8-bit, 16/32-bit integer, float).
_GRAY_MODES = ('1', 'L', 'I', 'I;16', 'I;16B', 'I;16L', 'I;16N', 'F')
#: PIL modes with an alpha channel.
_ALPHA_MODES = ('LA', 'La', 'PA', 'RGBA', 'RGBa')


def _image_kind(img_bytes: bytes) -> Optional[Tuple[str, str]]:
    """``(kind, mode)`` of an image from its header, without decoding the pixels.

    Args:
        img_bytes (bytes): The encoded file.

    Returns:
        tuple[str, str] | None: ``kind`` is ``'gray'``, ``'alpha'`` or ``'color'`` and ``mode``
        the PIL mode; None when PIL does not know the format (then the decoder decides).
    """
    try:
        with Image.open(io.BytesIO(img_bytes)) as img:
            mode = img.mode
            transparent = mode == 'P' and 'transparency' in img.info
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError,
            SyntaxError):
        return None
    if mode in _GRAY_MODES:
        return 'gray', mode
    if mode in _ALPHA_MODES or transparent:
        return 'alpha', mode
    return 'color', mode


def _decoded_kind(img: np.ndarray) -> Tuple[str, str]:
    """``(kind, description)`` of an image decoded with ``flag='unchanged'``."""
    channels = 1 if img.ndim == 2 else img.shape[2]
    kind = {1: 'gray', 2: 'alpha', 4: 'alpha'}.get(channels, 'color')
    return kind, f'{channels} channels'


class UnreadableImageError(ValueError):
    """An image file that cannot be decoded (corrupt, empty or truncated)."""


@TRANSFORMS.register_module()
class LoadCheckedImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that rejects unreadable, grayscale and RGBA images by path.

    The image is decoded exactly as by mmcv's ``LoadImageFromFile`` (same ``color_type``,
    backend and EXIF orientation handling), after two checks:

    - the file must decode: a corrupt, empty or truncated file (the ``cv2`` backend returns None
      for truncated PNG and JPEG files) raises a ValueError naming ``img_path`` instead of
      mmcv's ``failed to load image`` assertion or a bare decoder error;
    - the image must have 3 colour channels: the channels are read from the file header (PIL;
      formats PIL does not know are decoded unchanged to count them). Grayscale and
      alpha-channel images raise unless ``convert_gray`` / ``drop_alpha`` allow mmcv's default
      conversion (gray replicated to 3 channels, alpha dropped). Palette images count as
      colour (as alpha when they have a transparent colour).

    Use it in training pipelines. In a test pipeline that mmseg's inference APIs should run,
    use mmcv's ``LoadImageFromFile`` instead: ``MMSegInferencer`` looks for a transform of that
    name and raises ``ValueError: LoadImageFromFile is not found in the test pipeline``
    without one (see the module docstring).

    Args:
        to_float32 (bool): Return a float32 image. Defaults to False.
        color_type (str): ``'color'`` or ``'color_ignore_orientation'`` (the others would not
            give 3 channels). Defaults to ``'color'``.
        imdecode_backend (str): Backend of :func:`mmcv.imfrombytes`. Defaults to ``'cv2'``.
        ignore_empty (bool): Return None (skip the sample) when the file is missing or cannot
            be decoded, as mmcv's ``ignore_empty``; the channel check still raises.
            Defaults to False.
        convert_gray (bool): Accept grayscale images, replicated to 3 channels.
            Defaults to False.
        drop_alpha (bool): Accept images with an alpha channel, which is dropped.
            Defaults to False.
        backend_args (dict, optional): File backend arguments. Defaults to None.
    """

    def __init__(self,
                 to_float32: bool = False,
                 color_type: str = 'color',
                 imdecode_backend: str = 'cv2',
                 ignore_empty: bool = False,
                 convert_gray: bool = False,
                 drop_alpha: bool = False,
                 *,
                 backend_args: Optional[dict] = None) -> None:
        if color_type not in ('color', 'color_ignore_orientation'):
            raise ValueError("LoadCheckedImageFromFile: color_type must be 'color' or "
                             f"'color_ignore_orientation', got {color_type!r}")
        super().__init__(to_float32=to_float32, color_type=color_type,
                         imdecode_backend=imdecode_backend, ignore_empty=ignore_empty,
                         backend_args=backend_args)
        self.convert_gray = bool(convert_gray)
        self.drop_alpha = bool(drop_alpha)

    def _decode(self, path: str, img_bytes: bytes, flag: str) -> np.ndarray:
        """Decode with ``flag``; raise :class:`UnreadableImageError` naming ``path``."""
        reason = None
        if len(img_bytes) == 0:
            reason = 'the file is empty'
        else:
            try:
                img = mmcv.imfrombytes(img_bytes, flag=flag, backend=self.imdecode_backend)
            except Exception as e:  # any decoder failure: the file is not an image
                reason = f'{type(e).__name__}: {e}'
            else:
                if img is None:
                    reason = f'the {self.imdecode_backend!r} decoder returned None'
        if reason is not None:
            raise UnreadableImageError(
                f'{type(self).__name__}: img_path {path!r} is not a readable image (corrupt, '
                f'empty or truncated file?): {reason}')
        return img

    def _check_channels(self, path: str, img_bytes: bytes) -> None:
        """Raise a ValueError naming ``path`` for a grayscale or alpha image (unless allowed)."""
        found = _image_kind(img_bytes)
        if found is None:
            found = _decoded_kind(self._decode(path, img_bytes, 'unchanged'))
        kind, what = found
        if kind == 'gray' and not self.convert_gray:
            raise ValueError(
                f'{type(self).__name__}: img_path {path!r} is a grayscale image ({what}); '
                'expected 3 colour channels, or set convert_gray=True to replicate the channel')
        if kind == 'alpha' and not self.drop_alpha:
            raise ValueError(
                f'{type(self).__name__}: img_path {path!r} has an alpha channel ({what}); '
                'expected 3 colour channels, or set drop_alpha=True to drop it')

    def transform(self, results: dict) -> Optional[dict]:
        """Load ``results['img_path']`` into ``img``, ``img_shape`` and ``ori_shape``.

        Args:
            results (dict): With ``img_path``.

        Returns:
            dict | None: ``results`` with the image (H, W, 3), BGR, uint8 (float32 with
            ``to_float32``); None when ``ignore_empty`` and the file is missing or unreadable.
        """
        path = results['img_path']
        try:
            img_bytes = fileio.get(path, backend_args=self.backend_args)
        except Exception:
            if self.ignore_empty:
                return None
            raise
        try:
            self._check_channels(path, img_bytes)
            img = self._decode(path, img_bytes, self.color_type)
        except UnreadableImageError:
            if self.ignore_empty:
                return None
            raise
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(to_float32={self.to_float32}, '
                f'color_type={self.color_type!r}, imdecode_backend={self.imdecode_backend!r}, '
                f'ignore_empty={self.ignore_empty}, convert_gray={self.convert_gray}, '
                f'drop_alpha={self.drop_alpha}, backend_args={self.backend_args})')


@TRANSFORMS.register_module()
class LoadCheckedAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` that checks the label map against its image and classes.

    After loading (and after ``reduce_zero_label`` / ``label_map``, so the values are the
    training labels), raises a ValueError naming ``seg_map_path`` (and ``img_path``) when:

    - the label map cannot be decoded (corrupt or truncated file);
    - it is not a single-channel (H, W) map (e.g. a colour-coded RGB annotation);
    - its size differs from the original size of its image (``ori_shape``, set by the image
      loader; so the check also holds in test pipelines that resize the image first);
    - it contains a value that is neither a class index in ``[0, num_classes)`` nor
      ``ignore_index``.

    A sample without a label map (no ``seg_map_path``, or None) is returned unchanged, without
    ``gt_seg_map``: that is what ``mmseg.apis.inference_model`` and ``MMSegInferencer`` pass
    (only ``img_path`` or ``img``), and they remove only a transform named ``LoadAnnotations``.
    So a test pipeline keeps this transform: ``tools/test.py`` checks every label it loads, and
    the inference APIs predict on a bare image. mmseg's ``BaseSegDataset`` gives every sample a
    ``seg_map_path`` when the dataset has an ``ann_dir``.

    Args:
        num_classes (int): Number of classes of the dataset.
        ignore_index (int): The label of ignored pixels (the decode head's
            ``ignore_index``). Defaults to 255.
        reduce_zero_label (bool, optional): As in ``LoadAnnotations``. Defaults to None
            (the dataset's).
        imdecode_backend (str): Backend of :func:`mmcv.imfrombytes`. Defaults to
            ``'pillow'``.
        backend_args (dict, optional): File backend arguments. Defaults to None.
    """

    def __init__(self,
                 num_classes: int,
                 ignore_index: int = 255,
                 reduce_zero_label: Optional[bool] = None,
                 imdecode_backend: str = 'pillow',
                 backend_args: Optional[dict] = None) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) \
                or not 1 <= num_classes <= 256:
            raise ValueError('LoadCheckedAnnotations: num_classes must be an int in [1, 256] '
                             f'(labels are 8-bit), got {num_classes!r}')
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise ValueError('LoadCheckedAnnotations: ignore_index must be an int, '
                             f'got {ignore_index!r}')
        super().__init__(reduce_zero_label=reduce_zero_label, backend_args=backend_args,
                         imdecode_backend=imdecode_backend)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        """Load and check the label map of ``results['seg_map_path']``, if there is one.

        Args:
            results (dict): A sample, with ``seg_map_path`` when it has a label map.

        Returns:
            dict: ``results`` with ``gt_seg_map`` (H, W) and ``seg_fields``; unchanged when
            ``seg_map_path`` is missing or None (inference on a bare image).
        """
        if results.get('seg_map_path') is None:
            return results
        return super().transform(results)

    def _load_seg_map(self, results: dict) -> None:
        """Load ``gt_seg_map`` as ``LoadAnnotations`` does, then check it."""
        name, path = type(self).__name__, results['seg_map_path']
        image = f" (image {results['img_path']!r})" if 'img_path' in results else ''
        try:
            super()._load_seg_map(results)
        except FileNotFoundError:
            raise
        except Exception as e:  # any decoder failure: the file is not an image
            raise ValueError(f'{name}: seg_map_path {path!r} is not a readable label map '
                             f'(corrupt or truncated file?){image}: {type(e).__name__}: '
                             f'{e}') from e
        gt = results['gt_seg_map']
        if gt.ndim != 2:
            raise ValueError(f'{name}: seg_map_path {path!r} must be a single-channel (H, W) '
                             f'label map{image}, got shape {gt.shape}')
        ori_shape = results.get('ori_shape')
        if ori_shape is not None and tuple(gt.shape) != tuple(ori_shape[:2]):
            raise ValueError(f'{name}: seg_map_path {path!r} has size {tuple(gt.shape)} '
                             f'(H, W), expected the size of its image {tuple(ori_shape[:2])}'
                             f'{image}')
        counts = np.bincount(gt.ravel(), minlength=256)
        valid = np.zeros(counts.shape, dtype=bool)
        valid[:self.num_classes] = True
        if 0 <= self.ignore_index < valid.size:
            valid[self.ignore_index] = True
        bad = np.flatnonzero((counts > 0) & ~valid)
        if bad.size:
            raise ValueError(
                f'{name}: seg_map_path {path!r} has label values {bad.tolist()}, expected '
                f'class indices in [0, {self.num_classes - 1}] (num_classes='
                f'{self.num_classes}) or ignore_index {self.ignore_index}{image}')

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index}, reduce_zero_label={self.reduce_zero_label}, '
                f'imdecode_backend={self.imdecode_backend!r}, backend_args={self.backend_args})')
