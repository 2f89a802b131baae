"""Single-stage OCR head: the HRNet-OCR block with its own soft-object-region branch.

Paper: Yuan, Chen, Wang, "Object-Contextual Representations for Semantic Segmentation", ECCV 2020,
https://arxiv.org/abs/1909.11065. Code consulted as reference (not copied): the ``OCRBlock`` of
https://github.com/SysCV/dla-afa (``afa/model/necks/ocr.py``, ``afa/model/utils/ocr_utils.py``),
itself NVIDIA's copy of https://github.com/HRNet/HRNet-Semantic-Segmentation (HRNet-OCR). It is
the head of every released AFA segmentation model (AFA-DLA-Up + OCR + SSR).

Structure (``x`` the head input, K classes)::

    feats   = bottleneck(x)                    3x3 conv (with bias) + norm + act  (conv3x3_ocr)
    regions = aux_head(x)                      1x1 conv + norm + act, 1x1 conv -> K  (aux_head)
    context = gather(feats, regions)           softmax over pixels per class, weighted mean
    ocr     = object_context_block(feats, context)   object attention, then 1x1 on [ctx, feats]
    logits  = conv_seg(dropout(ocr))           (cls_head, after the block's Dropout2d(0.05))

The soft object regions ``regions`` are supervised with the same loss times
``aux_loss_weight`` (0.4, as official); they are the extra output ``'aux_ocr'`` of the
package's protocol for heads whose loss needs more than the logits
(:mod:`~mmseg_fusion.models.decode_heads.extra_outputs`).

Differences:

- mmseg's ``OCRHead`` is the second stage of a ``CascadeEncoderDecoder`` whose first stage
  (an ``FCNHead``) gives the regions; this head computes them itself, so it works in a plain
  ``EncoderDecoder`` and in :class:`~mmseg_fusion.models.SSREncoderDecoder` (whose scale
  attention reads the ``ocr`` features, the official SSR input). The object attention and the
  gather are mmseg's own ``ObjectAttentionBlock`` and ``SpatialGatherModule``, which compute
  what the official ``SpatialOCR_Module`` and ``SpatialGather_Module`` compute.
- The official ``Dropout2d(0.05)`` at the end of the OCR block is this head's ``dropout``
  (``dropout_ratio=0.05``), at the same place (before the classifier).
"""
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.decode_heads.ocr_head import ObjectAttentionBlock, SpatialGatherModule
from mmseg.registry import MODELS
from mmseg.utils import SampleList

from ...utils.checks import check_int
from .extra_outputs import ExtraOutputsMixin

__all__ = ['OCRBlockHead']


@MODELS.register_module()
class OCRBlockHead(ExtraOutputsMixin, BaseDecodeHead):
    """Object-contextual representation head with its own soft-region branch.

    Args:
        ocr_channels (int): Key/query channels of the object attention (official 128).
        aux_loss_weight (float): Weight of the loss on the soft object regions (official 0.4);
            0 disables it. Defaults to 0.4.
        **kwargs: :class:`~mmseg.models.decode_heads.decode_head.BaseDecodeHead` arguments;
            ``channels`` is the OCR middle width (official 256) and ``dropout_ratio`` the
            official 0.05 in the AFA configs.
    """

    def __init__(self, ocr_channels: int, aux_loss_weight: float = 0.4, **kwargs) -> None:
        super().__init__(**kwargs)
        name = type(self).__name__
        check_int(name, 'ocr_channels', ocr_channels)
        if not float(aux_loss_weight) >= 0:
            raise ValueError(f'{name}: aux_loss_weight must be >= 0, got {aux_loss_weight!r}')
        if not isinstance(self.in_channels, int):
            raise ValueError(f'{name}: in_channels must be one int (a single input level), '
                             f'got {self.in_channels!r}')
        self.ocr_channels = ocr_channels
        self.aux_loss_weight = float(aux_loss_weight)
        common = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.bottleneck = ConvModule(self.in_channels, self.channels, 3, padding=1, bias=True,
                                     **common)
        self.aux_head = nn.Sequential(
            ConvModule(self.in_channels, self.in_channels, 1, bias=True, **common),
            nn.Conv2d(self.in_channels, self.out_channels, 1))
        self.spatial_gather_module = SpatialGatherModule(1)
        self.object_context_block = ObjectAttentionBlock(self.channels, ocr_channels, 1,
                                                         **common)

    def forward_with_extras(self, inputs: List[torch.Tensor]
                            ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Class logits and soft object regions.

        Args:
            inputs (list[Tensor]): Multi-level features; ``in_index`` selects one of shape
                (N, in_channels, H, W).

        Returns:
            tuple[Tensor, dict[str, Tensor]]: Logits (N, K, H, W) and
            ``{'aux_ocr': region logits}`` (N, K, H, W).
        """
        x = self._transform_inputs(inputs)
        # (N, channels, H, W)
        feats = self.bottleneck(x)
        # (N, K, H, W)
        regions = self.aux_head(x)
        # (N, channels, K, 1): one feature vector per class
        context = self.spatial_gather_module(feats, regions)
        ocr = self.object_context_block(feats, context)
        return self.cls_seg(ocr), {'aux_ocr': regions}

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        """Class logits.

        Args:
            inputs (list[Tensor]): Multi-level features (see :meth:`forward_with_extras`).

        Returns:
            Tensor: Logits of shape (N, K, H, W).
        """
        return self.forward_with_extras(inputs)[0]

    def loss_by_extras(self, extras: Dict[str, torch.Tensor],
                       batch_data_samples: SampleList) -> Dict[str, torch.Tensor]:
        """Loss of the soft object regions ``extras['aux_ocr']``, times ``aux_loss_weight``.

        Args:
            extras (dict[str, Tensor]): ``{'aux_ocr': region logits}`` (N, K, h, w) (any size;
                resized to the labels as the main logits are).
            batch_data_samples (list[:obj:`SegDataSample`]): With ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: ``aux_ocr.loss_*`` (weighted) and ``aux_ocr.acc_seg``; empty
            when ``aux_loss_weight`` is 0.
        """
        if self.aux_loss_weight == 0:
            return {}
        losses = {}
        for key, value in self.loss_by_feat(extras['aux_ocr'], batch_data_samples).items():
            if key.startswith('loss'):
                value = value * self.aux_loss_weight
            losses[f'aux_ocr.{key}'] = value
        return losses
