"""Property-based tests (hypothesis) of every public function of ``mmseg_fusion.functional``.

Every property draws a batch size 1..3, small spatial sizes (one-pixel rows and columns and
odd sizes such as 7x13 are pinned with ``@example``), a seed for the tensors and a precision
mode, then checks the exact output shape (from the docstrings), finiteness, agreement with a
naive reference written from the equations (:mod:`mmseg_fusion.testing`: loops over pixels,
channels or scales), and the invariants of the method.

Precision modes and tolerances (``rtol`` = ``atol`` unless said otherwise):

* ``float64``: against the float64 reference, 1e-10;
* ``float32``: against the float64 reference, 1e-5;
* ``bfloat16``: against the float32 result on the same values, ``rtol`` 3e-2 and ``atol``
  3e-2 times the magnitude of the inputs. Everything runs under
  ``torch.autocast('cpu', dtype=torch.bfloat16)``; the attention functions get float32 tensors,
  the element-wise ones (which autocast leaves alone) bfloat16 tensors and must return
  bfloat16.

Examples are derandomised (the same on every run). ``test_thorough`` (marked ``slow``) runs
every property again with more examples.
"""
import contextlib
import math
from typing import Callable, List, Sequence

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from mmseg_fusion.functional import (
    afa_bi_fusion,
    afa_multi_fusion,
    criss_cross_attention,
    double_attention,
    finish_fusion,
    fuse_scales,
    hma_weights,
    init_fusion,
    progressive_weights,
    scale_space_weights,
    softmax_scale_weights,
    update_fusion,
)
from mmseg_fusion.testing import (
    LAYOUTS,
    naive_criss_cross,
    naive_double_attention,
    naive_hma,
    naive_progressive,
    naive_softmax_weights,
    naive_ssr,
    with_layout,
)

FAST = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
THOROUGH = settings(FAST, max_examples=500)

TOL = {'float64': 1e-10, 'float32': 1e-5}
BF16_TOL = 3e-2

BATCH = st.integers(1, 3)
DIM = st.integers(1, 9)  # hypothesis favours the bounds: one-pixel rows and columns come often
CHANNELS = st.integers(1, 4)
SCALES = st.integers(1, 4)
SEED = st.integers(0, 2**31 - 1)
MODE = st.sampled_from(['float64', 'float32', 'bfloat16'])


# ---------------------------------------------------------------------------------- helpers
pytestmark = pytest.mark.usefixtures('one_thread')


def randn(gen: torch.Generator, *shape: int, scale: float = 1.) -> torch.Tensor:
    """Float64 normal samples of ``shape``."""
    return torch.randn(shape, generator=gen, dtype=torch.float64) * scale


def rand(gen: torch.Generator, *shape: int) -> torch.Tensor:
    """Float64 uniform samples in [0, 1) of ``shape``."""
    return torch.rand(shape, generator=gen, dtype=torch.float64)


def elementwise_dtype(mode: str) -> torch.dtype:
    """Input dtype of the element-wise functions in ``mode``."""
    return {'float64': torch.float64, 'float32': torch.float32,
            'bfloat16': torch.bfloat16}[mode]


def attention_inputs(mode: str, *tensors: torch.Tensor) -> List[torch.Tensor]:
    """Inputs of the attention functions: float64, or float32 (also under bfloat16 autocast)."""
    return [t if mode == 'float64' else t.float() for t in tensors]


def maybe_autocast(mode: str) -> contextlib.AbstractContextManager:
    """bfloat16 autocast in mode ``bfloat16``, else nothing."""
    if mode == 'bfloat16':
        return torch.autocast('cpu', dtype=torch.bfloat16)
    return contextlib.nullcontext()


