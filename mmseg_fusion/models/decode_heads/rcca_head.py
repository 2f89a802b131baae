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
from typing import List, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.decode_heads.fcn_head import FCNHead
from mmseg.registry import MODELS
from mmseg.utils import SampleList

from ...layers.criss_cross import CrissCrossAttention
from ..losses.category_consistent_loss import CategoryConsistentLoss

__all__ = ['RCCAHead']

HeadOutput = Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]


@MODELS.register_module()
class RCCAHead(FCNHead):
    """Recurrent criss-cross attention head of CCNet.

    This head is the implementation of `CCNet <https://arxiv.org/abs/1811.11721>`_:
    ``x -> convs.0 (3x3) -> cca x recurrence (shared weights) -> convs.1 (3x3)
    -> [conv_cat(cat(x, .)) (3x3)] -> cls_seg``, an :class:`FCNHead` with ``num_convs=2``.

    Category-consistent loss (CCNet TPAMI): when ``loss_decode`` contains a
    :class:`~mmseg_fusion.models.losses.CategoryConsistentLoss`, the head adds ``ccl_proj``, a
    1x1 conv from the attention output (``channels``) to ``ccl_channels``, and moves those losses
    to ``ccl_losses``. In training, ``forward`` then returns ``(logits, embedding)`` and
    :meth:`loss_by_feat` applies the segmentation losses to the logits and the
    category-consistent losses to the embedding against the labels resized (nearest) to its
    size. In eval mode ``forward`` returns the logits only. Without such a loss the state dict
    is exactly mmseg's ``CCHead``'s.

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
        for name, value in (('recurrence', recurrence), ('ccl_channels', ccl_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'RCCAHead: {name} must be an int >= 1, got {value!r}')
        channels = kwargs.get('channels')
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 8:
            raise ValueError('RCCAHead: channels must be an int >= 8 (the criss-cross query and '
                             f'key have channels // 8 channels), got {channels!r}')
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

    def forward(self, inputs: List[torch.Tensor]) -> HeadOutput:
        """Logits (and, when training with the category-consistent loss, the embedding).

        Args:
            inputs (list[Tensor]): Backbone features; ``inputs[in_index]`` has shape
                (N, in_channels, H, W).

        Returns:
            Tensor | tuple[Tensor, Tensor]: Logits of shape (N, num_classes, H, W); in
            training with a category-consistent loss also the embedding of shape
            (N, ccl_channels, H, W).
        """
        x = self._transform_inputs(inputs)
        feats = self._attend(self.convs[0](x))
        out = self.convs[1](feats)
        if self.concat_input:
            out = self.conv_cat(torch.cat([x, out], dim=1))
        logits = self.cls_seg(out)
        if self.training and self.ccl_proj is not None:
            return logits, self.ccl_proj(feats)
        return logits

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

    def loss_by_feat(self, seg_logits: HeadOutput, batch_data_samples: SampleList) -> dict:
        """Segmentation losses on the logits, category-consistent losses on the embedding.

        Args:
            seg_logits (Tensor | tuple[Tensor, Tensor]): Output of :meth:`forward`.
            batch_data_samples (list[:obj:`SegDataSample`]): Samples with ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: Loss components (mmseg's, plus e.g. ``loss_ccl``) and
            ``acc_seg``.
        """
        embedding = None
        if isinstance(seg_logits, (tuple, list)):
            seg_logits, embedding = seg_logits
        losses = super().loss_by_feat(seg_logits, batch_data_samples)
        if embedding is None:
            return losses
        # (N, 1, H_img, W_img) -> (N, H, W) at the embedding's size
        label = self._stack_batch_gt(batch_data_samples).to(embedding.dtype)
        label = F.interpolate(label, size=embedding.shape[2:], mode='nearest')
        label = label.squeeze(1).long()
        for loss in self.ccl_losses:
            value = loss(embedding, label, ignore_index=self.ignore_index)
            losses[loss.loss_name] = losses.get(loss.loss_name, 0) + value
        return losses

    def predict_by_feat(self, seg_logits: HeadOutput, batch_img_metas: List[dict]) -> torch.Tensor:
        """Resize the logits to the input size (the embedding, if any, is dropped).

        Args:
            seg_logits (Tensor | tuple[Tensor, Tensor]): Output of :meth:`forward`.
            batch_img_metas (list[dict]): Image meta information.

        Returns:
            Tensor: Logits of shape (N, num_classes, H_img, W_img).
        """
        if isinstance(seg_logits, (tuple, list)):
            seg_logits = seg_logits[0]
        return super().predict_by_feat(seg_logits, batch_img_metas)
