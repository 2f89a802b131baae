"""3D criss-cross attention (CCNet TPAMI, video) as a pure function.

Paper: Huang, Wang, Wei, Huang, Shi, Liu, Huang, "CCNet: Criss-Cross Attention for Semantic
Segmentation", TPAMI 2020 (doi 10.1109/TPAMI.2020.3007032), https://arxiv.org/abs/1811.11721,
section on 3D criss-cross attention for video.

Shape shorthand: N clips, C' query/key channels, C value channels, T frames of H x W.
Position ``u = (t, h, w)`` attends over its 3D criss-cross set ``Omega_u``: its row in its own
frame (W positions), its column in its own frame (H positions) and the same pixel in every frame
of the clip (T positions), the position itself counted once, so ``T + H + W - 2`` positions. One
softmax runs over the ``T + H + W - 2`` energies jointly. With ``T == 1`` this is the 2D
criss-cross attention (:func:`~mmseg_fusion.functional.criss_cross_attention`), and the function
then *is* the 2D function (same arithmetic, bit-identical results).

Official code: the official repository (https://github.com/speedinghzl/CCNet, read as a
reference, not copied) ships only a community volumetric module in its ``pure-python`` branch
(``cc_attention/functions3d.py``, borrowed from Serge-weihao/CCNet-Pure-Pytorch). It differs
from the paper's definition implemented here: it masks the self entry only along one axis, so
the position itself is counted *twice* (``T + H + W - 1`` energies, the self value weighted by
two softmax entries); it uses ``Conv3d`` projections and a ``gamma`` of shape [1].

Arithmetic (as the 2D function, see :mod:`mmseg_fusion.functional.criss_cross`): channels-last
clips ``(N, T, H, W, C)``; the self entries of the column and of the temporal line get the most
negative finite float (the row keeps the self entry, so no softmax row is fully masked); energies
and softmax in float32 (float64 for float64 inputs) whatever the input dtype, only the
aggregation of the values in half precision under ``torch.autocast``; a custom autograd function
saves only the inputs and the attention map (``N * T * H * W * (H + W + T)`` values) and loops
over the clips, so only one clip's float32 energies exist at a time.
"""
from typing import Tuple

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

from .criss_cross import (
    _accumulate_dtype,
    _aggregate,
    _aggregate_grad_value,
    _attention_grad,
    _energies,
    _scatter_energy_grad,
    _use_traceable_path,
    criss_cross_attention,
)

__all__ = ['criss_cross_attention_3d']

Tensor = torch.Tensor


def _temporal(x: Tensor) -> Tensor:
    """Per-pixel temporal lines of one clip: (T, H, W, C) -> (H * W, T, C).

    A view when the strides allow it (always for the buffers made here), else a copy.
    """
    t, _, _, c = x.shape
    return x.permute(1, 2, 0, 3).reshape(-1, t, c)


def _temporal_view(x: Tensor) -> Tensor:
    """As :func:`_temporal` but always a view (to write through); raises if impossible."""
    t, _, _, c = x.shape
    return x.permute(1, 2, 0, 3).view(-1, t, c)


