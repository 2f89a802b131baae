"""One protocol for decode heads whose losses need more than the logits.

mmseg's way: a head's ``forward`` returns the logits, and ``loss``/``predict`` are built on it.
A head of this package whose loss also needs other maps (the soft object regions of
:class:`~mmseg_fusion.models.OCRBlockHead`, the embedding of CCNet's category-consistent loss
in :class:`~mmseg_fusion.models.RCCAHead`) reaches them through one hook, the same for every
head, so that every head composes with every segmentor, the TTA model and the ONNX export:

- ``forward(inputs) -> logits`` (N, K, H, W), always, in training and in eval;
- ``forward_with_extras(inputs) -> (logits, extras)``: ``extras`` is a dict of named dense maps
  (N, C_e, h, w) that ``loss_by_extras`` needs; a segmentor may resize them bilinearly and
  combine them linearly over scales (``SSREncoderDecoder`` fuses them with the weights of the
  logits, as the official SSR fuses OCR's regions);
- ``loss_by_extras(extras, batch_data_samples) -> dict`` of losses (keys ``loss*`` are
  summed into the total by mmengine).

:class:`ExtraOutputsMixin` gives the defaults (no extras) and the ``loss`` that uses both;
:func:`head_forward` calls the hook on any head (mmseg's have no extras).
"""
from typing import Dict, List, Tuple

import torch.nn as nn
from mmseg.utils import ConfigType, SampleList
from torch import Tensor

__all__ = ['ExtraOutputsMixin', 'head_forward', 'head_loss_by_extras']

Extras = Dict[str, Tensor]


class ExtraOutputsMixin:
    """The extra-outputs protocol of this package's decode heads (see the module docstring).

    Mix in before the mmseg head class (``class Head(ExtraOutputsMixin, BaseDecodeHead)``);
    override :meth:`forward_with_extras` and :meth:`loss_by_extras` where a loss needs more
    than the logits.
    """

    def forward_with_extras(self, inputs: List[Tensor]) -> Tuple[Tensor, Extras]:
        """Logits (N, K, H, W) and the extra maps the loss needs (none by default)."""
        return self.forward(inputs), {}

    def loss_by_extras(self, extras: Extras, batch_data_samples: SampleList) -> dict:
        """Losses of the extra maps (none by default)."""
        return {}

    def loss(self, inputs: Tuple[Tensor], batch_data_samples: SampleList,
             train_cfg: ConfigType) -> dict:
        """``loss_by_feat`` of the logits plus ``loss_by_extras`` of the extras.

        Args:
            inputs (tuple[Tensor]): Multi-level features.
            batch_data_samples (list[:obj:`SegDataSample`]): With ``gt_sem_seg``.
            train_cfg (dict): The training config (unused, as in ``BaseDecodeHead``).

        Returns:
            dict[str, Tensor]: The losses.
        """
        logits, extras = self.forward_with_extras(inputs)
        losses = self.loss_by_feat(logits, batch_data_samples)
        losses.update(self.loss_by_extras(extras, batch_data_samples))
        return losses


def head_forward(head: nn.Module, inputs: List[Tensor],
                 with_extras: bool = False) -> Tuple[Tensor, Extras]:
    """``(logits, extras)`` of any decode head; ``extras`` is empty unless ``with_extras``.

    Args:
        head (nn.Module): A decode head (ours, or mmseg's, which has no extras).
        inputs (list[Tensor]): Multi-level features.
        with_extras (bool): Ask for the extras (training). Defaults to False.

    Returns:
        tuple[Tensor, dict[str, Tensor]]: Logits (N, K, H, W) and extras.
    """
    if with_extras and isinstance(head, ExtraOutputsMixin):
        return head.forward_with_extras(inputs)
    return head.forward(inputs), {}


def head_loss_by_extras(head: nn.Module, extras: Extras,
                        batch_data_samples: SampleList) -> dict:
    """``loss_by_extras`` of any decode head (nothing for a head without extras)."""
    if not extras:
        return {}
    return head.loss_by_extras(extras, batch_data_samples)
