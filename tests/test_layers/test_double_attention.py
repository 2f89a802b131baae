import pytest
import torch

from mmseg_fusion.functional import double_attention
from mmseg_fusion.layers import DoubleAttention


def test_defaults_and_shapes_on_odd_sizes():
    block = DoubleAttention(8)
    assert (block.mid_channels, block.num_descriptors) == (2, 2)
    assert 'mid_channels=2' in repr(block)
    x = torch.randn(2, 8, 23, 29)
    assert block(x).shape == (2, 8, 23, 29)
    assert DoubleAttention(3).mid_channels == 1


def test_forward_is_residual_plus_expanded_double_attention():
    torch.manual_seed(0)
    block = DoubleAttention(6, mid_channels=3, num_descriptors=5)
    x = torch.randn(2, 6, 7, 9)
    z = double_attention(block.conv_a(x), block.conv_b(x), block.conv_v(x))
    torch.testing.assert_close(block(x), x + block.expand.conv(z))
    block.residual = False
    torch.testing.assert_close(block(x), block.expand.conv(z))


def test_norm_and_every_parameter_gets_a_gradient():
    block = DoubleAttention(6, 2, 3, norm_cfg=dict(type='BN'))
    assert hasattr(block.expand, 'bn') and block.expand.conv.bias is None
    x = torch.randn(2, 6, 23, 29, requires_grad=True)
    block(x).pow(2).mean().backward()
    for name, param in block.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_video_with_conv3d():
    block = DoubleAttention(4, conv_cfg=dict(type='Conv3d'))
    assert block(torch.randn(1, 4, 3, 5, 7)).shape == (1, 4, 3, 5, 7)


@pytest.mark.parametrize('args, match', [
    ((0, ), 'DoubleAttention: in_channels must be an int >= 1, got 0'),
    ((4, 0), 'DoubleAttention: mid_channels must be an int >= 1, got 0'),
    ((4, 2, -1), 'DoubleAttention: num_descriptors must be an int >= 1, got -1'),
    ((4, 2.5), 'mid_channels must be an int >= 1, got 2.5'),
])
def test_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        DoubleAttention(*args)
