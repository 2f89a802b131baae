"""EMANet decode head built on the EM attention unit (:mod:`mmseg_fusion.layers.em_attention`).

Paper: Li, Zhong, Wu, Yang, Lin, Liu, "Expectation-Maximization Attention Networks for Semantic
Segmentation", ICCV 2019, https://arxiv.org/abs/1907.13426.
Official code consulted as reference (not copied): https://github.com/XiaLiPKU/EMANet
(``network.py``). The state-dict layout is that of MMSegmentation's ``EMAHead``
(``mmseg/models/decode_heads/ema_head.py``), so mmseg EMANet checkpoints load unchanged.

Differences from mmseg's ``EMAHead`` (default, ``official=False``): none in the computation;
argument checks at construction, documented shapes, and the moving average lives in
:class:`~mmseg_fusion.layers.EMAttention`. With ``official=True`` the head is the official
EMANet head: no ``conv_cat`` (unless ``concat_input=True`` is asked for explicitly), ``1e-6 +``
denominators in the EM normalisations instead of ``F.normalize``, and the moving average blends
the batch mean of the bases without l2-normalising it again. Everything else (``ema_in_conv`` =
official ``fc0``, frozen ``ema_mid_conv`` = ``emau.conv1``, ``ema_module.bases`` = ``emau.mu``,
``ema_out_conv`` = ``emau.conv2``, ``bottleneck`` = ``fc1``, ``conv_seg`` = ``fc2``) is shared.
"""
from typing import List, Optional

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS

from ...layers.em_attention import EMAttention, check_em_arguments
from ...utils.checks import check_int
from .extra_outputs import ExtraOutputsMixin

__all__ = ['EMAUHead']


@MODELS.register_module()
class EMAUHead(ExtraOutputsMixin, BaseDecodeHead):
    """Expectation-maximisation attention head (EMANet).

    This head is the implementation of `EMANet <https://arxiv.org/abs/1907.13426>`_:
    ``x -> ema_in_conv (3x3) -> [ema_mid_conv (1x1, frozen) -> EM attention -> ReLU ->
    ema_out_conv (1x1 + norm)] + identity -> ReLU -> bottleneck (3x3)
    -> [conv_cat(cat(x, .)) (3x3)] -> cls_seg``.

    The bases ``ema_module.bases`` (1, ema_channels, num_bases) are a moving average updated
    once per training forward and synchronised over all processes; ``ema_mid_conv`` has
    ``requires_grad=False`` because no gradient reaches it through the EM steps (official
    design). In eval mode nothing is updated.

    Args:
        ema_channels (int): Channels of the EM attention unit (official 512).
        num_bases (int): Number K of bases. Defaults to 64.
        num_stages (int): Number T of EM iterations. Defaults to 3.
        concat_input (bool, optional): Concatenate the input with the bottleneck output and
            fuse them with a 3x3 ``conv_cat`` before classification. Defaults to None: True
            (mmseg's default) unless ``official``, then False (the official head has none).
        momentum (float): Weight of the new bases in their moving average, in [0, 1]
            (official ``EM_MOM = 0.9`` means 0.1). Defaults to 0.1.
        official (bool): Official EMANet numerics (``1e-6 +`` denominators, no re-l2-norm of
            the averaged bases) and no concat conv by default. Defaults to False.
        **kwargs: Arguments of :class:`~mmseg.models.decode_heads.decode_head.BaseDecodeHead`
            (``in_channels``, ``channels``, ``num_classes``, ``norm_cfg`` ...).
    """

    def __init__(self,
                 ema_channels: int,
                 num_bases: int = 64,
                 num_stages: int = 3,
                 concat_input: Optional[bool] = None,
                 momentum: float = 0.1,
                 official: bool = False,
                 **kwargs) -> None:
        check_em_arguments('EMAUHead', num_bases, num_stages, momentum)
        check_int('EMAUHead', 'ema_channels', ema_channels)
        super().__init__(**kwargs)
        self.ema_channels = ema_channels
        self.num_bases = num_bases
        self.num_stages = num_stages
        self.momentum = momentum
        self.official = official
        self.concat_input = (not official) if concat_input is None else bool(concat_input)
        self.ema_module = EMAttention(ema_channels, num_bases, num_stages, momentum,
                                      official=official)
        common = dict(conv_cfg=self.conv_cfg)
        self.ema_in_conv = ConvModule(self.in_channels, ema_channels, 3, padding=1,
                                      norm_cfg=self.norm_cfg, act_cfg=self.act_cfg, **common)
        # maps the non-negative ReLU output to (-inf, inf); no gradient reaches it through EM
        self.ema_mid_conv = ConvModule(ema_channels, ema_channels, 1, norm_cfg=None,
                                       act_cfg=None, **common)
        for param in self.ema_mid_conv.parameters():
            param.requires_grad = False
        self.ema_out_conv = ConvModule(ema_channels, ema_channels, 1, norm_cfg=self.norm_cfg,
                                       act_cfg=None, **common)
        self.bottleneck = ConvModule(ema_channels, self.channels, 3, padding=1,
                                     norm_cfg=self.norm_cfg, act_cfg=self.act_cfg, **common)
        if self.concat_input:
            self.conv_cat = ConvModule(self.in_channels + self.channels, self.channels, 3,
                                       padding=1, norm_cfg=self.norm_cfg,
                                       act_cfg=self.act_cfg, **common)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        """Segmentation logits.

        Args:
            inputs (list[Tensor]): Backbone features; the selected one is (N, in_channels,
                H, W).

        Returns:
            Tensor: Logits of shape (N, num_classes, H, W).
        """
        x = self._transform_inputs(inputs)
        # (N, ema_channels, H, W)
        feats = self.ema_in_conv(x)
        recon = self.ema_module(self.ema_mid_conv(feats))
        recon = self.ema_out_conv(F.relu(recon))
        output = self.bottleneck(F.relu(feats + recon))
        if self.concat_input:
            # (N, in_channels + channels, H, W) -> (N, channels, H, W)
            output = self.conv_cat(torch.cat([x, output], dim=1))
        return self.cls_seg(output)