class _CrissCross3dFunction(torch.autograd.Function):
    """3D criss-cross attention on channels-last clips with a hand-written backward.

    The energies of a clip are laid out as (T, H, W, H + W + T): ``[..., :H]`` the column,
    ``[..., H:H + W]`` the row (the 2D layout of each frame), ``[..., H + W:]`` the temporal
    line (index ``s`` = frame ``s``). Row and column parts reuse the 2D per-frame helpers on
    views of the clip buffer; the temporal part is one batched matmul over the pixels.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        """Forward pass.

        Args:
            ctx (FunctionCtx): Autograd context.
            query (Tensor): Shape (N, T, H, W, C'), any strides.
            key (Tensor): Shape (N, T, H, W, C'), any strides.
            value (Tensor): Shape (N, T, H, W, C), any strides.

        Returns:
            Tensor: Aggregated values of shape (N, T, H, W, C), contiguous.
        """
        n, t, h, w, c = value.shape
        hw = h + w
        acc = _accumulate_dtype(value.dtype)
        out = value.new_empty((n, t, h, w, c))
        attn = value.new_empty((n, t, h, w, hw + t))
        for i in range(n):
            q, k, v = query[i], key[i], value[i]
            energy = q.new_empty((t, h, w, hw + t), dtype=acc)
            for f in range(t):
                _energies(q[f], k[f], acc, out=energy[f, :, :, :hw])
            # (HW, T, C') @ (HW, C', T) -> (HW, T, T): e[t, h, w, s] = q[t, h, w] . k[s, h, w]
            _temporal_view(energy[..., hw:]).copy_(
                torch.bmm(_temporal(q).to(acc), _temporal(k).to(acc).transpose(1, 2)))
            # (H, W, T) view of the entries e[t, h, w, t]: the position itself, already in its row
            energy[..., hw:].diagonal(dim1=0, dim2=3).fill_(torch.finfo(acc).min)
            attn[i] = torch.softmax(energy, dim=-1)
            del energy
            for f in range(t):
                _aggregate(attn[i, f, :, :, :hw], v[f], out[i, f])
            # (HW, T, T) @ (HW, T, C) -> (HW, T, C), added through the (HW, T, C) view
            _temporal_view(out[i]).add_(torch.bmm(_temporal(attn[i, ..., hw:]), _temporal(v)))
        ctx.save_for_backward(query, key, value, attn)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_out: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Backward pass: gradients of the query, key and value.

        Args:
            ctx (FunctionCtx): Autograd context.
            grad_out (Tensor): Gradient of the output, shape (N, T, H, W, C).

        Returns:
            tuple[Tensor, Tensor, Tensor]: Gradients of shapes (N, T, H, W, C') twice and
            (N, T, H, W, C), in the inputs' dtypes.
        """
        query, key, value, attn = ctx.saved_tensors
        n, t, h, w, c = value.shape
        hw = h + w
        acc = _accumulate_dtype(value.dtype)
        grad_q = query.new_empty(query.shape, dtype=acc)
        grad_k = key.new_empty(key.shape, dtype=acc)
        grad_v = value.new_empty((n, t, h, w, c))
        for i in range(n):
            # (T, H, W, C), one clip at a time made contiguous
            g = grad_out[i].to(value.dtype).contiguous()
            a, v = attn[i], value[i]
            grad_a = g.new_empty((t, h, w, hw + t), dtype=acc)
            for f in range(t):
                _aggregate_grad_value(a[f, :, :, :hw], g[f], grad_v[i, f])
                _attention_grad(g[f], v[f], grad_a[f, :, :, :hw])
            g_t, v_t = _temporal(g), _temporal(v)
            # (HW, T, T)^T @ (HW, T, C) -> (HW, T, C): the transposed temporal aggregation
            _temporal_view(grad_v[i]).add_(torch.bmm(_temporal(a[..., hw:]).transpose(1, 2), g_t))
            # (HW, T, C) @ (HW, C, T) -> (HW, T, T): grad . value along the temporal line
            _temporal_view(grad_a[..., hw:]).copy_(torch.bmm(g_t, v_t.transpose(1, 2)))
            # softmax backward over all H + W + T entries; masked entries have a == 0
            a = a.to(acc)
            grad_e = a * (grad_a - (grad_a * a).sum(dim=-1, keepdim=True))
            del grad_a
            q, k = query[i].to(acc), key[i].to(acc)
            for f in range(t):
                grad_q[i, f], grad_k[i, f] = _scatter_energy_grad(grad_e[f, :, :, :hw], q[f], k[f])
            ge_t = _temporal(grad_e[..., hw:])
            # (HW, T, T) @ (HW, T, C') -> (HW, T, C'), and the transpose for the keys
            _temporal_view(grad_q[i]).add_(torch.bmm(ge_t, _temporal(k)))
            _temporal_view(grad_k[i]).add_(torch.bmm(ge_t.transpose(1, 2), _temporal(q)))
        return grad_q.to(query.dtype), grad_k.to(key.dtype), grad_v


def _criss_cross_3d_traceable(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """Out-of-place, batched 3D criss-cross attention for tracing, scripting and ONNX export.

    Same arguments, result and arithmetic as :class:`_CrissCross3dFunction` (channels-last
    shapes (N, T, H, W, C') and (N, T, H, W, C)), built from ``matmul``, ``cat``,
    ``masked_fill`` and ``softmax`` only.
    """
    t, h, w = query.shape[1:4]
    acc = _accumulate_dtype(value.dtype)
    q, k = query.to(acc), key.to(acc)
    # (N, T, H, W, C') @ (N, T, H, C', W) -> (N, T, H, W, W): the row energies
    e_row = torch.matmul(q, k.transpose(-1, -2))
    # (N, T, W, H, C') @ (N, T, W, C', H) -> (N, T, W, H, H) -> (N, T, H, W, H): the column
    e_col = torch.matmul(q.transpose(2, 3), k.permute(0, 1, 3, 4, 2)).transpose(2, 3)
    # (N, H, W, T, C') @ (N, H, W, C', T) -> (N, H, W, T, T) -> (N, T, H, W, T): the time line
    e_time = torch.matmul(q.permute(0, 2, 3, 1, 4), k.permute(0, 2, 3, 4, 1))
    e_time = e_time.permute(0, 3, 1, 2, 4)
    rows = torch.arange(h, device=query.device)
    frames = torch.arange(t, device=query.device)
    # (H, 1, H) and (T, 1, 1, T): True at the position itself
    e_col = e_col.masked_fill(rows.view(h, 1, 1) == rows.view(1, 1, h), torch.finfo(acc).min)
    e_time = e_time.masked_fill(frames.view(t, 1, 1, 1) == frames.view(1, 1, 1, t),
                                torch.finfo(acc).min)
    # (N, T, H, W, H + W + T)
    attn = torch.softmax(torch.cat([e_col, e_row, e_time], dim=-1), dim=-1).to(value.dtype)
    # (N, T, H, W, W) @ (N, T, H, W, C) -> (N, T, H, W, C)
    out_row = torch.matmul(attn[..., h:h + w], value)
    # (N, T, W, H, H) @ (N, T, W, H, C) -> (N, T, W, H, C) -> (N, T, H, W, C)
    out_col = torch.matmul(attn[..., :h].transpose(2, 3), value.transpose(2, 3)).transpose(2, 3)
    # (N, H, W, T, T) @ (N, H, W, T, C) -> (N, H, W, T, C) -> (N, T, H, W, C)
    out_time = torch.matmul(attn[..., h + w:].permute(0, 2, 3, 1, 4), value.permute(0, 2, 3, 1, 4))
    return out_row + out_col + out_time.permute(0, 3, 1, 2, 4)


def criss_cross_attention_3d(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """3D criss-cross attention: each position's weighted sum over its row, column and time line.

    ``out[:, :, t, h, w] = sum_{(s, a, b) in Omega(t, h, w)} A[t, h, w, (s, a, b)] *
    value[:, :, s, a, b]`` where ``Omega(t, h, w)`` is row ``h`` and column ``w`` of frame ``t``
    plus pixel ``(h, w)`` of every frame ``s`` (the position itself once, ``T + H + W - 2``
    positions) and ``A[t, h, w] = softmax(query[:, :, t, h, w] . key[:, :, s, a, b])`` over
    ``Omega(t, h, w)``. No ``gamma`` scale and no residual (see
    :class:`~mmseg_fusion.layers.CrissCrossAttention3d` for the module).

    With ``T == 1`` the call is forwarded to
    :func:`~mmseg_fusion.functional.criss_cross_attention` (bit-identical results). Any memory
    format is accepted; channels-last ``value`` (``x.contiguous(memory_format=
    torch.channels_last_3d)``) avoids copies. Under ``torch.autocast`` the values are cast to
    the autocast dtype; energies and softmax always run in float32 (float64 for float64
    inputs). First-order gradients only.

    Args:
        query (Tensor): Queries of shape (N, C', T, H, W).
        key (Tensor): Keys of shape (N, C', T, H, W).
        value (Tensor): Values of shape (N, C, T, H, W).

    Returns:
        Tensor: Aggregated values of shape (N, C, T, H, W) in the values' dtype (or the
        autocast dtype), in channels-last-3d memory format.
    """
    if query.dim() != 5 or key.shape != query.shape:
        raise ValueError('criss_cross_attention_3d: query and key must have the same shape '
                         f'(N, C\', T, H, W), got {tuple(query.shape)} and {tuple(key.shape)}')
    if value.dim() != 5 or value.shape[0] != query.shape[0] \
            or value.shape[2:] != query.shape[2:]:
        raise ValueError('criss_cross_attention_3d: value must have shape (N, C, T, H, W) with '
                         f'the N, T, H, W of query {tuple(query.shape)}, got '
                         f'{tuple(value.shape)}')
    if query.shape[2] == 1:
        out = criss_cross_attention(query[:, :, 0], key[:, :, 0], value[:, :, 0])
        return out.unsqueeze(2)
    device_type = value.device.type
    if torch.is_autocast_enabled(device_type):
        value = value.to(torch.get_autocast_dtype(device_type))
    # (N, C, T, H, W) -> (N, T, H, W, C) views
    q, k, v = (x.permute(0, 2, 3, 4, 1) for x in (query, key, value))
    with torch.autocast(device_type, enabled=False):
        if _use_traceable_path():
            out = _criss_cross_3d_traceable(q, k, v)
        else:
            out = _CrissCross3dFunction.apply(q, k, v)
    # (N, T, H, W, C) -> (N, C, T, H, W), channels-last-3d strides
    return out.permute(0, 4, 1, 2, 3)
