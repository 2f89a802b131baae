"""Property-based tests (hypothesis) of every layer of ``mmseg_fusion.layers``.

Every property draws a batch size 1..3, small spatial sizes (one-pixel rows and columns and
odd sizes such as 7x13 are pinned with ``@example``), the layer's hyper-parameters, a seed for
random weights, BatchNorm statistics and inputs, and a precision mode. Layers run in eval mode
(BatchNorm uses its running statistics). Checked: the exact output shape (from the
docstrings), finiteness, agreement with a reference written from the equations
(:mod:`mmseg_fusion.testing`: convolutions as sums of shifted per-pixel products, BatchNorm
from its formula, attention from its softmaxes), the layer's invariants, and the eval-mode
invariants: two calls give the same bits and every sample's output does not depend on the rest
of the batch.

Precision modes and tolerances (``rtol`` = ``atol`` unless said otherwise):

* ``float64`` (weights and inputs): against the float64 reference, 1e-10;
* ``float32``: against the float64 reference on the same weights, 1e-5 (batch independence:
  the same);
* ``bfloat16``: float32 weights and inputs under ``torch.autocast('cpu',
  dtype=torch.bfloat16)``, against the float32 result: ``rtol`` 5e-2 and ``atol`` 5e-2 times the
  magnitude of the inputs and outputs. Exceptions: the EM iterations (``em_iterations``, and
  ``EMAttention`` with more than one stage) amplify the rounding near ties, so there only
  shapes, finiteness and the invariants (responsibilities sum to 1, unit bases, outputs of norm
  <= 1) are checked, within 5e-2.

Examples are derandomised (the same on every run). ``test_thorough`` (marked ``slow``) runs
every property again with more examples.
"""
import contextlib
from typing import Callable, List, Optional, Sequence

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from mmseg_fusion.layers import (
    AFF,
    IAFF,
    MSCAM,
    BiAFA,
    ChannelAttention,
    CrissCrossAttention,
    DoubleAttention,
    EMAttention,
    MultiAFA,
    SpatialAttention,
    em_iterations,
)
from mmseg_fusion.testing import (
    LAYOUTS,
    dense_criss_cross,
    naive_channel,
    naive_conv2d,
    naive_conv_module,
    naive_em,
    naive_mscam,
    naive_spatial,
    randomise,
    with_layout,
)

FAST = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
THOROUGH = settings(FAST, max_examples=300)

# MS-CAM keeps the official conv bias before its BatchNorm; mmcv warns about it
pytestmark = pytest.mark.filterwarnings('ignore:Unnecessary conv bias before batch')

TOL = {'float64': 1e-10, 'float32': 1e-5}
BF16_TOL = 5e-2

BATCH = st.integers(1, 3)
DIM = st.integers(1, 9)  # hypothesis favours the bounds: one-pixel rows and columns come often
CHANNELS = st.integers(1, 4)
SEED = st.integers(0, 2**31 - 1)
MODE = st.sampled_from(['float64', 'float32', 'bfloat16'])


# ---------------------------------------------------------------------------------- helpers
pytestmark = pytest.mark.usefixtures('one_thread')


def dtype_of(mode: str) -> torch.dtype:
    """Dtype of the weights and inputs in ``mode`` (float32 for bfloat16 autocast)."""
    return torch.float64 if mode == 'float64' else torch.float32


def inputs(seed: int, mode: str, *shapes: Sequence[int]) -> List[torch.Tensor]:
    """Normal inputs of ``shapes`` in the mode's dtype (float32 for bfloat16 autocast)."""
    gen = torch.Generator().manual_seed(seed + 1)
    dtype = dtype_of(mode)
    return [torch.randn(tuple(s), generator=gen, dtype=torch.float64).to(dtype) for s in shapes]


def run(layer: Callable, mode: str, *args) -> torch.Tensor:
    """``layer(*args)`` without gradient, under bfloat16 autocast in mode ``bfloat16``."""
    ctx = (torch.autocast('cpu', dtype=torch.bfloat16) if mode == 'bfloat16'
           else contextlib.nullcontext())
    with ctx, torch.no_grad():
        return layer(*args)


