"""Test-time helpers: undo a view's padding, flip and resize; sliding-window inference.

Shape shorthand: K channels, h x w the map's size, H_ori x W_ori the original image size.
"""
from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['labels', 'restore', 'slide', 'unflip']


def unflip(x: Tensor, meta: dict) -> Tensor:
    """Undo the flip of a view (``meta['flip']``, ``flip_direction``) on a map (1, K, h, w)."""
    if meta.get('flip', False):
        x = x.flip(-1 if meta.get('flip_direction') == 'horizontal' else -2)
    return x


def labels(seg_logits: Tensor, threshold: Optional[float]) -> Tuple[Tensor, Tensor]:
    """``(seg_logits, pred)`` of logits (C, H, W) as mmseg's ``postprocess_result`` gives them.

    The argmax over C; for C = 1 the sigmoid of the logits and its threshold.
    """
    if seg_logits.shape[0] > 1:
        return seg_logits, seg_logits.argmax(dim=0, keepdim=True)
    seg_logits = seg_logits.sigmoid()
    return seg_logits, (seg_logits > threshold).to(seg_logits)


def restore(x: Tensor, meta: dict, align_corners: bool = False,
            mode: str = 'bilinear') -> Tensor:
    """Undo padding and flip of a map (1, K, h, w) and resize it to ``meta['ori_shape']``.

    Args:
        x (Tensor): The map (1, K, h, w), at the view's padded size.
        meta (dict): The view's metainfo (``img_padding_size`` or ``padding_size``, ``flip``,
            ``flip_direction``, ``ori_shape``).
        align_corners (bool): Of the resize. Defaults to False.
        mode (str): Interpolation mode. Defaults to ``'bilinear'``.

    Returns:
        Tensor: (1, K, H_ori, W_ori).
    """
    h, w = x.shape[-2:]
    left, right, top, bottom = meta.get('img_padding_size', meta.get('padding_size', [0] * 4))
    x = unflip(x[:, :, top:h - bottom, left:w - right], meta)
    return F.interpolate(x, size=tuple(meta['ori_shape']), mode=mode,
                         align_corners=align_corners)


def slide(decode: Callable[[Tensor], Tuple[Tensor, Optional[Tensor]]], x: Tensor,
          test_cfg: dict, num_classes: int, align_corners: bool = False
          ) -> Tuple[Tensor, Optional[Tensor]]:
    """Sliding-window logits and density of one input, both stitched at its size.

    Args:
        decode (Callable): Maps a crop (N, 3, h, w) to its logits (N, C, h', w') and density
            (N, 1, h'', w'') or None.
        x (Tensor): The input (N, 3, H, W).
        test_cfg (dict): With ``crop_size`` and ``stride`` (mmseg's ``slide`` mode).
        num_classes (int): C.
        align_corners (bool): Of the logits' resize to each crop. Defaults to False.

    Returns:
        tuple[Tensor, Tensor | None]: Logits (N, C, H, W), density (N, 1, H, W) or None.
    """
    (h_stride, w_stride), (h_crop, w_crop) = test_cfg['stride'], test_cfg['crop_size']
    n, _, h_img, w_img = x.shape
    h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
    preds, count = None, x.new_zeros((n, 1, h_img, w_img))
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y2, x2 = min(h_idx * h_stride + h_crop, h_img), min(w_idx * w_stride + w_crop, w_img)
            y1, x1 = max(y2 - h_crop, 0), max(x2 - w_crop, 0)
            logits, density = decode(x[:, :, y1:y2, x1:x2])
            # (N, C [+ 1], h, w): logits and density of the crop at its size
            out = [F.interpolate(logits, size=(y2 - y1, x2 - x1), mode='bilinear',
                                 align_corners=align_corners)]
            if density is not None:
                out.append(F.interpolate(density, size=(y2 - y1, x2 - x1), mode='bilinear',
                                         align_corners=False))
            out = torch.cat(out, dim=1)
            if preds is None:
                preds = x.new_zeros((n, out.shape[1], h_img, w_img))
            preds[:, :, y1:y2, x1:x2] += out
            count[:, :, y1:y2, x1:x2] += 1
    preds = preds / count
    return (preds[:, :num_classes], preds[:, num_classes:]) if preds.shape[1] > num_classes \
        else (preds, None)
