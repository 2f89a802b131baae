"""criss_cross_attention against a naive loop over each pixel's row and column."""
import pytest
import torch

from mmseg_fusion.functional import criss_cross_attention
from mmseg_fusion.functional.criss_cross import _criss_cross_traceable
from mmseg_fusion.testing import naive_criss_cross

SHAPES = [  # (N, C', C, H, W)
    (2, 2, 3, 5, 7),
    (1, 3, 4, 1, 6),   # H == 1: the column holds only the pixel itself
    (2, 2, 3, 6, 1),   # W == 1
    (1, 1, 2, 1, 1),
    (1, 2, 5, 4, 4),
]


def make(shape, dtype=torch.float64, seed=0):
    n, cq, c, h, w = shape
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, ch, h, w, generator=gen, dtype=dtype) for ch in (cq, cq, c)]


@pytest.mark.parametrize('shape', SHAPES)
def test_matches_naive_loop(shape):
    q, k, v = make(shape)
    out = criss_cross_attention(q, k, v)
    assert out.shape == v.shape and out.dtype == v.dtype
    torch.testing.assert_close(out, naive_criss_cross(q, k, v), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('shape', SHAPES)
def test_traceable_path_matches(shape):
    q, k, v = make(shape)
    nhwc = [t.permute(0, 2, 3, 1) for t in (q, k, v)]
    out = _criss_cross_traceable(*nhwc).permute(0, 3, 1, 2)
    torch.testing.assert_close(out, criss_cross_attention(q, k, v), rtol=1e-12, atol=1e-12)


def test_any_memory_format_float32():
    q, k, v = make((2, 3, 6, 7, 5), dtype=torch.float32)
    ref = naive_criss_cross(q, k, v).float()
    cl = [t.contiguous(memory_format=torch.channels_last) for t in (q, k, v)]
    # non-contiguous channel slices of a bigger tensor
    big = torch.cat([q, k, v], dim=1)
    sliced = big[:, :3], big[:, 3:6], big[:, 6:]
    for args in ((q, k, v), cl, sliced):
        torch.testing.assert_close(criss_cross_attention(*args), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('shape', [(2, 1, 2, 3, 4), (1, 2, 2, 1, 4), (1, 1, 2, 3, 1)])
def test_gradcheck(shape):
    inputs = [t.requires_grad_() for t in make(shape, seed=1)]
    assert torch.autograd.gradcheck(criss_cross_attention, inputs)


def test_gradient_matches_naive_loop():
    inputs = make((2, 2, 3, 4, 5), seed=2)
    weight = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    grads = []
    for fn in (criss_cross_attention, naive_criss_cross):
        leaves = [t.clone().requires_grad_() for t in inputs]
        (fn(*leaves) * weight).sum().backward()
        grads.append([t.grad for t in leaves])
    for fast, ref in zip(*grads):
        torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('shape', [(2, 4, 6, 9, 11), (1, 4, 6, 1, 7), (1, 4, 6, 7, 1)])
def test_autocast_half_finite(shape, dtype):
    q, k, v = make(shape, dtype=torch.float32)
    # energies of order 1e4: exp overflows in half precision unless handled
    q, k = (q * 100).requires_grad_(), (k * 100).requires_grad_()
    v.requires_grad_()
    with torch.autocast('cpu', dtype=dtype):
        out = criss_cross_attention(q, k, v)
    assert out.dtype == dtype
    assert torch.isfinite(out).all()
    out.float().sum().backward()
    for t in (q, k, v):
        assert t.grad.dtype == torch.float32 and torch.isfinite(t.grad).all()
    ref = criss_cross_attention(q.detach(), k.detach(), v.detach())
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.05)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_inputs_finite(dtype):
    q, k, v = make((1, 2, 3, 5, 6), dtype=dtype)
    out = criss_cross_attention(q * 300, k * 300, v)
    assert out.dtype == dtype and torch.isfinite(out).all()


def test_bad_shapes():
    q, k, v = make((1, 2, 3, 4, 5))
    with pytest.raises(ValueError, match='query and key'):
        criss_cross_attention(q, k[:, :1], v)
    with pytest.raises(ValueError, match='value must have shape'):
        criss_cross_attention(q, k, v[:, :, :3])
