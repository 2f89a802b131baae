"""A²-Nets decode head: a double attention block between two 3x3 convs.

Paper: Chen, Kalantidis, Li, Yan, Feng, "A²-Nets: Double Attention Networks", NeurIPS 2018,
https://arxiv.org/abs/1810.11579. The paper evaluates the block in classification (ImageNet)
and video recognition (Kinetics, UCF-101) backbones; there is no official code and no official
segmentation head.

Design chosen here (documented also in ``configs/a2net/README.md``): the layout of mmseg's
``NLHead`` and ``CCHead`` (an ``FCNHead`` with two 3x3 convs, the attention block between them,
the input concatenated before classification), with the double attention block in place of
the non-local / criss-cross block. Keeping the surrounding head identical makes A² directly
comparable with mmseg's NonLocal and CCNet results on the same backbone and schedule, and the
block's cost, O(m n L), is far below the non-local block's O(L^2 C).
"""
from typing import List, Optional

import torch
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS

from ...layers.double_attention import DoubleAttention
from ...utils.checks import check_int
from .extra_outputs import ExtraOutputsMixin

__all__ = ['A2Head']


@MODELS.register_module()
class A2Head(ExtraOutputsMixin, BaseDecodeHead):
    """Double attention head (A²-Nets, no official segmentation head; see the module docstring).

    This head uses the double attention block of `A²-Nets <https://arxiv.org/abs/1810.11579>`_:
    ``x -> conv_in (3x3, in_channels -> channels) -> a2_block (DoubleAttention, residual)
    -> conv_out (3x3) -> [conv_cat(cat(x, .)) (3x3)] -> cls_seg``.

    Args:
        mid_channels (int, optional): Feature channels m of the block. Defaults to None
            (= ``channels // 4``, the usual reimplementation choice, unverified against the
            paper).
        num_descriptors (int, optional): Number n of gathered descriptors. Defaults to None
            (= ``channels // 4``, unverified against the paper).
        expand_norm (bool): Apply ``norm_cfg`` after the block's 1x1 expansion conv.
            Defaults to True.
        concat_input (bool): Concatenate the input with the ``conv_out`` output and fuse them
            with a 3x3 ``conv_cat`` before classification (as mmseg's ``NLHead``).
            Defaults to True.
        **kwargs: Arguments of :class:`~mmseg.models.decode_heads.decode_head.BaseDecodeHead`
            (``in_channels``, ``channels``, ``num_classes``, ``norm_cfg`` ...).
    """

    def __init__(self,
                 mid_channels: Optional[int] = None,
                 num_descriptors: Optional[int] = None,
                 expand_norm: bool = True,
                 concat_input: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        check_int('A2Head', 'mid_channels', mid_channels, optional=True)
        check_int('A2Head', 'num_descriptors', num_descriptors, optional=True)
        self.concat_input = concat_input
        common = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.conv_in = ConvModule(self.in_channels, self.channels, 3, padding=1, **common)
        self.a2_block = DoubleAttention(
            self.channels, mid_channels, num_descriptors, residual=True,
            conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg if expand_norm else None)
        self.conv_out = ConvModule(self.channels, self.channels, 3, padding=1, **common)
        if concat_input:
            self.conv_cat = ConvModule(self.in_channels + self.channels, self.channels, 3,
                                       padding=1, **common)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        """Segmentation logits.

        Args:
            inputs (list[Tensor]): Backbone features; the selected one is (N, in_channels,
                H, W).

        Returns:
            Tensor: Logits of shape (N, num_classes, H, W).
        """
        x = self._transform_inputs(inputs)
        # (N, channels, H, W)
        output = self.conv_out(self.a2_block(self.conv_in(x)))
        if self.concat_input:
            # (N, in_channels + channels, H, W) -> (N, channels, H, W)
            output = self.conv_cat(torch.cat([x, output], dim=1))
        return self.cls_seg(output)
