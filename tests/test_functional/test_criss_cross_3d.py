"""criss_cross_attention_3d against a naive loop over each position's row, column and time line."""
import warnings

import pytest
import torch

from mmseg_fusion.functional import criss_cross_attention, criss_cross_attention_3d
from mmseg_fusion.functional.criss_cross_3d import _criss_cross_3d_traceable, _CrissCross3dFunction
from mmseg_fusion.testing import naive_criss_cross_3d


def general_path(query, key, value):
    """The autograd function on (N, C, T, H, W) inputs, without the T == 1 shortcut."""
    q, k, v = (x.permute(0, 2, 3, 4, 1) for x in (query, key, value))
    return _CrissCross3dFunction.apply(q, k, v).permute(0, 4, 1, 2, 3)


SHAPES = [  # (N, C', C, T, H, W)
    (2, 2, 3, 3, 4, 5),
    (1, 3, 4, 1, 3, 5),   # T == 1: the 2D attention
    (1, 2, 3, 4, 1, 5),   # H == 1
    (2, 2, 3, 3, 4, 1),   # W == 1
    (1, 1, 2, 5, 1, 1),   # only the time line
    (1, 2, 2, 2, 3, 3),
]


def make(shape, dtype=torch.float64, seed=0):
    n, cq, c, t, h, w = shape
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, ch, t, h, w, generator=gen, dtype=dtype) for ch in (cq, cq, c)]