def check_layer(layer: Callable, args: Sequence, mode: str, shape: Sequence[int],
                reference: Callable[[], torch.Tensor], bf16_close: bool = True) -> torch.Tensor:
    """Shape, finiteness, reference and eval-mode invariants of ``layer(*args)``.

    ``args`` hold tensors of batch size N first or lists of them; ``reference()`` computes the
    float64 reference (float64, float32 modes). ``bf16_close=False``: in mode bfloat16, shape
    and finiteness only. Returns the output.
    """
    out = run(layer, mode, *args)
    assert out.shape == tuple(shape)
    assert torch.isfinite(out).all()
    flat = [t for a in args for t in (a if isinstance(a, (list, tuple)) else [a])]
    if mode == 'bfloat16':
        if not bf16_close:
            return out
        full = run(layer, 'float32', *args)
        magnitude = max([full.abs().max().item(), 1.] + [t.abs().max().item() for t in flat])
        assert_close(out.float(), full, rtol=BF16_TOL, atol=BF16_TOL * magnitude)
        return out
    tol = TOL[mode]
    assert_close(out.double(), reference(), rtol=tol, atol=tol)
    # eval mode: deterministic, and each sample is independent of the rest of the batch
    assert torch.equal(run(layer, mode, *args), out)
    for i in range(out.shape[0]):
        alone = [a[i:i + 1] if torch.is_tensor(a) else [t[i:i + 1] for t in a] for a in args]
        assert_close(run(layer, mode, *alone), out[i:i + 1], rtol=tol, atol=tol)
    return out


# --------------------------------------------------------------------------------------- AFA
SPATIAL = dict(n=BATCH, c=CHANNELS, mid=CHANNELS, out=st.integers(1, 2), h=DIM, w=DIM,
               kernel=st.sampled_from([1, 3]),
               activation=st.sampled_from(['sigmoid', 'abs', None]), seed=SEED,
               mode=MODE)


@FAST
@given(**SPATIAL)
@example(n=2, c=3, mid=2, out=1, h=7, w=13, kernel=3, activation='sigmoid', seed=0,
         mode='float32')
@example(n=1, c=2, mid=3, out=2, h=1, w=5, kernel=3, activation='abs', seed=1, mode='float64')
@example(n=3, c=1, mid=1, out=1, h=6, w=1, kernel=3, activation=None, seed=2, mode='bfloat16')
def test_spatial_attention(n: int, c: int, mid: int, out: int, h: int, w: int, kernel: int,
                           activation: Optional[str], seed: int, mode: str) -> None:
    """(N, out_channels, H, W) map = conv-BN-ReLU x2, 1x1 conv, activation; sigmoid maps in
    [0, 1], abs and relu maps >= 0."""
    sa = randomise(SpatialAttention(c, out, mid, activation, kernel), seed, dtype_of(mode))
    (x, ) = inputs(seed, mode, (n, c, h, w))
    att = check_layer(sa, [x], mode, (n, out, h, w), lambda: naive_spatial(x, sa))
    if activation == 'sigmoid':
        assert ((att >= 0) & (att <= 1)).all()
    elif activation in ('abs', 'relu'):
        assert (att >= 0).all()


CHANNEL = dict(n=BATCH, c=CHANNELS, out=st.integers(1, 8), reduction=st.integers(1, 8), h=DIM,
               w=DIM, seed=SEED, mode=MODE)


@FAST
@given(**CHANNEL)
@example(n=2, c=3, out=4, reduction=2, h=7, w=13, seed=0, mode='float32')
@example(n=1, c=4, out=2, reduction=2, h=1, w=1, seed=1, mode='bfloat16')
def test_channel_attention(n: int, c: int, out: int, reduction: int, h: int, w: int, seed: int,
                           mode: str) -> None:
    """(N, out_channels, 1, 1) weights in [0, 1] = sigmoid of the shared MLP on the average-
    and max-pooled features (pooled by hand, per sample)."""
    reduction = min(reduction, out)  # the hidden layer has out_channels // reduction >= 1
    ca = randomise(ChannelAttention(c, out, reduction), seed, dtype_of(mode))
    (x, ) = inputs(seed, mode, (n, c, h, w))
    att = check_layer(ca, [x], mode, (n, out, 1, 1), lambda: naive_channel(x, ca))
    assert ((att >= 0) & (att <= 1)).all()


