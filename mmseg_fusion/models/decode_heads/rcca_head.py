"""CCNet decode head: recurrent criss-cross attention (RCCA), optional category-consistent loss.

Paper: Huang, Wang, Wei, Huang, Shi, Liu, Huang, "CCNet: Criss-Cross Attention for Semantic
Segmentation", ICCV 2019 / TPAMI 2020, https://arxiv.org/abs/1811.11721.
Official code consulted as reference (not copied): https://github.com/speedinghzl/CCNet
(``networks/ccnet.py``, ``RCCAModule``). The module layout is that of MMSegmentation's
``CCHead`` (``mmseg/models/decode_heads/cc_head.py``), so mmseg CCNet checkpoints load with
``strict=True`` and give the same logits.

Differences from mmseg's ``CCHead``: the criss-cross attention is
:class:`~mmseg_fusion.layers.CrissCrossAttention` (pure PyTorch, no compiled ``mmcv.ops``
needed, ~2x faster than mmcv's on one CPU thread, same parameters); ``recurrence`` is
checked at construction; the TPAMI category-consistent loss can be switched on from
``loss_decode``.

Differences from the official ``RCCAModule`` (all configurable, no fork): the official head uses
InPlace-ABN, i.e. BatchNorm followed by LeakyReLU(0.01) — set
``act_cfg=dict(type='LeakyReLU', negative_slope=0.01)`` (the weights need ``|w| + eps``, see
the converter notes); mmseg's and this head's default is ReLU. The official classifier is the
same ``Dropout2d(0.1)`` + 1x1 conv (``dropout_ratio=0.1``).
"""
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.decode_heads.fcn_head import FCNHead
from mmseg.registry import MODELS
from mmseg.utils import SampleList

from ...layers.criss_cross import CrissCrossAttention
from ...utils.checks import check_int
from ..losses.category_consistent_loss import CategoryConsistentLoss
from .extra_outputs import ExtraOutputsMixin

__all__ = ['RCCAHead']