@pytest.mark.parametrize('shape', SHAPES)
def test_matches_naive_loop(shape):
    q, k, v = make(shape)
    ref = naive_criss_cross_3d(q, k, v)
    out = criss_cross_attention_3d(q, k, v)
    assert out.shape == v.shape and out.dtype == v.dtype
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    # the general path too (T == 1 is otherwise forwarded to the 2D function)
    torch.testing.assert_close(general_path(q, k, v), ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('shape', SHAPES)
def test_traceable_path_matches(shape):
    q, k, v = make(shape)
    nthwc = [x.permute(0, 2, 3, 4, 1) for x in (q, k, v)]
    out = _criss_cross_3d_traceable(*nthwc).permute(0, 4, 1, 2, 3)
    torch.testing.assert_close(out, naive_criss_cross_3d(q, k, v), rtol=1e-10, atol=1e-10)


def test_traced_graph_matches():
    q, k, v = make((1, 2, 3, 3, 4, 5), dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)   # the shape checks
        traced = torch.jit.trace(criss_cross_attention_3d, (q, k, v))
    q2, k2, v2 = make((1, 2, 3, 3, 4, 5), dtype=torch.float32, seed=1)
    torch.testing.assert_close(traced(q2, k2, v2), criss_cross_attention_3d(q2, k2, v2),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('hw', [(5, 7), (1, 6), (6, 1), (1, 1)])
def test_single_frame_equals_2d_exactly(hw, dtype):
    h, w = hw
    q, k, v = make((2, 2, 3, 1, h, w), dtype=dtype, seed=3)
    leaves3 = [x.clone().requires_grad_() for x in (q, k, v)]
    leaves2 = [x[:, :, 0].clone().requires_grad_() for x in (q, k, v)]
    out3 = criss_cross_attention_3d(*leaves3)
    out2 = criss_cross_attention(*leaves2)
    assert out3.shape == (2, 3, 1, h, w)
    assert torch.equal(out3[:, :, 0], out2)
    weight = torch.randn(2, 3, h, w, dtype=dtype)
    (out3[:, :, 0] * weight).sum().backward()
    (out2 * weight).sum().backward()
    for a, b in zip(leaves3, leaves2):
        assert torch.equal(a.grad[:, :, 0], b.grad)


def test_frames_interact_only_through_the_time_line():
    # changing frame 0 away from pixel (h, w)'s row, column and time line leaves it unchanged
    q, k, v = make((1, 2, 3, 3, 4, 5))
    out = criss_cross_attention_3d(q, k, v)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 0, 0, 0] += 5.0
    v2[:, :, 0, 0, 0] += 5.0
    out2 = criss_cross_attention_3d(q, k2, v2)
    changed = (out2 - out).abs().amax(dim=1)[0] > 0   # (T, H, W)
    expected = torch.zeros(3, 4, 5, dtype=torch.bool)
    expected[0, 0, :] = True      # its row in frame 0
    expected[0, :, 0] = True      # its column in frame 0
    expected[:, 0, 0] = True      # the same pixel in the other frames
    assert torch.equal(changed, expected)


def test_any_memory_format_float32():
    q, k, v = make((2, 3, 6, 3, 4, 5), dtype=torch.float32)
    ref = naive_criss_cross_3d(q, k, v).float()
    cl = [x.contiguous(memory_format=torch.channels_last_3d) for x in (q, k, v)]
    big = torch.cat([q, k, v], dim=1)
    sliced = big[:, :3], big[:, 3:6], big[:, 6:]
    for args in ((q, k, v), cl, sliced):
        torch.testing.assert_close(criss_cross_attention_3d(*args), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('shape', [(2, 1, 2, 2, 2, 2), (1, 2, 2, 2, 1, 3), (1, 1, 2, 3, 3, 1),
                                   (1, 2, 2, 1, 2, 3)])
def test_gradcheck(shape):
    inputs = [x.requires_grad_() for x in make(shape, seed=1)]
    assert torch.autograd.gradcheck(criss_cross_attention_3d, inputs)


def test_gradient_matches_naive_loop():
    inputs = make((2, 2, 3, 3, 4, 3), seed=2)
    weight = torch.randn(2, 3, 3, 4, 3, dtype=torch.float64)
    grads = []
    for fn in (criss_cross_attention_3d, naive_criss_cross_3d):
        leaves = [x.clone().requires_grad_() for x in inputs]
        (fn(*leaves) * weight).sum().backward()
        grads.append([x.grad for x in leaves])
    for fast, ref in zip(*grads):
        torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('shape', [(2, 4, 6, 3, 7, 9), (1, 4, 6, 4, 1, 7), (1, 4, 6, 2, 7, 1)])
def test_autocast_half_finite(shape, dtype):
    q, k, v = make(shape, dtype=torch.float32)
    # energies of order 1e4: exp overflows in half precision unless handled
    q, k = (q * 100).requires_grad_(), (k * 100).requires_grad_()
    v.requires_grad_()
    with torch.autocast('cpu', dtype=dtype):
        out = criss_cross_attention_3d(q, k, v)
    assert out.dtype == dtype
    assert torch.isfinite(out).all()
    out.float().sum().backward()
    for x in (q, k, v):
        assert x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all()
    ref = criss_cross_attention_3d(q.detach(), k.detach(), v.detach())
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.05)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_inputs_finite(dtype):
    q, k, v = make((1, 2, 3, 3, 5, 6), dtype=dtype)
    out = criss_cross_attention_3d(q * 300, k * 300, v)
    assert out.dtype == dtype and torch.isfinite(out).all()
    ref = criss_cross_attention_3d(*(x.double() for x in (q * 300, k * 300, v)))
    torch.testing.assert_close(out.double(), ref, rtol=0.02, atol=0.02)


def test_bad_shapes():
    q, k, v = make((1, 2, 3, 2, 4, 5))
    with pytest.raises(ValueError, match=r"criss_cross_attention_3d: query and key .* got "
                                         r"\(1, 2, 2, 4, 5\) and \(1, 1, 2, 4, 5\)"):
        criss_cross_attention_3d(q, k[:, :1], v)
    with pytest.raises(ValueError, match=r'criss_cross_attention_3d: query and key .* got '
                                         r'\(1, 2, 4, 5\)'):
        criss_cross_attention_3d(q[:, :, 0], k[:, :, 0], v[:, :, 0])
    with pytest.raises(ValueError, match=r'criss_cross_attention_3d: value must have shape '
                                         r'\(N, C, T, H, W\) .* got \(1, 3, 1, 4, 5\)'):
        criss_cross_attention_3d(q, k, v[:, :, :1])
    with pytest.raises(ValueError, match='value must have shape'):
        criss_cross_attention_3d(q, k, v[0])