AFA = dict(n=BATCH, c=st.integers(1, 6), reduction=st.integers(1, 3), k=st.integers(1, 3),
           h=DIM, w=DIM, seed=SEED, mode=MODE)


@FAST
@given(**AFA)
@example(n=2, c=4, reduction=2, k=2, h=7, w=13, seed=0, mode='float64')
@example(n=1, c=3, reduction=3, k=3, h=1, w=4, seed=1, mode='bfloat16')
def test_bi_and_multi_afa(n: int, c: int, reduction: int, k: int, h: int, w: int, seed: int,
                          mode: str) -> None:
    """BiAFA: (N, C, H, W) = ``s (1 - c) x + (1 - s) c y`` with ``s = SA(x)``, ``c = CA(y)``,
    bounded by ``max(|x|, |y|)``. MultiAFA over K inputs: ``sum_k S_k C_k F_k`` with the
    progressive products written out, bounded by ``max_k |F_k|``."""
    reduction = min(reduction, c)
    bi = randomise(BiAFA(c, reduction), seed, dtype_of(mode))
    multi = randomise(MultiAFA(c, reduction), seed + 1, dtype_of(mode))
    x, y, *feats = inputs(seed, mode, *[(n, c, h, w)] * (2 + k))

    def bi_reference() -> torch.Tensor:
        s = naive_spatial(x, bi.sa)
        ch = naive_channel(y, bi.ca)
        return s * (1 - ch) * x.double() + (1 - s) * ch * y.double()

    def multi_reference() -> torch.Tensor:
        s = [naive_spatial(f, multi.sa) for f in feats]
        ch = [naive_channel(f, multi.ca) for f in feats]
        total = 0
        for i in range(k):
            term = s[i] * ch[i] * feats[i].double()
            for j in range(i + 1, k):
                term = term * (1 - s[j]) * (1 - ch[j])
            total = total + term
        return total

    fused = check_layer(bi, [x, y], mode, (n, c, h, w), bi_reference)
    fused_k = check_layer(multi, [feats], mode, (n, c, h, w), multi_reference)
    if mode != 'bfloat16':
        tol = TOL[mode]
        assert (fused.abs() <= torch.maximum(x.abs(), y.abs()) * (1 + tol) + tol).all()
        bound = torch.stack(feats).abs().amax(dim=0)
        assert (fused_k.abs() <= bound * (1 + tol) + tol).all()


# ------------------------------------------------------------------------ MS-CAM, AFF, iAFF
MSCAM_CASES = dict(n=BATCH, reduction=st.integers(1, 2), hidden=st.integers(1, 3), h=DIM,
                   w=DIM, scale=st.sampled_from([1.0, 2.0]), seed=SEED, mode=MODE)


