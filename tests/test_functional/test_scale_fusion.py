"""Scale fusion weights (SSR, HMA, softmax over scales) against naive references."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from mmseg_fusion.functional import (
    finish_fusion,
    fuse_scales,
    hma_weights,
    init_fusion,
    scale_space_weights,
    softmax_scale_weights,
    update_fusion,
)
from mmseg_fusion.testing import naive_ssr


def nvidia_hma(preds, attn_logits):
    """NVIDIA ``nscale_forward`` (methods.md 6.1) with every map already at the 1.0 size.

    ``preds``/``attn_logits`` are ordered coarsest first; the recursion runs from the finest
    scale down, ``pred = a_s * p_s + (1 - a_s) * pred`` with ``a_s = sigmoid(head)``; the
    attention of the finest scale is unused.
    """
    order = list(range(len(preds)))[::-1]
    pred = None
    for idx in order:
        if pred is None:
            pred = preds[idx]
        else:
            a = torch.sigmoid(attn_logits[idx])
            pred = a * preds[idx] + (1 - a) * pred
    return pred


@pytest.mark.parametrize('terminal', [False, True])
@pytest.mark.parametrize('phi', ['abs', 'softplus'])
def test_weights_match_naive_loop(phi, terminal):
    torch.manual_seed(0)
    dens = [torch.randn(2, 1, 3, 5, dtype=torch.float64) * 2 for _ in range(4)]
    fn = abs if phi == 'abs' else (lambda v: math.log1p(math.exp(v)))
    got = scale_space_weights(dens, phi=phi, terminal=terminal)
    ref = naive_ssr(dens, fn, terminal)
    assert len(got) == 4
    for g, r in zip(got, ref):
        assert g.shape == (2, 1, 3, 5)
        torch.testing.assert_close(g.double(), r, rtol=1e-5, atol=1e-6)
    total = sum(got)
    if terminal:
        torch.testing.assert_close(total, torch.ones_like(total), rtol=1e-5, atol=1e-6)
    else:
        expected = 1 - torch.exp(-sum(d.abs() if phi == 'abs' else F.softplus(d) for d in dens))
        torch.testing.assert_close(total, expected, rtol=1e-5, atol=1e-6)


def test_callable_phi_and_fuse_matches_weighted_sum():
    torch.manual_seed(1)
    dens = [torch.randn(1, 1, 23, 29) for _ in range(3)]
    logits = [torch.randn(1, 4, 23, 29) for _ in range(3)]
    w = scale_space_weights(dens, phi=torch.square)
    ref = naive_ssr([d.double() for d in dens], lambda v: v * v, False)
    for g, r in zip(w, ref):
        torch.testing.assert_close(g.double(), r, rtol=1e-4, atol=1e-6)
    fused = fuse_scales(logits, dens, method='ssr')
    weights = scale_space_weights(dens)
    torch.testing.assert_close(fused, sum(a * p for a, p in zip(weights, logits)))


def test_hma_equals_nvidia_recursion():
    torch.manual_seed(2)
    for num_scales in (2, 3, 5):
        preds = [torch.randn(2, 3, 7, 9, dtype=torch.float64) for _ in range(num_scales)]
        attn = [torch.randn(2, 1, 7, 9, dtype=torch.float64) * 3 for _ in range(num_scales)]
        ref = nvidia_hma(preds, attn)
        torch.testing.assert_close(fuse_scales(preds, attn, method='hma'), ref)
        torch.testing.assert_close(fuse_scales(preds, attn, 'ssr', 'softplus', True), ref)
        w = hma_weights(attn)
        torch.testing.assert_close(sum(a * p for a, p in zip(w, preds)), ref)


def test_softmax_mean_max():
    torch.manual_seed(3)
    logits = [torch.randn(2, 3, 5, 6) for _ in range(3)]
    scores = [torch.randn(2, 1, 5, 6) * 5 for _ in range(3)]
    w = torch.cat(scores, 1).softmax(1)
    ref = sum(w[:, i:i + 1] * logits[i] for i in range(3))
    torch.testing.assert_close(fuse_scales(logits, scores, 'softmax'), ref)
    sw = softmax_scale_weights(scores)
    torch.testing.assert_close(sum(sw), torch.ones(2, 1, 5, 6))
    torch.testing.assert_close(fuse_scales(logits, method='mean'), sum(logits) / 3)
    torch.testing.assert_close(fuse_scales(logits, method='max'),
                               torch.stack(logits).amax(0))


def test_weights_at_density_size_are_resized():
    torch.manual_seed(4)
    logits = [torch.randn(1, 2, 16, 12) for _ in range(2)]
    dens = [torch.randn(1, 1, 4, 3) for _ in range(2)]
    w = scale_space_weights(dens)
    up = [F.interpolate(a, size=(16, 12), mode='bilinear', align_corners=False) for a in w]
    torch.testing.assert_close(fuse_scales(logits, dens), up[0] * logits[0] + up[1] * logits[1])


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
@pytest.mark.parametrize('method', ['ssr', 'hma', 'softmax'])
def test_robust_to_extreme_densities(method, dtype):
    logits = [torch.randn(1, 3, 4, 4).to(dtype) for _ in range(4)]
    cases = [
        [torch.full((1, 1, 4, 4), v).to(dtype) for v in (1e4, -1e4, 1e4, -1e4)],
        [torch.zeros(1, 1, 4, 4, dtype=dtype) for _ in range(4)],
        [torch.full((1, 1, 4, 4), -1e4, dtype=dtype) for _ in range(4)],
        [torch.full((1, 1, 4, 4), 1e4, dtype=dtype) for _ in range(4)],
    ]
    for dens in cases:
        fused = fuse_scales(logits, dens, method)
        assert fused.dtype == dtype
        assert torch.isfinite(fused).all()
        for phi in ('abs', 'softplus'):
            for terminal in (False, True):
                w = scale_space_weights(dens, phi=phi, terminal=terminal)
                assert all(torch.isfinite(a).all() and a.dtype == dtype for a in w)
                total = sum(a.float() for a in w)
                assert (total >= 0).all() and (total <= 1 + 1e-2).all()
    # all-zero densities with abs: nothing rendered; terminal: all on the finest scale
    zero = [torch.zeros(1, 1, 2, 2) for _ in range(3)]
    assert all((a == 0).all() for a in scale_space_weights(zero))
    assert (scale_space_weights(zero, terminal=True)[-1] == 1).all()


def test_gradient_reaches_coarse_density_with_abs_not_with_hma():
    """The paper's argument: when the coarse scale has a small weight, HMA's sigmoid is
    saturated and the gradient to its density vanishes; with phi = abs it does not."""
    eps = 1e-4
    p_coarse, p_fine = torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 1, 1)
    # the same coarse weight a_1 = eps under both parameterisations
    y_hma = torch.full((1, 1, 1, 1), math.log(eps / (1 - eps)), requires_grad=True)
    y_ssr = torch.full((1, 1, 1, 1), -math.log(1 - eps), requires_grad=True)
    fine = torch.zeros(1, 1, 1, 1)
    hma = fuse_scales([p_coarse, p_fine], [y_hma, fine], 'hma')
    ssr = fuse_scales([p_coarse, p_fine], [y_ssr, fine], 'ssr', terminal=True)
    torch.testing.assert_close(hma, ssr)
    hma.sum().backward()
    ssr.sum().backward()
    assert abs(y_hma.grad.item()) < 2 * eps
    assert abs(y_ssr.grad.item()) > 0.99


@pytest.mark.parametrize('call, match', [
    (lambda: init_fusion('median'), r"init_fusion: method must be one of .* got 'median'"),
    (lambda: init_fusion('ssr', phi='relu6'),
     r"init_fusion: phi must be 'abs', 'softplus' or a callable, got 'relu6'"),
    (lambda: fuse_scales([torch.zeros(1, 2, 2, 2)], method='median'),
     r"fuse_scales: method must be one of .* got 'median'"),
    (lambda: fuse_scales([torch.zeros(1, 2, 2, 2)], [torch.zeros(1, 1, 2, 2)], phi='exp'),
     r"fuse_scales: phi must be .* got 'exp'"),
    (lambda: scale_space_weights([torch.zeros(1, 1, 2, 2)], phi=2),
     r'scale_space_weights: phi must be .* got 2'),
])
def test_unknown_method_or_phi_names_the_function(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_arguments():
    with pytest.raises(ValueError, match='phi'):
        scale_space_weights([torch.zeros(1, 1, 2, 2)], phi='relu6')
    with pytest.raises(ValueError, match='method'):
        fuse_scales([torch.zeros(1, 2, 2, 2)], method='median')
    with pytest.raises(ValueError, match='needs a density'):
        fuse_scales([torch.zeros(1, 2, 2, 2)], method='ssr')
    with pytest.raises(ValueError, match=r'\(N, 1, H, W\)'):
        scale_space_weights([torch.zeros(1, 2, 2, 2)])
    with pytest.raises(ValueError, match='at least one'):
        scale_space_weights([])


def test_trace_with_equal_density_sizes_serves_unequal_ones():
    # densities of the scales may differ by a pixel at some input sizes (rounding): a trace
    # taken where they are equal must still resize them
    def fuse(logits, d0, d1):
        state = init_fusion('ssr')
        update_fusion(state, logits, d0)
        update_fusion(state, logits, d1, last=True)
        return finish_fusion(state)

    args = (torch.randn(1, 3, 16, 16), torch.randn(1, 1, 4, 4), torch.randn(1, 1, 4, 4))
    traced = torch.jit.trace(fuse, args, check_trace=False)
    args = (torch.randn(1, 3, 20, 22), torch.randn(1, 1, 5, 6), torch.randn(1, 1, 6, 5))
    assert_close(traced(*args), fuse(*args))
