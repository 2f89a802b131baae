"""3D criss-cross attention module (CCNet TPAMI, video), weight-compatible with the 2D module.

Paper: Huang, Wang, Wei, Huang, Shi, Liu, Huang, "CCNet: Criss-Cross Attention for Semantic
Segmentation", TPAMI 2020, https://arxiv.org/abs/1811.11721 (3D criss-cross attention).

Shape shorthand: N clips, C channels, C' = C // 8 query/key channels, T frames of H x W.

``out = gamma * CCA3d(x) + x`` with ``CCA3d(x)[u] = sum_{i in Omega_u} A[u, i] * (W_v x_i + b_v)``
and ``A[u] = softmax_i((W_q x_u + b_q) . (W_k x_i + b_k))`` over the position's row and column
in its frame and its pixel in every frame
(:func:`~mmseg_fusion.functional.criss_cross_attention_3d`).

Weight compatibility (the design choice): the 1x1x1 projections are kept as the 2D module's
1x1 ``Conv2d`` weights (shape (C_out, C, 1, 1)) applied to every frame, which is the same map
as a 1x1x1 ``Conv3d``. The module is a subclass of
:class:`~mmseg_fusion.layers.CrissCrossAttention` with the same parameters (``query_conv``,
``key_conv``, ``value_conv``, ``gamma.scale``), so a state dict of the 2D module (ours, mmcv's,
or the ``cca`` of an mmseg ``CCHead`` checkpoint) loads with ``strict=True`` and nothing is
reshaped; the time axis adds no parameters. For weights stored as ``Conv3d`` kernels (shape
(C_out, C, 1, 1, 1), e.g. the community ``CrissCrossAttention3D`` of the official repository's
``pure-python`` branch), the trailing unit dimension is dropped when loading; that module's
``gamma`` of shape [1] still needs the converter's reshape to ``gamma.scale``.
"""
import torch
import torch.nn.functional as F

from mmseg_fusion.functional.criss_cross_3d import criss_cross_attention_3d

from .criss_cross import CrissCrossAttention

__all__ = ['CrissCrossAttention3d']


class CrissCrossAttention3d(CrissCrossAttention):
    """3D criss-cross attention with learnable residual scale, on clips (N, C, T, H, W).

    Initialised as an identity (``gamma = 0``). With ``T == 1`` the output is bit-identical to
    that of :class:`~mmseg_fusion.layers.CrissCrossAttention` with the same weights on
    ``x[:, :, 0]``.

    Args:
        in_channels (int): Channels C of the input and output; the query and key have
            ``in_channels // 8`` channels. Must be >= 8.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One 3D criss-cross attention step with residual.

        Args:
            x (Tensor): Clips of shape (N, C, T, H, W).

        Returns:
            Tensor: ``x + gamma * CCA3d(x)``, shape (N, C, T, H, W), contiguous.
        """
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f'{type(self).__name__}: input must have shape (N, C, T, H, W) with '
                             f'C = in_channels = {self.in_channels}, got {tuple(x.shape)}')
        n, c, t, h, w = x.shape
        if t == 1:
            # the 2D module's arithmetic exactly (its layout and its GEMM shapes)
            return super().forward(x[:, :, 0]).unsqueeze(2)
        c_qk = self.query_conv.out_channels
        # (N, C, T, H, W) in channels-last-3d memory: (N, T, H, W, C) contiguous
        x_cl = x.contiguous(memory_format=torch.channels_last_3d)
        # (2C', C) and (2C',): query and key projections stacked
        w_qk = torch.cat([self.query_conv.weight, self.key_conv.weight]).flatten(1)
        b_qk = torch.cat([self.query_conv.bias, self.key_conv.bias])
        # (N, T, H, W, C) view @ (C, 2C') -> (N, T, H, W, 2C'): one GEMM over all positions
        qk = F.linear(x_cl.permute(0, 2, 3, 4, 1), w_qk, b_qk)
        # (N, T, H, W, 2C') -> (N, 2C', T, H, W) view -> two (N, C', T, H, W) views
        query, key = qk.permute(0, 4, 1, 2, 3).split(c_qk, dim=1)
        # (N, C, T, H, W), channels-last-3d: the input aggregated over row, column, time line
        agg = criss_cross_attention_3d(query, key, x_cl)
        scale = self.gamma.scale
        # (N, C, T*H*W) + (N, C, C) @ (N, C, T*H*W): x + gamma * W_v agg in one matmul
        out = torch.baddbmm(x.flatten(2),
                            (scale * self.value_conv.weight.flatten(1)).expand(n, -1, -1),
                            agg.flatten(2))
        # + gamma * b_v, in place
        out.add_((scale * self.value_conv.bias).view(1, c, 1))
        return out.view(n, c, t, h, w)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Accept 1x1x1 ``Conv3d`` kernels (C_out, C, 1, 1, 1) for the 1x1 projections."""
        for name in ('query_conv', 'key_conv', 'value_conv'):
            key = f'{prefix}{name}.weight'
            weight = state_dict.get(key)
            if isinstance(weight, torch.Tensor) and weight.dim() == 5 \
                    and weight.shape[2:] == (1, 1, 1):
                state_dict[key] = weight.squeeze(-1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