@FAST
@given(**MSCAM_CASES)
@example(n=2, reduction=2, hidden=2, h=7, w=13, scale=2.0, seed=0, mode='float32')
@example(n=1, reduction=1, hidden=1, h=1, w=1, scale=1.0, seed=1, mode='float64')
@example(n=3, reduction=2, hidden=3, h=8, w=1, scale=2.0, seed=2, mode='bfloat16')
def test_mscam_aff_iaff(n: int, reduction: int, hidden: int, h: int, w: int, scale: float,
                        seed: int, mode: str) -> None:
    """MSCAM: ``M(X)`` (N, C, H, W) in [0, 1] = ``sigmoid(L(X) + G(GAP(X)))``, forward is
    ``X M(X)``. AFF: ``scale (X M + Y (1 - M))``, ``M = M(X + Y)``; divided by ``scale`` it lies
    between X and Y; AFF(X, X) = scale X. iAFF: the two-stage formula; between X and Y;
    iAFF(X, X) = X."""
    c = reduction * hidden
    mscam = randomise(MSCAM(c, reduction), seed, dtype_of(mode))
    aff = randomise(AFF(c, reduction, scale), seed + 1, dtype_of(mode))
    iaff = randomise(IAFF(c, reduction), seed + 2, dtype_of(mode))
    x, y = inputs(seed, mode, (n, c, h, w), (n, c, h, w))
    x64, y64 = x.double(), y.double()
    att = check_layer(mscam.attention, [x], mode, (n, c, h, w), lambda: naive_mscam(x, mscam))
    assert ((att >= 0) & (att <= 1)).all()
    check_layer(mscam, [x], mode, (n, c, h, w), lambda: x64 * naive_mscam(x, mscam))

    def aff_reference() -> torch.Tensor:
        m = naive_mscam(x64 + y64, aff.att)
        return scale * (x64 * m + y64 * (1 - m))

    def iaff_reference() -> torch.Tensor:
        w1 = naive_mscam(x64 + y64, iaff.att1)
        w2 = naive_mscam(x64 * w1 + y64 * (1 - w1), iaff.att2)
        return x64 * w2 + y64 * (1 - w2)

    fused = check_layer(aff, [x, y], mode, (n, c, h, w), aff_reference)
    fused_i = check_layer(iaff, [x, y], mode, (n, c, h, w), iaff_reference)
    if mode == 'bfloat16':
        return
    tol = TOL[mode]
    slack = tol * (1 + torch.maximum(x.abs(), y.abs()))
    lo, hi = torch.minimum(x, y) - slack, torch.maximum(x, y) + slack
    assert ((fused / scale >= lo) & (fused / scale <= hi)).all()
    assert ((fused_i >= lo) & (fused_i <= hi)).all()
    assert_close(run(aff, mode, x, x), scale * x, rtol=tol, atol=tol)
    assert_close(run(iaff, mode, x, x), x, rtol=tol, atol=tol)


# --------------------------------------------------------------------- criss-cross attention
CRISS_CROSS = dict(n=BATCH, c=st.sampled_from([8, 16]), h=DIM, w=DIM,
                   gamma=st.sampled_from([0.0, 0.7, -1.5]), layout=st.sampled_from(LAYOUTS),
                   seed=SEED, mode=MODE)


@FAST
@given(**CRISS_CROSS)
@example(n=2, c=8, h=7, w=13, gamma=0.7, layout='contiguous', seed=0, mode='float32')
@example(n=1, c=16, h=1, w=6, gamma=-1.5, layout='transposed', seed=1, mode='float64')
@example(n=3, c=8, h=5, w=1, gamma=0.7, layout='channels_last', seed=2, mode='bfloat16')
def test_criss_cross_attention(n: int, c: int, h: int, w: int, gamma: float, layout: str,
                               seed: int, mode: str) -> None:
    """(N, C, H, W) contiguous output, whatever the input's memory layout, =
    ``x + gamma * CCA(W_v x + b_v)`` with CCA a full attention masked to the pixel's row and
    column (the value projection applied before the aggregation, as in mmcv); ``gamma = 0`` is
    the identity."""
    layer = randomise(CrissCrossAttention(c), seed, dtype_of(mode))
    layer.gamma.scale.data.fill_(gamma)
    # energies of order 1 (std 0.5 weights give up to ~20, where the bfloat16 rounding of the
    # autocast projections alone moves the softmax by several percent)
    layer.query_conv.weight.data.mul_(0.25)
    layer.key_conv.weight.data.mul_(0.25)
    (x, ) = inputs(seed, mode, (n, c, h, w))
    x = with_layout(x, layout)

    def reference() -> torch.Tensor:
        q = naive_conv2d(x, layer.query_conv.weight, layer.query_conv.bias)
        k = naive_conv2d(x, layer.key_conv.weight, layer.key_conv.bias)
        v = naive_conv2d(x, layer.value_conv.weight, layer.value_conv.bias)
        return x.double() + gamma * dense_criss_cross(q, k, v)

    out = check_layer(layer, [x], mode, (n, c, h, w), reference)
    assert out.is_contiguous()
    if gamma == 0 and mode != 'bfloat16':
        assert torch.equal(out, x)


