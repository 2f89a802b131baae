"""CrissCrossAttention3d: a Conv3d + loop reference, the 2D layer's weights, T == 1 identity."""
import pytest
import torch
import torch.nn.functional as F

from mmseg_fusion.layers import CrissCrossAttention, CrissCrossAttention3d
from mmseg_fusion.testing import naive_criss_cross_3d


def randomised(layer, gamma=0.7, seed=0):
    torch.manual_seed(seed)
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=0.3)
    layer.gamma.scale.data.fill_(gamma)
    return layer


def reference(layer, x):
    """x + gamma * CCA3d(x) with 1x1x1 Conv3d projections and the naive loop attention."""
    def conv3d(conv):
        return F.conv3d(x, conv.weight.unsqueeze(-1), conv.bias)

    q, k, v = conv3d(layer.query_conv), conv3d(layer.key_conv), conv3d(layer.value_conv)
    return x + layer.gamma.scale * naive_criss_cross_3d(q, k, v)


@pytest.mark.parametrize('shape', [(2, 8, 3, 4, 5), (1, 16, 2, 1, 5), (1, 8, 3, 4, 1),
                                   (1, 8, 1, 3, 4)])
def test_matches_conv3d_loop_reference(shape):
    layer = randomised(CrissCrossAttention3d(shape[1])).double()
    x = torch.randn(shape, dtype=torch.float64)
    out = layer(x)
    assert out.shape == shape and out.is_contiguous()
    torch.testing.assert_close(out, reference(layer, x), rtol=1e-10, atol=1e-10)


def test_gradients_match_reference():
    layer = randomised(CrissCrossAttention3d(8)).double()
    x = torch.randn(2, 8, 3, 4, 3, dtype=torch.float64)
    weight = torch.randn_like(x)
    grads = []
    for fn in (layer, lambda inp: reference(layer, inp)):
        layer.zero_grad()
        leaf = x.clone().requires_grad_()
        (fn(leaf) * weight).sum().backward()
        grads.append([leaf.grad] + [p.grad.clone() for p in layer.parameters()])
    for fast, ref in zip(*grads):
        torch.testing.assert_close(fast, ref, rtol=1e-9, atol=1e-9)


def test_state_dict_is_the_2d_layers():
    layer2d, layer3d = randomised(CrissCrossAttention(16)), CrissCrossAttention3d(16)
    a, b = layer2d.state_dict(), layer3d.state_dict()
    assert list(a) == list(b)
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    layer3d.load_state_dict(a, strict=True)
    for key, value in layer3d.state_dict().items():
        assert torch.equal(value, a[key]), key


def test_loads_conv3d_kernels():
    layer2d = randomised(CrissCrossAttention(16))
    state = {k: (v.unsqueeze(-1) if k.endswith('conv.weight') else v)
             for k, v in layer2d.state_dict().items()}
    assert state['value_conv.weight'].shape == (16, 16, 1, 1, 1)
    layer3d = CrissCrossAttention3d(16)
    layer3d.load_state_dict(state, strict=True)
    assert torch.equal(layer3d.value_conv.weight, layer2d.value_conv.weight)


@pytest.mark.parametrize('hw', [(7, 9), (1, 5), (6, 1)])
def test_single_frame_equals_2d_layer_exactly(hw):
    layer2d = randomised(CrissCrossAttention(16))
    layer3d = CrissCrossAttention3d(16)
    layer3d.load_state_dict(layer2d.state_dict())
    x = torch.randn(2, 16, *hw)
    x2, x3 = x.clone().requires_grad_(), x.unsqueeze(2).clone().requires_grad_()
    out2, out3 = layer2d(x2), layer3d(x3)
    assert out3.shape == (2, 16, 1, *hw)
    assert torch.equal(out3[:, :, 0], out2)
    weight = torch.randn_like(out2)
    (out2 * weight).sum().backward()
    (out3[:, :, 0] * weight).sum().backward()
    assert torch.equal(x3.grad[:, :, 0], x2.grad)
    for (name, p2), p3 in zip(layer2d.named_parameters(), layer3d.parameters()):
        assert torch.equal(p2.grad, p3.grad), name


def test_identity_at_init_and_every_parameter_learns():
    layer = CrissCrossAttention3d(16)
    x = torch.randn(2, 16, 3, 5, 7)
    torch.testing.assert_close(layer(x), x)
    layer.gamma.scale.data.fill_(0.5)
    layer(x).pow(2).sum().backward()
    for name, p in layer.named_parameters():
        if name != 'key_conv.bias':  # its gradient is zero by construction
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_input():
    layer = CrissCrossAttention3d(16)
    with pytest.raises(ValueError, match=r'CrissCrossAttention3d: input must have shape '
                                         r'\(N, C, T, H, W\) with C = in_channels = 16, got '
                                         r'\(2, 16, 5, 7\)'):
        layer(torch.randn(2, 16, 5, 7))
    with pytest.raises(ValueError, match=r'got \(2, 8, 3, 5, 7\)'):
        layer(torch.randn(2, 8, 3, 5, 7))
    with pytest.raises(ValueError, match=r'CrissCrossAttention: in_channels .* got 4'):
        CrissCrossAttention3d(4)


def test_autocast_bfloat16_finite():
    layer = randomised(CrissCrossAttention3d(16))
    x = (torch.randn(2, 16, 3, 9, 11) * 10).requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = layer(x)
    assert torch.isfinite(out).all()
    out.float().sum().backward()
    assert torch.isfinite(x.grad).all()
    # accuracy at moderate energies (at large ones bf16 projections move the sharp softmax)
    x = torch.randn(2, 16, 3, 9, 11)
    with torch.no_grad():
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = layer(x)
        torch.testing.assert_close(out.float(), layer(x), rtol=0.05, atol=0.1)
