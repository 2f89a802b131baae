"""Attentive Feature Aggregation (AFA): spatial and channel attention, bi- and multi-input AFA.

Paper: Yang, Huang, Sun, Rota Bulò, Kontschieder, Yu, "Dense Prediction with Attentive Feature
Aggregation", WACV 2023, https://arxiv.org/abs/2111.00770.
Official code consulted as reference (not copied): https://github.com/SysCV/dla-afa
(``afa/model/utils/attn_utils.py``, ``afa/model/necks/afa_dla_up.py``).

Shape shorthand: N batch, C channels, H x W spatial size.

Differences from the official code: the official ``bn_relu`` is either BatchNorm2d + ReLU or
InPlace-ABN (leaky ReLU 0.01, ``|w| + eps`` weights); here norm and activation are
``norm_cfg``/``act_cfg`` of :class:`~mmcv.cnn.ConvModule`, so both are configurable (the
converters of ``tools/model_converters`` turn InPlace-ABN weights into BatchNorm weights).
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule

from ..functional.afa import afa_bi_fusion, afa_multi_fusion
from ..utils.checks import check_int, is_int

__all__ = ['BiAFA', 'ChannelAttention', 'MultiAFA', 'SpatialAttention']

_ACTIVATIONS = ('sigmoid', 'abs', None)


class SpatialAttention(nn.Module):
    """Per-pixel attention map: two 3x3 conv-norm-act, then a 1x1 conv.

    The official ``SpatialAttentionModule``.

    Also the scale-attention ("density") head of SSR, with ``activation='abs'``.

    Args:
        in_channels (int): Input channels C.
        out_channels (int): Channels of the map. Defaults to 1.
        mid_channels (int, optional): Channels of the two 3x3 convs; the official code uses
            ``in_channels``. Defaults to None (= ``in_channels``).
        activation (str, optional): ``'sigmoid'`` (AFA), ``'abs'`` (SSR density) or None
            (logits). Defaults to ``'sigmoid'``.
        kernel_size (int): Kernel of the two inner convs. Defaults to 3.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation of the inner convs. Defaults to ``dict(type='ReLU')``.
        bias_init (float, optional): Give the final 1x1 conv a bias initialised to this value
            (the map starts near ``activation(bias_init)``). Defaults to None: no bias, as the
            official module (and its checkpoints' keys).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int = 1,
                 mid_channels: Optional[int] = None,
                 activation: Optional[str] = 'sigmoid',
                 kernel_size: int = 3,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 bias_init: Optional[float] = None) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f'SpatialAttention: activation must be one of {_ACTIVATIONS}, '
                             f'got {activation!r}')
        mid_channels = in_channels if mid_channels is None else mid_channels
        for name, value in (('in_channels', in_channels), ('out_channels', out_channels),
                            ('mid_channels', mid_channels)):
            check_int('SpatialAttention', name, value)
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg, bias=False)
        self.in_channels = in_channels
        self.activation = activation
        self.conv = ConvModule(in_channels, mid_channels, kernel_size,
                               padding=kernel_size // 2, **common)
        self.conv_inner = ConvModule(mid_channels, mid_channels, kernel_size,
                                     padding=kernel_size // 2, **common)
        self.final = nn.Conv2d(mid_channels, out_channels, 1, bias=bias_init is not None)
        self.bias_init = bias_init
        self.init_weights()

    def init_weights(self) -> None:
        """Keep the final bias at ``bias_init`` when an ``init_cfg`` re-initialises convs."""
        if self.bias_init is not None:
            nn.init.constant_(self.final.bias, float(self.bias_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attention map of ``x``.

        Args:
            x (Tensor): Features of shape (N, C, H, W).

        Returns:
            Tensor: Map of shape (N, out_channels, H, W), activated as configured.
        """
        logits = self.final(self.conv_inner(self.conv(x)))
        if self.activation == 'sigmoid':
            return logits.sigmoid()
        if self.activation == 'abs':
            return logits.abs()
        return logits


class ChannelAttention(nn.Module):
    """Per-channel attention from average- and max-pooled features.

    The official ``ChannelAttentionModule``.

    ``c = sigmoid(mlp(GAP(x)) + mlp(GMP(x)))`` with a shared ``mlp`` = 1x1 conv (C -> C/r),
    norm, act, 1x1 conv (C/r -> out), both convs without bias. The norm sees (N, C/r, 1, 1)
    tensors: with ``BN`` and one image per process, training fails ("Expected more than 1
    value per channel"); use ``SyncBN`` or a batch of at least 2, as the official configs do.

    Args:
        in_channels (int): Input channels C.
        out_channels (int, optional): Channels of the attention. Defaults to None (= C).
        reduction (int): Reduction ratio r of the hidden layer (the official code divides
            ``out_channels`` by 16). Defaults to 16.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Hidden activation. Defaults to ``dict(type='ReLU')``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: Optional[int] = None,
                 reduction: int = 16,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU')) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        check_int('ChannelAttention', 'in_channels', in_channels)
        check_int('ChannelAttention', 'out_channels', out_channels)
        if not is_int(reduction, 1, out_channels):
            raise ValueError(
                f'ChannelAttention: reduction must be >= 1 and <= out_channels '
                f'({out_channels}), got {reduction!r}')
        hidden = out_channels // reduction
        self.conv1 = ConvModule(in_channels, hidden, 1, bias=False, conv_cfg=conv_cfg,
                                norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv2 = nn.Conv2d(hidden, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Channel attention of ``x``.

        Args:
            x (Tensor): Features of shape (N, C, H, W).

        Returns:
            Tensor: Sigmoid weights of shape (N, out_channels, 1, 1).
        """
        # (N, C, 1, 1) each; the shared MLP runs on both separately, as in the official code
        avg, mx = F.adaptive_avg_pool2d(x, 1), F.adaptive_max_pool2d(x, 1)
        return (self.conv2(self.conv1(avg)) + self.conv2(self.conv1(mx))).sigmoid()


class _AFAttentions(nn.Module):
    """The spatial (``sa``, sigmoid) and channel (``ca``) attention pair of an AFA node.

    Args:
        channels (int): Channels C of the inputs.
        reduction (int): Reduction ratio of the channel attention. Defaults to 16.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation of the inner layers. Defaults to ``dict(type='ReLU')``.
    """

    def __init__(self,
                 channels: int,
                 reduction: int = 16,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU')) -> None:
        super().__init__()
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.sa = SpatialAttention(channels, 1, activation='sigmoid', **common)
        self.ca = ChannelAttention(channels, channels, reduction=reduction, **common)


class BiAFA(_AFAttentions):
    """Bi-input AFA (an aggregation node of AFA's IDA-Up): ``s (1 - c) x + (1 - s) c y``.

    ``s = SA(x)`` is a spatial attention of the shallow (running) feature ``x`` and
    ``c = CA(y)`` a channel attention of the deep feature ``y``
    (:func:`~mmseg_fusion.functional.afa_bi_fusion`). Both inputs must already have the same
    channels and size (the projection and upsampling are the caller's, as in the official
    ``AFAIDAUp``).

    Args:
        channels (int): Channels C of both inputs.
        reduction (int): Reduction ratio of the channel attention. Defaults to 16.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation of the inner layers. Defaults to ``dict(type='ReLU')``.
    """

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Fuse the shallow feature ``x`` with the deep feature ``y``.

        Args:
            x (Tensor): Shallow / running feature of shape (N, C, H, W).
            y (Tensor): Deep feature of shape (N, C, H, W), already at the size of ``x``.

        Returns:
            Tensor: Fused feature of shape (N, C, H, W).
        """
        return afa_bi_fusion(x, y, self.sa(x), self.ca(y))


class MultiAFA(_AFAttentions):
    """Multi-input (progressive) AFA: ``sum_k S_k C_k F_k`` with shared attention modules.

    One spatial attention ``SA`` and one channel attention ``CA`` are applied to every input,
    ``s_k = SA(F_k)``, ``c_k = CA(F_k)``; then ``S_k = s_k prod_{j>k} (1 - s_j)`` and
    ``C_k = c_k prod_{j>k} (1 - c_j)`` (:func:`~mmseg_fusion.functional.afa_multi_fusion`).
    Inputs are ordered from the deepest to the shallowest, as in the official
    ``final_feature_fusion``; the last (shallowest) input is never attenuated. With one input
    the output is ``SA(F) CA(F) F``.

    Args:
        channels (int): Channels C of every input.
        reduction (int): Reduction ratio of the channel attention. Defaults to 16.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation of the inner layers. Defaults to ``dict(type='ReLU')``.
    """

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Fuse ``K >= 1`` features of the same shape.

        Args:
            features (Sequence[Tensor]): K features of shape (N, C, H, W), deepest first.

        Returns:
            Tensor: Fused feature of shape (N, C, H, W).
        """
        if len(features) == 0:
            raise ValueError('MultiAFA: features must contain at least one tensor, got 0')
        return afa_multi_fusion(features, [self.sa(f) for f in features],
                                [self.ca(f) for f in features])
