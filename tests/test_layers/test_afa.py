import pytest
import torch
from torch.testing import assert_close

from mmseg_fusion.layers import BiAFA, ChannelAttention, MultiAFA, SpatialAttention
from mmseg_fusion.testing import naive_channel, naive_spatial, randomise


@pytest.mark.parametrize('activation', ['sigmoid', 'abs', None])
def test_spatial_attention_reference(activation):
    sa = randomise(SpatialAttention(4, 1, activation=activation), std=0.3)
    x = torch.randn(2, 4, 7, 5)
    logits = naive_spatial(x, sa, logits=True).float()
    expected = {'sigmoid': logits.sigmoid(), 'abs': logits.abs(), 'relu': logits.clamp_min(0),
                None: logits}[activation]
    assert_close(sa(x), expected)
    assert sa(x).shape == (2, 1, 7, 5)


def test_spatial_attention_ssr_signature_and_errors():
    sa = SpatialAttention(6, 1, activation='abs')
    assert (sa(torch.randn(1, 6, 3, 4)) >= 0).all()
    assert sa.final.weight.shape == (1, 6, 1, 1)
    with pytest.raises(ValueError, match="SpatialAttention: activation .* got 'tanh'"):
        SpatialAttention(4, activation='tanh')
    with pytest.raises(ValueError,
                       match='SpatialAttention: in_channels must be an int >= 1, got 0'):
        SpatialAttention(0)


@pytest.mark.parametrize('kwargs, match', [
    (dict(in_channels=4, out_channels=0), 'SpatialAttention: out_channels .* got 0'),
    (dict(in_channels=4, mid_channels=0), 'SpatialAttention: mid_channels .* got 0'),
    (dict(in_channels=4.0), 'SpatialAttention: in_channels .* got 4.0'),
])
def test_spatial_attention_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpatialAttention(**kwargs)


def test_channel_attention_reference_and_errors():
    ca = randomise(ChannelAttention(32, reduction=16), seed=1, std=0.3)
    x = torch.randn(3, 32, 5, 4)
    assert_close(ca(x), naive_channel(x, ca).float())
    assert ca(x).shape == (3, 32, 1, 1)
    with pytest.raises(ValueError, match=r'ChannelAttention: reduction .*\(8\), got 16'):
        ChannelAttention(8, reduction=16)


@pytest.mark.parametrize('kwargs, match', [
    # the hidden layer has out_channels // reduction channels: it must be >= 1
    (dict(in_channels=8, out_channels=4, reduction=8),
     r'ChannelAttention: reduction must be >= 1 and <= out_channels \(4\), got 8'),
    (dict(in_channels=8, reduction=0), r'ChannelAttention: reduction .* got 0'),
    (dict(in_channels=8, reduction=2.5), r'ChannelAttention: reduction .* got 2.5'),
    (dict(in_channels=0), 'ChannelAttention: in_channels must be an int >= 1, got 0'),
    (dict(in_channels=8, out_channels=-2), 'ChannelAttention: out_channels .* got -2'),
])
def test_channel_attention_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ChannelAttention(**kwargs)


def test_bi_afa_reference():
    afa = randomise(BiAFA(16, reduction=4), seed=2, std=0.3)
    x, y = torch.randn(2, 16, 5, 6), torch.randn(2, 16, 5, 6)
    s = naive_spatial(x, afa.sa, logits=True).float().sigmoid()
    c = naive_channel(y, afa.ca).float()
    ref = torch.empty_like(x)
    for ch in range(16):
        ref[:, ch] = (s[:, 0] * (1 - c[:, ch]) * x[:, ch]
                      + (1 - s[:, 0]) * c[:, ch] * y[:, ch])
    assert_close(afa(x, y), ref)


def test_bi_afa_half_attention_is_quarter_sum():
    afa = BiAFA(16, reduction=4).eval()
    torch.nn.init.zeros_(afa.sa.final.weight)  # s = 1/2
    torch.nn.init.zeros_(afa.ca.conv2.weight)  # c = 1/2
    x, y = torch.randn(1, 16, 3, 4), torch.randn(1, 16, 3, 4)
    assert_close(afa(x, y), 0.25 * (x + y))


def test_multi_afa_reference_and_single_input():
    afa = randomise(MultiAFA(16, reduction=4), seed=3, std=0.3)
    feats = [torch.randn(2, 16, 4, 5) for _ in range(3)]
    s = [naive_spatial(f, afa.sa, logits=True).float().sigmoid() for f in feats]
    c = [naive_channel(f, afa.ca).float() for f in feats]
    ref = 0
    for k in range(3):
        w = s[k] * c[k]
        for j in range(k + 1, 3):
            w = w * (1 - s[j]) * (1 - c[j])
        ref = ref + w * feats[k]
    assert_close(afa(feats), ref)
    assert_close(afa(feats[:1]), s[0] * c[0] * feats[0])
    with pytest.raises(ValueError, match='MultiAFA: features'):
        afa([])


def test_afa_shapes_and_gradients():
    bi, multi = BiAFA(16, reduction=4), MultiAFA(16, reduction=4)
    x, y = torch.randn(2, 16, 23, 29), torch.randn(2, 16, 23, 29)
    out = bi(x, y)
    out2 = multi([x, y, out])
    assert out.shape == out2.shape == (2, 16, 23, 29)
    (out2.square().mean()).backward()
    for module in (bi, multi):
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name