# ------------------------------------------------------------------------- double attention
DOUBLE = dict(n=BATCH, c=CHANNELS, m=CHANNELS, k=CHANNELS, h=DIM, w=DIM,
              residual=st.booleans(), norm=st.booleans(), seed=SEED, mode=MODE)


@FAST
@given(**DOUBLE)
@example(n=2, c=3, m=2, k=3, h=7, w=13, residual=True, norm=False, seed=0, mode='float32')
@example(n=1, c=2, m=1, k=1, h=1, w=1, residual=False, norm=True, seed=1, mode='float64')
@example(n=3, c=4, m=2, k=2, h=1, w=9, residual=True, norm=True, seed=2, mode='bfloat16')
def test_double_attention(n: int, c: int, m: int, k: int, h: int, w: int, residual: bool,
                          norm: bool, seed: int, mode: str) -> None:
    """Output of the input's shape = ``[X +] expand(A softmax_L(B)^T softmax_n(V))`` with the
    1x1 convs and both softmaxes written out."""
    norm_cfg = dict(type='BN') if norm else None
    block = randomise(DoubleAttention(c, m, k, residual, norm_cfg=norm_cfg), seed, dtype_of(mode))
    (x, ) = inputs(seed, mode, (n, c, h, w))

    def reference() -> torch.Tensor:
        a = naive_conv2d(x, block.conv_a.weight, block.conv_a.bias).flatten(2)
        b = naive_conv2d(x, block.conv_b.weight, block.conv_b.bias).flatten(2)
        v = naive_conv2d(x, block.conv_v.weight, block.conv_v.bias).flatten(2)
        gather = torch.exp(b) / torch.exp(b).sum(dim=2, keepdim=True)  # over positions
        distribute = torch.exp(v) / torch.exp(v).sum(dim=1, keepdim=True)  # over the maps
        # (N, m, n) descriptors, then (N, m, L)
        z = torch.einsum('nml,nkl->nmk', a, gather)
        z = torch.einsum('nmk,nkl->nml', z, distribute).view(n, m, h, w)
        out = naive_conv_module(z, block.expand)
        return x.double() + out if residual else out

    check_layer(block, [x], mode, (n, c, h, w), reference)


# ------------------------------------------------------------------------------ EM attention
EM = dict(n=BATCH, c=CHANNELS, bases=CHANNELS, stages=st.integers(1, 3), h=DIM, w=DIM,
          official=st.booleans(), per_sample=st.booleans(), seed=SEED, mode=MODE)


@FAST
@given(**EM)
@example(n=2, c=3, bases=2, stages=3, h=7, w=13, official=False, per_sample=False, seed=0,
         mode='float64')
@example(n=1, c=4, bases=3, stages=1, h=1, w=1, official=True, per_sample=True, seed=1,
         mode='float32')
@example(n=3, c=2, bases=4, stages=2, h=9, w=1, official=False, per_sample=True, seed=2,
         mode='bfloat16')
def test_em_iterations(n: int, c: int, bases: int, stages: int, h: int, w: int, official: bool,
                       per_sample: bool, seed: int, mode: str) -> None:
    """Bases (N, C, K) and responsibilities (N, L, K) = the EM loops; responsibilities >= 0
    summing to 1 over K; every basis of l2 norm 1 (``1 / (1 + 1e-6 / ||.||)`` when
    ``official``); initial bases (1, C, K) broadcast like (N, C, K) copies; no gradient."""
    feats, init = inputs(seed, mode, (n, c, h * w), (n if per_sample else 1, c, bases))
    feats.requires_grad_(True)
    init = init / init.norm(dim=1, keepdim=True)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=mode == 'bfloat16'):
        mu, resp = em_iterations(feats, init, stages, official)
    assert mu.shape == (n, c, bases) and resp.shape == (n, h * w, bases)
    assert not mu.requires_grad and not resp.requires_grad
    assert torch.isfinite(mu).all() and torch.isfinite(resp).all()
    tol = TOL.get(mode, BF16_TOL)
    assert (resp >= 0).all()
    assert_close(resp.double().sum(dim=2), torch.ones(n, h * w).double(), rtol=tol, atol=tol)
    norms = mu.double().norm(dim=1)
    assert (norms <= 1 + tol).all()
    if not official:
        assert_close(norms, torch.ones_like(norms), rtol=tol, atol=tol)
    if mode == 'bfloat16':
        return
    ref_mu, ref_resp = naive_em(feats.detach(), init, stages, official)
    assert_close(mu.double(), ref_mu, rtol=tol, atol=tol)
    assert_close(resp.double(), ref_resp, rtol=tol, atol=tol)
    expanded = em_iterations(feats, init.expand(n, -1, -1), stages, official)
    assert_close(expanded[0], mu, rtol=tol, atol=tol)