def check_close(actual: torch.Tensor, reference: torch.Tensor, mode: str,
                float32_result: Callable[[], torch.Tensor], magnitude: float = 1.,
                conditioning: float = 1.) -> None:
    """``actual`` against the float64 ``reference`` (float64, float32) or, in mode
    ``bfloat16``, against ``float32_result()``, the float32 output on the same values.

    ``magnitude`` scales ``atol`` in mode bfloat16; ``conditioning`` (e.g. the size of
    softmax logits, whose rounding moves the result) scales both tolerances in the others.
    """
    assert torch.isfinite(actual).all()
    if mode == 'bfloat16':
        assert_close(actual.float(), float32_result().float(), rtol=BF16_TOL,
                     atol=BF16_TOL * max(magnitude, 1.))
    else:
        tol = TOL[mode] * max(conditioning, 1.)
        assert_close(actual.double(), reference, rtol=tol, atol=tol)


def upcast(tensors: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """float32 copies (bfloat16 inputs: exactly the same values)."""
    return [t.float() for t in tensors]


def resize(x: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Bilinear resize with ``align_corners=False`` (as documented by ``fuse_scales``)."""
    if x.shape[-2:] == size:
        return x
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


PHI = {'abs': abs, 'softplus': lambda v: max(v, 0.) + math.log1p(math.exp(-abs(v))),
       'square': lambda v: v * v}
PHI_ARG = {'abs': 'abs', 'softplus': 'softplus', 'square': torch.square}


# -------------------------------------------------------------------------------------- AFA
AFA_BI = dict(n=BATCH, c=CHANNELS, h=DIM, w=DIM, seed=SEED, mode=MODE)


@FAST
@given(**AFA_BI)
@example(n=1, c=3, h=7, w=13, seed=0, mode='float32')
@example(n=2, c=1, h=1, w=5, seed=1, mode='bfloat16')
def test_afa_bi_fusion(n: int, c: int, h: int, w: int, seed: int, mode: str) -> None:
    """(N, C, H, W) output = pixel loop of ``s (1 - c) x + (1 - s) c y``; bounded by
    ``max(|x|, |y|)``; swapping ``(x, s, c)`` and ``(y, 1 - s, 1 - c)`` changes nothing."""
    gen = torch.Generator().manual_seed(seed)
    x, y, s, ch = randn(gen, n, c, h, w), randn(gen, n, c, h, w), rand(gen, n, 1, h, w), \
        rand(gen, n, c, 1, 1)
    dtype = elementwise_dtype(mode)
    args = [t.to(dtype) for t in (x, y, s, ch)]
    with maybe_autocast(mode):
        out = afa_bi_fusion(*args)
    assert out.shape == (n, c, h, w) and out.dtype == dtype
    xd, yd, sd, cd = (t.double() for t in args)
    ref = torch.empty(n, c, h, w, dtype=torch.float64)
    for b in range(n):
        for k in range(c):
            cv = float(cd[b, k, 0, 0])
            ref[b, k] = sd[b, 0] * (1 - cv) * xd[b, k] + (1 - sd[b, 0]) * cv * yd[b, k]
    check_close(out, ref, mode, lambda: afa_bi_fusion(*upcast(args)), xd.abs().max().item())
    # the weights s (1 - c) of x and (1 - s) c of y: each in [0, 1], their sum <= 1
    one, zero = torch.ones_like(args[0]), torch.zeros_like(args[0])
    w_x, w_y = afa_bi_fusion(one, zero, *args[2:]), afa_bi_fusion(zero, one, *args[2:])
    assert ((w_x >= 0) & (w_y >= 0)).all()
    assert (w_x.double() + w_y.double() <= 1 + TOL.get(mode, BF16_TOL)).all()
    if mode != 'bfloat16':
        tol = TOL[mode]
        bound = torch.maximum(xd.abs(), yd.abs()) * (1 + tol) + tol
        assert (out.double().abs() <= bound).all()
        assert_close(afa_bi_fusion(args[1], args[0], 1 - args[2], 1 - args[3]), out,
                     rtol=tol, atol=tol)


PROGRESSIVE = dict(k=SCALES, n=BATCH, c=CHANNELS, h=DIM, w=DIM, channel=st.booleans(),
                   seed=SEED, mode=MODE)


@FAST
@given(**PROGRESSIVE)
@example(k=3, n=1, c=2, h=7, w=13, channel=False, seed=0, mode='float32')
def test_progressive_weights(k: int, n: int, c: int, h: int, w: int, channel: bool,
                             seed: int, mode: str) -> None:
    """K weights of the input shape = the products written out; each in [0, 1]; the last is
    ``a_K``; ``sum_k A_k + prod_k (1 - a_k) = 1`` (a partition of one)."""
    gen = torch.Generator().manual_seed(seed)
    shape = (n, c, 1, 1) if channel else (n, 1, h, w)
    dtype = elementwise_dtype(mode)
    att = [rand(gen, *shape).to(dtype) for _ in range(k)]
    with maybe_autocast(mode):
        weights = progressive_weights(att)
    assert len(weights) == k
    att64 = [a.double() for a in att]
    refs = naive_progressive(att64)
    for i, (got, ref) in enumerate(zip(weights, refs)):
        assert got.shape == shape and got.dtype == dtype
        check_close(got, ref, mode, lambda i=i: progressive_weights(upcast(att))[i])
        assert (got >= 0).all() and (got <= 1).all()
    assert torch.equal(weights[-1], att[-1])
    if mode != 'bfloat16':
        leftover = torch.prod(torch.stack([1 - a for a in att64]), dim=0)
        assert_close(sum(wt.double() for wt in weights) + leftover, torch.ones(shape).double(),
                     rtol=TOL[mode], atol=TOL[mode])


AFA_MULTI = dict(k=SCALES, n=BATCH, c=CHANNELS, h=DIM, w=DIM, seed=SEED, mode=MODE)


@FAST
@given(**AFA_MULTI)
@example(k=3, n=2, c=2, h=7, w=13, seed=0, mode='float64')
@example(k=2, n=1, c=3, h=9, w=1, seed=1, mode='bfloat16')
def test_afa_multi_fusion(k: int, n: int, c: int, h: int, w: int, seed: int,
                          mode: str) -> None:
    """(N, C, H, W) output = ``sum_k s_k c_k F_k prod_{j>k} (1 - s_j)(1 - c_j)`` (pixel by
    pixel over k and j); the weights ``S_k C_k`` (one-hot features) are in [0, 1] and sum to
    <= 1, so the output is bounded by ``max_k |F_k|``; one input gives ``s c F``."""
    gen = torch.Generator().manual_seed(seed)
    dtype = elementwise_dtype(mode)
    feats = [randn(gen, n, c, h, w).to(dtype) for _ in range(k)]
    spatial = [rand(gen, n, 1, h, w).to(dtype) for _ in range(k)]
    channel = [rand(gen, n, c, 1, 1).to(dtype) for _ in range(k)]
    with maybe_autocast(mode):
        out = afa_multi_fusion(feats, spatial, channel)
    assert out.shape == (n, c, h, w) and out.dtype == dtype
    f64, s64, c64 = ([t.double() for t in ts] for ts in (feats, spatial, channel))
    ref = torch.zeros(n, c, h, w, dtype=torch.float64)
    for i in range(k):
        term = s64[i] * c64[i] * f64[i]
        for j in range(i + 1, k):
            term = term * (1 - s64[j]) * (1 - c64[j])
        ref += term
    check_close(out, ref, mode, lambda: afa_multi_fusion(*map(upcast, (feats, spatial, channel))),
                max(f.abs().max().item() for f in f64))
    weights = [afa_multi_fusion([torch.ones_like(f) if j == i else torch.zeros_like(f)
                                 for j, f in enumerate(feats)], spatial, channel)
               for i in range(k)]
    assert all(((wt >= 0) & (wt <= 1)).all() for wt in weights)
    assert (sum(wt.double() for wt in weights) <= 1 + TOL.get(mode, BF16_TOL)).all()
    bound = torch.stack(f64).abs().amax(dim=0)
    if mode != 'bfloat16':
        assert (out.double().abs() <= bound * (1 + TOL[mode]) + TOL[mode]).all()
    assert_close(afa_multi_fusion(feats[:1], spatial[:1], channel[:1]),
                 spatial[0] * channel[0] * feats[0])


# --------------------------------------------------------------------- criss-cross attention
CRISS_CROSS = dict(n=BATCH, cq=CHANNELS, c=CHANNELS, h=DIM, w=DIM,
                   energy_scale=st.sampled_from([0.5, 1.0, 3.0]),
                   layout=st.sampled_from(LAYOUTS), seed=SEED, mode=MODE)


@FAST
@given(**CRISS_CROSS)
@example(n=1, cq=2, c=3, h=7, w=13, energy_scale=1.0, layout='contiguous', seed=0,
         mode='float32')
@example(n=2, cq=1, c=2, h=1, w=6, energy_scale=3.0, layout='channels_last', seed=1,
         mode='bfloat16')
@example(n=1, cq=3, c=1, h=5, w=1, energy_scale=1.0, layout='strided', seed=2, mode='float64')
def test_criss_cross_attention(n: int, cq: int, c: int, h: int, w: int, energy_scale: float,
                               layout: str, seed: int, mode: str) -> None:
    """(N, C, H, W) channels-last output = per-pixel softmax over row + column (self once),
    whatever the inputs' memory layout; each output is a convex combination of values
    (constant values are reproduced, outputs lie in the per-image value range); a constant
    shift of the keys changes nothing."""
    gen = torch.Generator().manual_seed(seed)
    q, k = randn(gen, n, cq, h, w, scale=energy_scale), randn(gen, n, cq, h, w,
                                                              scale=energy_scale)
    v = randn(gen, n, c, h, w)
    q, k, v = (with_layout(t, layout) for t in attention_inputs(mode, q, k, v))
    with maybe_autocast(mode):
        out = criss_cross_attention(q, k, v)
    assert out.shape == (n, c, h, w)
    assert out.dtype == (torch.bfloat16 if mode == 'bfloat16' else v.dtype)
    assert out.is_contiguous(memory_format=torch.channels_last)
    check_close(out, naive_criss_cross(q, k, v), mode, lambda: criss_cross_attention(q, k, v),
                v.abs().max().item())
    if mode == 'bfloat16':
        return
    tol = TOL[mode]
    lo = v.amin(dim=(2, 3), keepdim=True) - tol
    hi = v.amax(dim=(2, 3), keepdim=True) + tol
    assert ((out >= lo) & (out <= hi)).all()
    const = torch.ones_like(v) * v[:, :, :1, :1]
    assert_close(criss_cross_attention(q, k, const), const, rtol=tol, atol=tol)
    # q . (k_i + b) = q . k_i + q . b: a constant along every softmax row
    shift = randn(gen, n, cq, 1, 1).to(k.dtype)
    assert_close(criss_cross_attention(q, k + shift, v), out, rtol=10 * tol, atol=10 * tol)


# ------------------------------------------------------------------------- double attention
DOUBLE_ATTENTION = dict(n=BATCH, m=CHANNELS, k=CHANNELS, h=DIM, w=DIM, seed=SEED, mode=MODE)


@FAST
@given(**DOUBLE_ATTENTION)
@example(n=1, m=2, k=3, h=7, w=13, seed=0, mode='float32')
@example(n=3, m=1, k=1, h=1, w=1, seed=1, mode='float64')
@example(n=2, m=3, k=2, h=1, w=8, seed=2, mode='bfloat16')
def test_double_attention(n: int, m: int, k: int, h: int, w: int, seed: int,
                          mode: str) -> None:
    """(N, m, H, W) output = gather/distribute loops of the paper; a convex combination of the
    features (in their per-sample range); shifting B per map or V per position changes
    nothing (the softmax dimensions)."""
    gen = torch.Generator().manual_seed(seed)
    a, b, v = randn(gen, n, m, h, w), randn(gen, n, k, h, w, scale=2.), \
        randn(gen, n, k, h, w, scale=2.)
    a, b, v = attention_inputs(mode, a, b, v)
    with maybe_autocast(mode):
        out = double_attention(a, b, v)
    # under autocast the dtype is einsum's choice (no bmm, float32, when n == 1)
    assert out.shape == (n, m, h, w) and (mode == 'bfloat16' or out.dtype == a.dtype)
    check_close(out, naive_double_attention(a, b, v).reshape(n, m, h, w), mode,
                lambda: double_attention(a, b, v), a.abs().max().item())
    if mode == 'bfloat16':
        return
    tol = TOL[mode]
    lo, hi = a.amin(dim=(2, 3), keepdim=True) - tol, a.amax(dim=(2, 3), keepdim=True) + tol
    assert ((out >= lo) & (out <= hi)).all()
    b_shift, v_shift = randn(gen, n, k, 1, 1).to(b.dtype), randn(gen, n, 1, h, w).to(v.dtype)
    assert_close(double_attention(a, b + b_shift, v + v_shift), out, rtol=10 * tol,
                 atol=10 * tol)


# ----------------------------------------------------------------------------- scale fusion
SSR = dict(s=SCALES, n=BATCH, h=DIM, w=DIM, phi=st.sampled_from(sorted(PHI)),
           terminal=st.booleans(), magnitude=st.sampled_from([0.1, 1., 10., 1e4]), seed=SEED,
           mode=MODE)


@FAST
@given(**SSR)
@example(s=3, n=1, h=7, w=13, phi='abs', terminal=False, magnitude=1., seed=0, mode='float64')
@example(s=4, n=2, h=1, w=3, phi='softplus', terminal=True, magnitude=1e4, seed=1,
         mode='bfloat16')
def test_scale_space_weights(s: int, n: int, h: int, w: int, phi: str, terminal: bool,
                             magnitude: float, seed: int, mode: str) -> None:
    """S weights (N, 1, h, w) in the densities' dtype = the per-pixel transmittance loop;
    each >= 0; their sum is ``1 - exp(-sum phi)`` <= 1, or exactly 1 when ``terminal``;
    finite for densities up to 1e4."""
    gen = torch.Generator().manual_seed(seed)
    dtype = elementwise_dtype(mode)
    dens = [randn(gen, n, 1, h, w, scale=magnitude).to(dtype) for _ in range(s)]
    with maybe_autocast(mode):
        weights = scale_space_weights(dens, phi=PHI_ARG[phi], terminal=terminal)
    refs = naive_ssr([d.double() for d in dens], PHI[phi], terminal)
    assert len(weights) == s
    for i, (got, ref) in enumerate(zip(weights, refs)):
        assert got.shape == (n, 1, h, w) and got.dtype == dtype
        check_close(got, ref, mode, lambda i=i: scale_space_weights(
            upcast(dens), phi=PHI_ARG[phi], terminal=terminal)[i])
        assert (got >= 0).all()
    total = sum(wt.double() for wt in weights)
    tol = TOL.get(mode, BF16_TOL)
    assert (total <= 1 + tol).all()
    if terminal:
        assert_close(total, torch.ones_like(total), rtol=tol, atol=tol)
    elif mode != 'bfloat16':
        phis = [torch.tensor([PHI[phi](float(t)) for t in d.flatten()], dtype=torch.float64)
                for d in dens]
        expected = 1 - torch.exp(-sum(phis)).view(n, 1, h, w)
        assert_close(total, expected, rtol=tol, atol=tol)


WEIGHTS = dict(s=SCALES, n=BATCH, h=DIM, w=DIM, magnitude=st.sampled_from([0.1, 1., 10., 1e4]),
               seed=SEED, mode=MODE)


@FAST
@given(**WEIGHTS)
@example(s=3, n=1, h=7, w=13, magnitude=1., seed=0, mode='float32')
@example(s=2, n=3, h=5, w=1, magnitude=1e4, seed=1, mode='bfloat16')
def test_hma_weights(s: int, n: int, h: int, w: int, magnitude: float, seed: int,
                     mode: str) -> None:
    """S weights (N, 1, h, w) = NVIDIA's sigmoid recursion; each in [0, 1]; they sum to 1."""
    gen = torch.Generator().manual_seed(seed)
    dtype = elementwise_dtype(mode)
    logits = [randn(gen, n, 1, h, w, scale=magnitude).to(dtype) for _ in range(s)]
    with maybe_autocast(mode):
        weights = hma_weights(logits)
    assert len(weights) == s
    for i, (got, ref) in enumerate(zip(weights, naive_hma(logits))):
        assert got.shape == (n, 1, h, w) and got.dtype == dtype
        check_close(got, ref, mode, lambda i=i: hma_weights(upcast(logits))[i])
        assert ((got >= 0) & (got <= 1)).all()
    tol = TOL.get(mode, BF16_TOL)
    total = sum(wt.double() for wt in weights)
    assert_close(total, torch.ones_like(total), rtol=tol, atol=tol)


@FAST
@given(**WEIGHTS)
@example(s=3, n=1, h=7, w=13, magnitude=1., seed=0, mode='float64')
@example(s=4, n=2, h=1, w=1, magnitude=1e4, seed=1, mode='bfloat16')
def test_softmax_scale_weights(s: int, n: int, h: int, w: int, magnitude: float, seed: int,
                               mode: str) -> None:
    """S weights (N, 1, h, w) = ``exp(y_i) / sum_j exp(y_j)`` per pixel; each in [0, 1]; they
    sum to 1; adding one map to every score changes nothing."""
    gen = torch.Generator().manual_seed(seed)
    dtype = elementwise_dtype(mode)
    scores = [randn(gen, n, 1, h, w, scale=magnitude).to(dtype) for _ in range(s)]
    with maybe_autocast(mode):
        weights = softmax_scale_weights(scores)
    assert len(weights) == s
    for i, (got, ref) in enumerate(zip(weights, naive_softmax_weights(scores))):
        assert got.shape == (n, 1, h, w) and got.dtype == dtype
        check_close(got, ref, mode, lambda i=i: softmax_scale_weights(upcast(scores))[i])
        assert ((got >= 0) & (got <= 1)).all()
    tol = TOL.get(mode, BF16_TOL)
    total = sum(wt.double() for wt in weights)
    assert_close(total, torch.ones_like(total), rtol=tol, atol=tol)
    if mode != 'bfloat16':
        # y + shift is rounded at the magnitude of y: weights move by about that much
        shift = randn(gen, n, 1, h, w).to(dtype)
        for got, shifted in zip(weights, softmax_scale_weights([t + shift for t in scores])):
            assert_close(shifted, got, rtol=tol, atol=10 * tol * max(magnitude, 1.))


FUSE = dict(method=st.sampled_from(['ssr', 'hma', 'softmax', 'mean', 'max']), s=SCALES,
            n=BATCH, c=CHANNELS, h=DIM, w=DIM, dh=DIM, dw=DIM, phi=st.sampled_from(sorted(PHI)),
            terminal=st.booleans(), magnitude=st.sampled_from([2., 1e4]), seed=SEED, mode=MODE)


def reference_weights(method: str, dens: Sequence[torch.Tensor], size: torch.Size, phi: str,
                      terminal: bool) -> List[torch.Tensor]:
    """Float64 weights of ``fuse_scales`` at the logits size, from the naive references."""
    dens = [d.double() for d in dens]
    if method == 'ssr':
        return [resize(a, size) for a in naive_ssr(dens, PHI[phi], terminal)]
    if method == 'hma':
        return [resize(a, size) for a in naive_hma(dens)]
    # softmax: the scores are resized before the softmax
    return naive_softmax_weights([resize(d, size) for d in dens])


@FAST
@given(**FUSE)
@example(method='ssr', s=3, n=1, c=2, h=7, w=13, dh=3, dw=5, phi='abs', terminal=False,
         magnitude=2., seed=0, mode='float64')
@example(method='softmax', s=3, n=2, c=3, h=1, w=9, dh=1, dw=9, phi='abs', terminal=False,
         magnitude=1e4, seed=1, mode='float32')
@example(method='hma', s=2, n=1, c=1, h=9, w=1, dh=4, dw=1, phi='abs', terminal=True,
         magnitude=2., seed=2, mode='bfloat16')
def test_fuse_scales_and_streaming(method: str, s: int, n: int, c: int, h: int, w: int,
                                   dh: int, dw: int, phi: str, terminal: bool, magnitude: float,
                                   seed: int, mode: str) -> None:
    """(N, C, H, W) output in the logits' dtype = ``sum_i w_i p_i`` with the naive weights
    resized to H x W (mean, max: per pixel over scales); init/update/finish one scale at a
    time equals the one-shot call, and the streamed SSR/HMA weights are the final ones;
    HMA/softmax/mean are convex combinations (in the per-pixel range of the logits), SSR is
    bounded by ``max_i |p_i|``, constant logits are reproduced by hma/softmax/mean/max.
    Densities up to 1e4 (the float tolerances grow with them: softmax logits)."""
    gen = torch.Generator().manual_seed(seed)
    dtype = elementwise_dtype(mode)
    logits = [randn(gen, n, c, h, w, scale=3.).to(dtype) for _ in range(s)]
    dens = [randn(gen, n, 1, dh, dw, scale=magnitude).to(dtype) for _ in range(s)]
    kwargs = dict(method=method, phi=PHI_ARG[phi], terminal=terminal)
    with maybe_autocast(mode):
        out = fuse_scales(logits, dens, **kwargs)
    assert out.shape == (n, c, h, w) and out.dtype == dtype
    p64 = torch.stack([p.double() for p in logits])
    if method in ('mean', 'max'):
        ref = p64.mean(dim=0) if method == 'mean' else p64.amax(dim=0)
        # the densities are ignored
        assert torch.equal(fuse_scales(logits, None, **kwargs), out)
    else:
        weights = reference_weights(method, dens, (h, w), phi, terminal)
        ref = sum(a * p for a, p in zip(weights, p64))
    check_close(out, ref, mode, lambda: fuse_scales(upcast(logits), upcast(dens), **kwargs),
                p64.abs().max().item(), magnitude)

    state = init_fusion(method, PHI_ARG[phi], terminal)
    streamed = []
    for i, (p, d) in enumerate(zip(logits, dens)):
        weight = update_fusion(state, p, d, last=i == s - 1,
                               return_weight=method in ('ssr', 'hma'))
        streamed.append(weight)
    assert torch.equal(finish_fusion(state), out)
    tol = TOL.get(mode, BF16_TOL)
    if method in ('ssr', 'hma'):
        one_shot = (hma_weights(dens) if method == 'hma' else
                    scale_space_weights(dens, PHI_ARG[phi], terminal))
        for got, full in zip(streamed, one_shot):
            assert got.shape == (n, 1, h, w) and got.dtype == dtype
            assert_close(got.double(), resize(full.double(), (h, w)), rtol=tol, atol=tol)
    if mode == 'bfloat16':
        return
    # bounds up to rounding of values of magnitude ``mag``
    mag = tol * max(p64.abs().max().item(), 1.)
    if method in ('hma', 'softmax', 'mean', 'max') or terminal:
        assert (out.double() >= p64.amin(dim=0) - mag).all()
        assert (out.double() <= p64.amax(dim=0) + mag).all()
        const = [logits[0]] * s
        assert_close(fuse_scales(const, dens, **kwargs), logits[0], rtol=tol, atol=mag)
    else:
        assert (out.double().abs() <= p64.abs().amax(dim=0) + mag).all()


# ------------------------------------------------------------------ more examples, marked slow
PROPERTIES = [
    (test_afa_bi_fusion, AFA_BI),
    (test_progressive_weights, PROGRESSIVE),
    (test_afa_multi_fusion, AFA_MULTI),
    (test_criss_cross_attention, CRISS_CROSS),
    (test_double_attention, DOUBLE_ATTENTION),
    (test_scale_space_weights, SSR),
    (test_hma_weights, WEIGHTS),
    (test_softmax_scale_weights, WEIGHTS),
    (test_fuse_scales_and_streaming, FUSE),
]


@pytest.mark.slow
@pytest.mark.parametrize('test, strategies', PROPERTIES,
                         ids=[t.__name__[len('test_'):] for t, _ in PROPERTIES])
def test_thorough(test: Callable, strategies: dict) -> None:
    """Every property above with THOROUGH's example count."""
    THOROUGH(given(**strategies)(test.hypothesis.inner_test))()
