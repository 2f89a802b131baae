"""Criss-cross attention module (CCNet), weight-compatible with mmcv's ``CrissCrossAttention``.

Paper: Huang, Wang, Wei, Huang, Shi, Liu, Huang, "CCNet: Criss-Cross Attention for Semantic
Segmentation", ICCV 2019 / TPAMI 2020, https://arxiv.org/abs/1811.11721.
Official code consulted as reference (not copied): https://github.com/speedinghzl/CCNet
(``cc_attention/functions.py``); mmcv 2.x ``mmcv/ops/cc_attention.py`` read for parameter names.

Shape shorthand: N batch, C channels, C' = C // 8 query/key channels, H x W spatial size.

``out = gamma * CCA(x) + x`` with ``CCA(x)[u] = sum_{i in Omega_u} A[u, i] * (W_v x_i + b_v)``,
``A[u] = softmax_i((W_q x_u + b_q) . (W_k x_i + b_k))`` over the pixel's row and column
(:func:`~mmseg_fusion.functional.criss_cross_attention`), ``gamma`` a scalar initialised to 0.

Parameters have mmcv's names and shapes (``query_conv``, ``key_conv``, ``value_conv`` 1x1
convolutions with bias, ``gamma.scale`` a 0-dim tensor), so state dicts of mmcv's module and of
mmseg's ``CCHead`` load with ``strict=True``. The official code stores ``gamma`` with shape [1];
its converter reshapes it.

Differences from mmcv and the official code (same outputs up to float rounding):

* The value projection is applied *after* the aggregation: each softmax row sums to one, so
  ``sum_i A[u, i] (W_v x_i + b_v) = W_v (sum_i A[u, i] x_i) + b_v``. The input is aggregated in
  channels-last layout and one batched matmul computes ``x + gamma * (W_v agg + b_v)`` straight
  into the (N, C, H, W) output, with ``gamma`` folded into ``W_v`` and ``b_v``.
* The query and key projections run as one matmul with their weights concatenated at run time.
* No extra copy of the input is needed for the row or column matmuls (see
  :mod:`mmseg_fusion.functional.criss_cross`). Together, forward + backward at
  (2, 512, 97, 97) on one CPU thread takes 0.52x the time of mmcv's module with 0.91x its peak
  memory; with two threads on a machine shared with other jobs it was unstable and could be
  slower (``benchmarks/benchmark_attention.py``, tables in ``configs/ccnet/README.md``).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import Scale

from mmseg_fusion.functional.criss_cross import criss_cross_attention

from ..utils.checks import check_int

__all__ = ['CrissCrossAttention']


class CrissCrossAttention(nn.Module):
    """Criss-cross attention with learnable residual scale (one CCA step of CCNet's RCCA).

    The module is initialised as an identity (``gamma = 0``), as in the paper and in mmcv.

    Args:
        in_channels (int): Channels C of the input and output; the query and key have
            ``in_channels // 8`` channels. Must be >= 8.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        check_int('CrissCrossAttention', 'in_channels', in_channels, low=8,
                  why='(query and key have in_channels // 8 channels)')
        self.in_channels = in_channels
        self.query_conv = nn.Conv2d(in_channels, in_channels // 8, 1)
        self.key_conv = nn.Conv2d(in_channels, in_channels // 8, 1)
        self.value_conv = nn.Conv2d(in_channels, in_channels, 1)
        self.gamma = Scale(0.)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One criss-cross attention step with residual.

        Args:
            x (Tensor): Input of shape (N, C, H, W).

        Returns:
            Tensor: ``x + gamma * CCA(x)``, shape (N, C, H, W), contiguous.
        """
        n, c, h, w = x.shape
        c_qk = self.query_conv.out_channels
        # (N, C, H, W) in channels-last memory: (N, H, W, C) contiguous
        x_cl = x.contiguous(memory_format=torch.channels_last)
        # (2C', C) and (2C',): query and key projections stacked
        w_qk = torch.cat([self.query_conv.weight, self.key_conv.weight]).flatten(1)
        b_qk = torch.cat([self.query_conv.bias, self.key_conv.bias])
        # (N, H, W, C) view @ (C, 2C') -> (N, H, W, 2C'): one GEMM over all pixels
        qk = F.linear(x_cl.permute(0, 2, 3, 1), w_qk, b_qk)
        # (N, H, W, 2C') -> (N, 2C', H, W) channels-last view -> two (N, C', H, W) views
        query, key = qk.permute(0, 3, 1, 2).split(c_qk, dim=1)
        # (N, C, H, W), channels-last: the input aggregated over each row and column
        agg = criss_cross_attention(query, key, x_cl)
        scale = self.gamma.scale
        # (N, C, H*W) + (N, C, C) @ (N, C, H*W): x + gamma * W_v agg in one matmul
        out = torch.baddbmm(x.flatten(2),
                            (scale * self.value_conv.weight.flatten(1)).expand(n, -1, -1),
                            agg.flatten(2))
        # + gamma * b_v, in place (no full-size temporary)
        out.add_((scale * self.value_conv.bias).view(1, c, 1))
        return out.view(n, c, h, w)

    def extra_repr(self) -> str:
        """Show the channels in ``repr``."""
        return f'in_channels={self.in_channels}'