EM_MODULE = dict(n=BATCH, c=CHANNELS, bases=CHANNELS, stages=st.integers(1, 3), h=DIM, w=DIM,
                 official=st.booleans(), momentum=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
                 seed=SEED, mode=MODE)


@FAST
@given(**EM_MODULE)
@example(n=2, c=3, bases=2, stages=3, h=7, w=13, official=False, momentum=0.1, seed=0,
         mode='float32')
@example(n=1, c=2, bases=3, stages=2, h=1, w=4, official=True, momentum=0.5, seed=1,
         mode='float64')
@example(n=3, c=4, bases=2, stages=1, h=6, w=1, official=False, momentum=1.0, seed=2,
         mode='bfloat16')
def test_em_attention(n: int, c: int, bases: int, stages: int, h: int, w: int, official: bool,
                      momentum: float, seed: int, mode: str) -> None:
    """Eval: (N, C, H, W) reconstruction ``mu Z^T`` of the EM loops, without gradient, each
    pixel's vector of norm <= 1 (a convex combination of unit bases), bases untouched.
    Training: bases <- (1 - momentum) bases + momentum * batch mean (re-normalised unless
    ``official``)."""
    torch.manual_seed(seed)
    unit = EMAttention(c, bases, stages, momentum, official)
    unit = (unit.double() if mode == 'float64' else unit).eval()
    before = unit.bases.clone()
    (x, ) = inputs(seed, mode, (n, c, h, w))

    def reference() -> torch.Tensor:
        mu, z = naive_em(x.flatten(2), before, stages, official)
        return torch.einsum('nck,nlk->ncl', mu, z).view(n, c, h, w)

    # several EM stages amplify the bfloat16 rounding near ties (0.2 on unit-norm outputs seen)
    recon = check_layer(unit, [x], mode, (n, c, h, w), reference, bf16_close=stages == 1)
    assert torch.equal(unit.bases, before)
    assert not unit(x.requires_grad_(True)).requires_grad
    assert (recon.double().norm(dim=1) <= 1 + TOL.get(mode, BF16_TOL)).all()
    if mode == 'bfloat16':
        return
    unit.train()(x)
    mu, _ = naive_em(x.detach().flatten(2), before, stages, official)
    mean = mu.mean(dim=0, keepdim=True)
    if not official:  # F.normalize: a zero mean (C = 1, opposite signs) stays zero
        mean = mean / mean.norm(dim=1, keepdim=True).clamp_min(1e-12)
    tol = TOL[mode]
    assert_close(unit.bases.double(), (1 - momentum) * before.double() + momentum * mean,
                 rtol=tol, atol=tol)


# ------------------------------------------------------------------ more examples, marked slow
PROPERTIES = [
    (test_spatial_attention, SPATIAL),
    (test_channel_attention, CHANNEL),
    (test_bi_and_multi_afa, AFA),
    (test_mscam_aff_iaff, MSCAM_CASES),
    (test_criss_cross_attention, CRISS_CROSS),
    (test_double_attention, DOUBLE),
    (test_em_iterations, EM),
    (test_em_attention, EM_MODULE),
]


@pytest.mark.slow
@pytest.mark.parametrize('test, strategies', PROPERTIES,
                         ids=[t.__name__[len('test_'):] for t, _ in PROPERTIES])
def test_thorough(test: Callable, strategies: dict) -> None:
    """Every property above with THOROUGH's example count."""
    THOROUGH(given(**strategies)(test.hypothesis.inner_test))()
