"""Criss-cross attention (CCNet) as a pure function.

Paper: Huang, Wang, Wei, Huang, Shi, Liu, Huang, "CCNet: Criss-Cross Attention for Semantic
Segmentation", ICCV 2019 / TPAMI 2020, https://arxiv.org/abs/1811.11721.
Official code consulted as reference (not copied): https://github.com/speedinghzl/CCNet
(``cc_attention/functions.py``); mmcv's ``mmcv/ops/cc_attention.py`` was read for the key names.

Shape shorthand: N batch, C' query/key channels, C value channels, H x W spatial size.
Pixel ``u = (h, w)`` attends over its criss-cross set ``Omega_u``: its row (W positions) and its
column (H positions), the pixel itself counted once, so ``H + W - 1`` positions. One softmax
runs over the ``H + W - 1`` energies jointly.

Differences from the official code and from mmcv (same result, different arithmetic):

* The self entry of the column is excluded by overwriting its energy with the most negative
  finite float before the softmax (mmcv *adds* ``-inf``). The pixel's own row entry is always
  present, so no softmax row is ever fully masked and no ``inf - inf`` can appear.
* Energies and the softmax are computed in float32 (float64 for float64 inputs) whatever the
  input dtype; under ``torch.autocast`` or with float16/bfloat16 inputs only the aggregation of
  the values runs in half precision. The energies are ~10% of the attention FLOPs
  (C' = C / 8), so this costs little and keeps ``exp`` and its sum from overflowing.
* Tensors are processed in a channels-last layout (``(N, H, W, C)``): every row and every
  column is then a strided BLAS matrix, so the batched matmuls run without copies. A custom
  autograd function saves only the inputs and the attention map (``N * H * W * (H + W)``
  values); the backward pass is written out by hand (see :class:`_CrissCrossFunction`).
"""
from typing import Optional, Tuple

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

__all__ = ['criss_cross_attention']

Tensor = torch.Tensor


