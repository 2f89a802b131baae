"""Double attention block (A²-Nets): gather global descriptors, distribute them, add back.

Paper: Chen, Kalantidis, Li, Yan, Feng, "A²-Nets: Double Attention Networks", NeurIPS 2018,
https://arxiv.org/abs/1810.11579. No official code was released; the reimplementation
gjylt/DoubleAttentionNet was read (not copied) to cross-check the two softmax dimensions.

Shape shorthand: N batch, C channels, H x W spatial size, m feature channels, n descriptors.

Block: ``A = conv_a(X)`` (C -> m), ``B = conv_b(X)`` (C -> n), ``V = conv_v(X)`` (C -> n), all
1x1 with bias; ``Z = double_attention(A, B, V)`` (:func:`mmseg_fusion.functional.double_attention`:
softmax of B over all positions, softmax of V over the n maps); ``Y = X + expand(Z)`` with
``expand`` a 1x1 conv m -> C (optionally followed by a norm layer).

Defaults m = n = C / 4 are the common reimplementation choice. The paper ablates m and n, but
its tables could not be re-read while writing this module (only the abstract was retrievable),
so these defaults are **unverified** against the paper; set ``mid_channels``/``num_descriptors``
explicitly to reproduce a given ablation.
"""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_conv_layer

from ..functional.double_attention import double_attention
from ..utils.checks import check_int

__all__ = ['DoubleAttention']


class DoubleAttention(nn.Module):
    """A² double attention block with a 1x1 expansion and a residual connection.

    Args:
        in_channels (int): Input (and output) channels C.
        mid_channels (int, optional): Feature channels m of ``A`` (size of each gathered
            descriptor). Defaults to None (= ``max(C // 4, 1)``, unverified against the paper).
        num_descriptors (int, optional): Number n of attention maps ``B`` and ``V``.
            Defaults to None (= ``max(C // 4, 1)``, unverified against the paper).
        residual (bool): Return ``X + expand(Z)``; False returns ``expand(Z)``.
            Defaults to True.
        conv_cfg (dict, optional): Conv layer config of all four 1x1 convs
            (e.g. ``dict(type='Conv3d')`` for videos). Defaults to None (Conv2d).
        norm_cfg (dict, optional): Norm after the expansion conv (no activation). Defaults to
            None (a plain conv with bias).
    """

    def __init__(self,
                 in_channels: int,
                 mid_channels: Optional[int] = None,
                 num_descriptors: Optional[int] = None,
                 residual: bool = True,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        default = max(in_channels // 4, 1) if isinstance(in_channels, int) else None
        mid_channels = default if mid_channels is None else mid_channels
        num_descriptors = default if num_descriptors is None else num_descriptors
        for name, value in (('in_channels', in_channels), ('mid_channels', mid_channels),
                            ('num_descriptors', num_descriptors)):
            check_int('DoubleAttention', name, value)
        self.in_channels = in_channels
        self.mid_channels = mid_channels
        self.num_descriptors = num_descriptors
        self.residual = residual
        self.conv_a = build_conv_layer(conv_cfg, in_channels, mid_channels, 1)
        self.conv_b = build_conv_layer(conv_cfg, in_channels, num_descriptors, 1)
        self.conv_v = build_conv_layer(conv_cfg, in_channels, num_descriptors, 1)
        self.expand = ConvModule(mid_channels, in_channels, 1, conv_cfg=conv_cfg,
                                 norm_cfg=norm_cfg, act_cfg=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x (Tensor): Features X of shape (N, C, H, W) (or (N, C, T, H, W) with a 3D
                ``conv_cfg``).

        Returns:
            Tensor: Output of the same shape as ``x``.
        """
        # (N, m, H, W)
        z = double_attention(self.conv_a(x), self.conv_b(x), self.conv_v(x))
        # (N, C, H, W)
        out = self.expand(z)
        return x + out if self.residual else out

    def extra_repr(self) -> str:
        """Hyper-parameters shown by ``repr``."""
        return (f'in_channels={self.in_channels}, mid_channels={self.mid_channels}, '
                f'num_descriptors={self.num_descriptors}, residual={self.residual}')