@MODELS.register_module()
class RCCAHead(ExtraOutputsMixin, FCNHead):
    """Recurrent criss-cross attention head of CCNet.

    This head is the implementation of `CCNet <https://arxiv.org/abs/1811.11721>`_:
    ``x -> convs.0 (3x3) -> cca x recurrence (shared weights) -> convs.1 (3x3)
    -> [conv_cat(cat(x, .)) (3x3)] -> cls_seg``, an :class:`FCNHead` with ``num_convs=2``.

    Category-consistent loss (CCNet TPAMI): when ``loss_decode`` contains a
    :class:`~mmseg_fusion.models.losses.CategoryConsistentLoss`, the head adds ``ccl_proj``, a
    1x1 conv from the attention output (``channels``) to ``ccl_channels``, and moves those losses
    to ``ccl_losses``. ``forward`` always returns the logits; the embedding is the extra output
    ``'ccl'`` of :meth:`forward_with_extras` (the package's one protocol for what a loss needs
    besides the logits, :mod:`~mmseg_fusion.models.decode_heads.extra_outputs`), and
    :meth:`loss_by_extras` applies the category-consistent losses to it against the labels
    resized (nearest) to its size. Without such a loss the state dict is exactly mmseg's
    ``CCHead``'s.

    Args:
        recurrence (int): Number of criss-cross attention steps R (shared weights); R = 2
            lets every pixel see the whole image. Defaults to 2.
        ccl_channels (int): Channels of the projection for the category-consistent loss (16 in
            the TPAMI paper); only used when ``loss_decode`` contains that loss.
            Defaults to 16.
        **kwargs: Arguments of :class:`~mmseg.models.decode_heads.FCNHead` and
            :class:`~mmseg.models.decode_heads.decode_head.BaseDecodeHead` (``in_channels``,
            ``channels``, ``num_classes``, ``concat_input``, ``norm_cfg``, ``act_cfg``,
            ``loss_decode`` ...); ``num_convs`` is fixed to 2.
    """

    def __init__(self, recurrence: int = 2, ccl_channels: int = 16, **kwargs) -> None:
        check_int('RCCAHead', 'recurrence', recurrence)
        check_int('RCCAHead', 'ccl_channels', ccl_channels)
        check_int('RCCAHead', 'channels', kwargs.get('channels'), low=8,
                  why='(the criss-cross query and key have channels // 8 channels)')
        if kwargs.get('num_convs', 2) != 2:
            raise ValueError(f'RCCAHead: num_convs is fixed to 2 (conv before and after the '
                             f'attention), got {kwargs["num_convs"]!r}')
        kwargs['num_convs'] = 2
        super().__init__(**kwargs)
        self.recurrence = recurrence
        self.cca = CrissCrossAttention(self.channels)
        losses = self.loss_decode if isinstance(self.loss_decode, nn.ModuleList) \
            else [self.loss_decode]
        ccl = [loss for loss in losses if isinstance(loss, CategoryConsistentLoss)]
        seg = [loss for loss in losses if not isinstance(loss, CategoryConsistentLoss)]
        if ccl and not seg:
            raise ValueError('RCCAHead: loss_decode must contain a segmentation loss on the '
                             'logits besides CategoryConsistentLoss, got only '
                             f'{[type(loss).__name__ for loss in ccl]}')
        self.ccl_losses = nn.ModuleList(ccl)
        self.ccl_proj = nn.Conv2d(self.channels, ccl_channels, 1) if ccl else None
        if ccl:
            self.loss_decode = nn.ModuleList(seg)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        """Segmentation logits.

        Args:
            inputs (list[Tensor]): Backbone features; ``inputs[in_index]`` has shape
                (N, in_channels, H, W).

        Returns:
            Tensor: Logits of shape (N, num_classes, H, W).
        """
        return self.forward_with_extras(inputs)[0]

    def forward_with_extras(self, inputs: List[torch.Tensor]
                            ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Logits and, with a category-consistent loss, its embedding.

        Args:
            inputs (list[Tensor]): Backbone features (see :meth:`forward`).

        Returns:
            tuple[Tensor, dict[str, Tensor]]: Logits (N, num_classes, H, W) and
            ``{'ccl': embedding}`` of shape (N, ccl_channels, H, W) (empty without the loss).
        """
        x = self._transform_inputs(inputs)
        feats = self._attend(self.convs[0](x))
        out = self.convs[1](feats)
        if self.concat_input:
            out = self.conv_cat(torch.cat([x, out], dim=1))
        logits = self.cls_seg(out)
        if self.ccl_proj is None or not self.training:
            return logits, {}
        return logits, {'ccl': self.ccl_proj(feats)}

    def _attend(self, feats: torch.Tensor) -> torch.Tensor:
        """The recurrent criss-cross attention: ``recurrence`` steps with shared weights.

        Args:
            feats (Tensor): Features of shape (N, channels, H, W).

        Returns:
            Tensor: Attended features, same shape.
        """
        for _ in range(self.recurrence):
            feats = self.cca(feats)
        return feats

    def loss_by_extras(self, extras: Dict[str, torch.Tensor],
                       batch_data_samples: SampleList) -> dict:
        """Category-consistent losses of the embedding ``extras['ccl']``.

        Args:
            extras (dict[str, Tensor]): Of :meth:`forward_with_extras`; the embedding
                (N, ccl_channels, h, w) at any size (the labels are resized to it).
            batch_data_samples (list[:obj:`SegDataSample`]): Samples with ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: e.g. ``loss_ccl`` (empty without an embedding).
        """
        embedding = extras.get('ccl')
        if embedding is None:
            return {}
        # (N, 1, H_img, W_img) -> (N, H, W) at the embedding's size
        label = self._stack_batch_gt(batch_data_samples).to(embedding.dtype)
        label = F.interpolate(label, size=embedding.shape[2:], mode='nearest')
        label = label.squeeze(1).long()
        losses = {}
        for loss in self.ccl_losses:
            value = loss(embedding, label, ignore_index=self.ignore_index)
            losses[loss.loss_name] = losses.get(loss.loss_name, 0) + value
        return losses