def _accumulate_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype of the energies and the softmax: float32, or float64 for float64 inputs."""
    return torch.promote_types(dtype, torch.float32)


def _energies(q: Tensor,
              k: Tensor,
              dtype: torch.dtype,
              out: Optional[Tensor] = None) -> Tensor:
    """Criss-cross energies of one image, the column's self entry masked.

    Args:
        q (Tensor): Queries of shape (H, W, C'), any strides.
        k (Tensor): Keys of shape (H, W, C'), any strides.
        dtype (torch.dtype): Dtype of the result.
        out (Tensor, optional): Where to write the result, shape (H, W, H + W) of ``dtype``,
            any strides (e.g. a view into a larger buffer). Defaults to None (a new tensor).

    Returns:
        Tensor: Energies of shape (H, W, H + W): ``[..., :H]`` the column (index ``i`` = row
        ``i`` of the pixel's column; the self entry ``i == h`` holds the most negative finite
        value), ``[..., H:]`` the row (index ``j`` = column ``j`` of the pixel's row).
    """
    h, w, _ = q.shape
    q, k = q.to(dtype), k.to(dtype)
    energy = q.new_empty((h, w, h + w)) if out is None else out
    # (H, W, C') @ (H, C', W) -> (H, W, W): e[h, w, j] = q[h, w] . k[h, j]
    torch.bmm(q, k.transpose(1, 2), out=energy[:, :, h:])
    # (W, H, C') @ (W, C', H) -> (W, H, H): e[h, w, i] = q[h, w] . k[i, w], written through
    # the (W, H, H) view of energy[..., :H]
    energy[:, :, :h].transpose(0, 1).copy_(torch.bmm(q.transpose(0, 1), k.permute(1, 2, 0)))
    # (W, H) view of the entries e[h, w, h]: the pixel itself, already counted in its row
    energy[:, :, :h].diagonal(dim1=0, dim2=2).fill_(torch.finfo(dtype).min)
    return energy


def _aggregate(attn: Tensor, value: Tensor, out: Tensor) -> None:
    """Attention-weighted sum over rows and columns of one image, written into ``out``.

    Args:
        attn (Tensor): Weights of shape (H, W, H + W), column part first.
        value (Tensor): Values of shape (H, W, C).
        out (Tensor): Result of shape (H, W, C), contiguous; overwritten.
    """
    h = attn.shape[0]
    # (H, W, W) @ (H, W, C) -> (H, W, C): the row
    torch.bmm(attn[:, :, h:], value, out=out)
    # (W, H, H) @ (W, H, C) -> (W, H, C): the column, added through the (W, H, C) view
    out.transpose(0, 1).add_(torch.bmm(attn[:, :, :h].transpose(0, 1), value.transpose(0, 1)))


def _aggregate_grad_value(attn: Tensor, grad: Tensor, out: Tensor) -> None:
    """Value gradient of :func:`_aggregate` for one image (the transposed aggregation).

    Args:
        attn (Tensor): Weights of shape (H, W, H + W), column part first.
        grad (Tensor): Gradient of the aggregated values, shape (H, W, C).
        out (Tensor): Result of shape (H, W, C); overwritten.
    """
    h = attn.shape[0]
    # (H, W, W)^T @ (H, W, C) -> (H, W, C): the row
    torch.bmm(attn[:, :, h:].transpose(1, 2), grad, out=out)
    # (W, H, H)^T @ (W, H, C) -> (W, H, C): the column, added through the (W, H, C) view
    out.transpose(0, 1).add_(
        torch.bmm(attn[:, :, :h].transpose(0, 1).transpose(1, 2), grad.transpose(0, 1)))


def _attention_grad(grad: Tensor, value: Tensor, out: Tensor) -> None:
    """Gradient of the attention weights of one image: ``grad . value`` at each position.

    Args:
        grad (Tensor): Gradient of the aggregated values, shape (H, W, C).
        value (Tensor): Values of shape (H, W, C).
        out (Tensor): Result of shape (H, W, H + W), column part first; overwritten.
    """
    h = out.shape[0]
    # (H, W, C) @ (H, C, W) -> (H, W, W): the row
    out[:, :, h:] = torch.bmm(grad, value.transpose(1, 2))
    # (W, H, C) @ (W, C, H) -> (W, H, H): the column, written through the (W, H, H) view
    out[:, :, :h].transpose(0, 1).copy_(torch.bmm(grad.transpose(0, 1), value.permute(1, 2, 0)))


def _scatter_energy_grad(grad_e: Tensor, q: Tensor, k: Tensor) -> Tuple[Tensor, Tensor]:
    """Gradients of the queries and keys of one image from the gradient of the energies.

    Args:
        grad_e (Tensor): Gradient of the energies, shape (H, W, H + W), column part first.
        q (Tensor): Queries of shape (H, W, C'), dtype of ``grad_e``.
        k (Tensor): Keys of shape (H, W, C'), dtype of ``grad_e``.

    Returns:
        tuple[Tensor, Tensor]: Gradients of ``q`` and ``k``, each of shape (H, W, C').
    """
    h = grad_e.shape[0]
    # (H, W, W) and (W, H, H) views of the row and column energies' gradients
    g_row, g_col = grad_e[:, :, h:], grad_e[:, :, :h].transpose(0, 1)
    # (H, W, W) @ (H, W, C') -> (H, W, C'), plus (W, H, H) @ (W, H, C') through the view
    grad_q = torch.bmm(g_row, k)
    grad_q.transpose(0, 1).add_(torch.bmm(g_col, k.transpose(0, 1)))
    grad_k = torch.bmm(g_row.transpose(1, 2), q)
    grad_k.transpose(0, 1).add_(torch.bmm(g_col.transpose(1, 2), q.transpose(0, 1)))
    return grad_q, grad_k


class _CrissCrossFunction(torch.autograd.Function):
    """Criss-cross attention on channels-last tensors with a hand-written backward.

    Saves the three inputs (views, no copies) and the attention map of shape
    (N, H, W, H + W) in the values' dtype. Loops over the batch so that only one image's
    float32 energies exist at a time.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        """Forward pass.

        Args:
            ctx (FunctionCtx): Autograd context.
            query (Tensor): Shape (N, H, W, C'), any strides.
            key (Tensor): Shape (N, H, W, C'), any strides.
            value (Tensor): Shape (N, H, W, C), any strides (fastest with unit channel stride).

        Returns:
            Tensor: Aggregated values of shape (N, H, W, C), contiguous.
        """
        n, h, w, c = value.shape
        acc = _accumulate_dtype(value.dtype)
        out = value.new_empty((n, h, w, c))
        attn = value.new_empty((n, h, w, h + w))
        for i in range(n):
            attn[i] = torch.softmax(_energies(query[i], key[i], acc), dim=-1)
            _aggregate(attn[i], value[i], out[i])
        ctx.save_for_backward(query, key, value, attn)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_out: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Backward pass: gradients of the query, key and value.

        Args:
            ctx (FunctionCtx): Autograd context.
            grad_out (Tensor): Gradient of the output, shape (N, H, W, C).

        Returns:
            tuple[Tensor, Tensor, Tensor]: Gradients of shapes (N, H, W, C'), (N, H, W, C'),
            (N, H, W, C), in the inputs' dtypes.
        """
        query, key, value, attn = ctx.saved_tensors
        n, h, w, c = value.shape
        acc = _accumulate_dtype(value.dtype)
        grad_q = query.new_empty(query.shape, dtype=acc)
        grad_k = key.new_empty(key.shape, dtype=acc)
        grad_v = value.new_empty((n, h, w, c))
        for i in range(n):
            # (H, W, C); one image at a time is made contiguous (the incoming gradient is often
            # channels-first), so no full-size copy of the gradient is held
            g = grad_out[i].to(value.dtype).contiguous()
            a, v = attn[i], value[i]
            _aggregate_grad_value(a, g, grad_v[i])
            grad_a = g.new_empty((h, w, h + w), dtype=acc)
            _attention_grad(g, v, grad_a)
            # softmax backward; the masked self entries have a == 0, so their gradient is 0
            a = a.to(acc)
            grad_e = a * (grad_a - (grad_a * a).sum(dim=-1, keepdim=True))
            gq, gk = _scatter_energy_grad(grad_e, query[i].to(acc), key[i].to(acc))
            grad_q[i], grad_k[i] = gq, gk
        return grad_q.to(query.dtype), grad_k.to(key.dtype), grad_v


def _criss_cross_traceable(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """Out-of-place, batched criss-cross attention for tracing, scripting and ONNX export.

    Same arguments, result and arithmetic as :class:`_CrissCrossFunction` (channels-last
    shapes (N, H, W, C') and (N, H, W, C)), built from ``matmul``, ``cat``, ``masked_fill`` and
    ``softmax`` only. The spatial size becomes a constant of the traced graph.
    """
    h = query.shape[1]
    acc = _accumulate_dtype(value.dtype)
    q, k = query.to(acc), key.to(acc)
    # (N, H, W, C') @ (N, H, C', W) -> (N, H, W, W): the row energies
    e_row = torch.matmul(q, k.transpose(-1, -2))
    # (N, W, H, C') @ (N, W, C', H) -> (N, W, H, H) -> (N, H, W, H): the column energies
    e_col = torch.matmul(q.transpose(1, 2), k.permute(0, 2, 3, 1)).transpose(1, 2)
    # (H, 1, H): True at the pixel itself (column index == row of the pixel); built with
    # arange + eq because onnxruntime has no boolean EyeLike kernel
    rows = torch.arange(h, device=query.device)
    self_mask = rows.view(h, 1, 1) == rows.view(1, 1, h)
    e_col = e_col.masked_fill(self_mask, torch.finfo(acc).min)
    # (N, H, W, H + W)
    attn = torch.softmax(torch.cat([e_col, e_row], dim=-1), dim=-1).to(value.dtype)
    # (N, H, W, W) @ (N, H, W, C) -> (N, H, W, C)
    out_row = torch.matmul(attn[..., h:], value)
    # (N, W, H, H) @ (N, W, H, C) -> (N, W, H, C) -> (N, H, W, C)
    out_col = torch.matmul(attn[..., :h].transpose(1, 2), value.transpose(1, 2)).transpose(1, 2)
    return out_row + out_col


def _use_traceable_path() -> bool:
    """Whether a graph is being captured (tracing, ONNX export, ``torch.compile``)."""
    compiling = getattr(torch.compiler, 'is_compiling', lambda: False)()
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or compiling


def criss_cross_attention(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """Criss-cross attention: each pixel's attention-weighted sum over its row and column.

    ``out[:, :, h, w] = sum_{(a, b) in Omega(h, w)} A[h, w, (a, b)] * value[:, :, a, b]`` where
    ``Omega(h, w)`` is row ``h`` plus column ``w`` (the pixel itself once, ``H + W - 1``
    positions) and ``A[h, w] = softmax(query[:, :, h, w] . key[:, :, a, b])`` over
    ``Omega(h, w)``. No ``gamma`` scale and no residual are applied (see
    :class:`~mmseg_fusion.layers.CrissCrossAttention` for the module).

    Any memory format is accepted; channels-last ``value`` (``x.contiguous(memory_format=
    torch.channels_last)``) avoids copies. Under ``torch.autocast`` the values are cast to the
    autocast dtype; energies and softmax always run in float32 (float64 for float64 inputs).
    First-order gradients only (the backward pass is written by hand and is not itself
    differentiable).

    Args:
        query (Tensor): Queries of shape (N, C', H, W).
        key (Tensor): Keys of shape (N, C', H, W).
        value (Tensor): Values of shape (N, C, H, W).

    Returns:
        Tensor: Aggregated values of shape (N, C, H, W) in the values' dtype (or the autocast
        dtype), in channels-last memory format.
    """
    if query.dim() != 4 or key.shape != query.shape:
        raise ValueError('criss_cross_attention: query and key must have the same shape '
                         f'(N, C\', H, W), got {tuple(query.shape)} and {tuple(key.shape)}')
    if value.dim() != 4 or value.shape[0] != query.shape[0] \
            or value.shape[2:] != query.shape[2:]:
        raise ValueError('criss_cross_attention: value must have shape (N, C, H, W) with the '
                         f'N, H, W of query {tuple(query.shape)}, got {tuple(value.shape)}')
    device_type = value.device.type
    if torch.is_autocast_enabled(device_type):
        value = value.to(torch.get_autocast_dtype(device_type))
    # (N, C, H, W) -> (N, H, W, C) views; channels-last inputs give unit channel strides
    q, k, v = (t.permute(0, 2, 3, 1) for t in (query, key, value))
    with torch.autocast(device_type, enabled=False):
        if _use_traceable_path():
            out = _criss_cross_traceable(q, k, v)
        else:
            out = _CrissCrossFunction.apply(q, k, v)
    # (N, H, W, C) -> (N, C, H, W), channels-last strides
    return out.permute(0, 3, 1, 2)
