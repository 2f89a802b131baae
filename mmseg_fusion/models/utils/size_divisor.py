"""Resizing an input up to a multiple of a size divisor (the official AFA ``dla_resize``).

The official AFA code (https://github.com/SysCV/dla-afa, ``afa/model/utils/dla_utils.py``,
consulted as reference, not copied) resizes every input image bilinearly
(``align_corners=False``) so that its height and width are the next multiple of 64 (training)
or 128 (inference) before the network runs, once, on the 1.0-scale image; the other SSR scales
are taken from that resized image, and every prediction is resized back to the input size.

Shape shorthand: N batch, C channels, h x w the tensor's size, H x W the size of the 1.0-scale
image it was taken from.
"""
from typing import Optional, Sequence, Tuple, Union

import torch.nn.functional as F
from torch import Tensor

from mmseg_fusion.utils.checks import is_int
from mmseg_fusion.utils.tracing import is_tracing, scaled_size

__all__ = ['check_size_divisor', 'multiple_size', 'resize_to_multiple']


def check_size_divisor(divisor: object, owner: str, name: str, optional: bool = True) -> None:
    """Raise a ValueError unless ``divisor`` is a positive int (or None, if ``optional``).

    Args:
        divisor (object): The value of ``size_divisor_resize``.
        owner (str): The component, for the message.
        name (str): The argument, for the message (``'test_cfg.size_divisor_resize'``).
        optional (bool): Accept None. Defaults to True.
    """
    if (divisor is None and optional) or is_int(divisor, 1):
        return
    expected = 'a positive int or None' if optional else 'a positive int'
    raise ValueError(f'{owner}: {name} must be {expected}, got {divisor!r}')


def multiple_size(size: Sequence[Union[int, Tensor]],
                  divisor: int) -> Tuple[Union[int, Tensor], ...]:
    """``size`` rounded up to multiples of ``divisor``.

    Integer arithmetic only, so traced sizes (0-dim int64 tensors during an ONNX export) stay
    symbolic in the graph.

    Args:
        size (Sequence[int | Tensor]): ``(H, W)``.
        divisor (int): Positive.

    Returns:
        tuple[int, int]: ``(ceil(H / divisor) * divisor, ceil(W / divisor) * divisor)``.
    """
    check_size_divisor(divisor, 'size_divisor_resize', 'the divisor', optional=False)
    return tuple((s + divisor - 1) // divisor * divisor for s in size)


def resize_to_multiple(inputs: Tensor, divisor: Optional[int], scale: float = 1.0,
                       size_1x: Optional[Sequence[int]] = None) -> Tensor:
    """Resize ``inputs`` as the official AFA code resizes its input (``dla_resize``).

    ``inputs`` is an image taken at ``scale`` of a 1.0-scale image of size ``size_1x``
    (``(H, W)``); it is resized bilinearly (``align_corners=False``) to ``scale`` times the
    1.0-scale size rounded up to multiples of ``divisor`` (rounded to the nearest integer).
    With ``scale=1`` this is ``dla_resize`` itself; a tensor already at that size is
    returned unchanged.

    Args:
        inputs (Tensor): Images (N, C, h, w).
        divisor (int, optional): The size divisor; None or 0 returns ``inputs``.
        scale (float): The scale ``inputs`` has relative to the 1.0-scale image.
            Defaults to 1.0.
        size_1x (Sequence[int], optional): ``(H, W)`` of the 1.0-scale image. Defaults to
            None (``(h / scale, w / scale)`` rounded).

    Returns:
        Tensor: (N, C, round(H' * scale), round(W' * scale)), ``(H', W')`` the rounded-up
        1.0-scale size.
    """
    if not divisor:
        return inputs
    h, w = inputs.shape[-2:]
    if size_1x is None:
        size_1x = scaled_size((h, w), scale, inverse=True)
    target = scaled_size(multiple_size(size_1x, divisor), scale)
    if not is_tracing() and tuple(target) == (h, w):
        return inputs
    return F.interpolate(inputs, size=target, mode='bilinear', align_corners=False)
