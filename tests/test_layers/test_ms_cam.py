import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from mmseg_fusion.layers import AFF, IAFF, MSCAM
from mmseg_fusion.testing import naive_conv_module, naive_mscam, randomise


def test_mscam_matches_equations():
    m = randomise(MSCAM(8, reduction=4))
    x = torch.randn(2, 8, 5, 7)
    weights = naive_mscam(x, m).float()
    assert_close(m.attention(x), weights)
    assert_close(m(x), x * weights)
    assert m.local_att[0].conv.bias is not None  # the official 1x1 convs keep their bias


def test_aff_matches_equations_and_factor():
    aff = randomise(AFF(8, reduction=2), seed=1)
    x, y = torch.randn(2, 8, 6, 5), torch.randn(2, 8, 6, 5)
    m = naive_mscam(x + y, aff.att).float()
    assert aff.scale == 2.0
    assert_close(aff(x, y), 2 * x * m + 2 * y * (1 - m))
    aff.scale = 1.0
    assert_close(aff(x, y), x * m + y * (1 - m))
    # the paper's formula (scale 1) is the identity on x == y; the official one doubles x
    assert_close(aff(x, x), x)
    assert_close(randomise(AFF(8, reduction=2), seed=1)(x, x), 2 * x)


def test_iaff_matches_equations_and_uses_second_global_branch():
    iaff = randomise(IAFF(8, reduction=4), seed=2)
    x, y = torch.randn(2, 8, 5, 3), torch.randn(2, 8, 5, 3)
    w1 = naive_mscam(x + y, iaff.att1).float()
    xi = x * w1 + y * (1 - w1)
    w2 = naive_mscam(xi, iaff.att2).float()
    ref = x * w2 + y * (1 - w2)
    assert_close(iaff(x, y), ref)
    # the PyTorch port's bug (first global branch in the second stage) gives another result
    buggy = torch.sigmoid(naive_conv_module(naive_conv_module(xi, iaff.att2.local_att[0]),
                                            iaff.att2.local_att[1])
                          + naive_conv_module(naive_conv_module(xi.mean((2, 3), keepdim=True),
                                                                iaff.att1.global_att[0]),
                                              iaff.att1.global_att[1])).float()
    assert not torch.allclose(iaff(x, y), x * buggy + y * (1 - buggy))
    assert_close(iaff(x, x), x)


def test_iaff_is_aff_with_aff_as_initial_integration():
    iaff = randomise(IAFF(4, reduction=2), seed=3)
    first, second = AFF(4, reduction=2, scale=1.0).eval(), AFF(4, reduction=2, scale=1.0).eval()
    first.att.load_state_dict(iaff.att1.state_dict())
    second.att.load_state_dict(iaff.att2.state_dict())
    x, y = torch.randn(2, 4, 3, 5), torch.randn(2, 4, 3, 5)
    # iAFF = AFF whose initial integration X + Y is replaced by AFF(X, Y) (issue #9 of open-aff)
    w = second.att.attention(first(x, y))
    assert_close(iaff(x, y), x * w + y * (1 - w))


@pytest.mark.parametrize('cls', [MSCAM, AFF, IAFF])
def test_shapes_and_gradients(cls):
    m = cls(8)
    x, y = torch.randn(2, 8, 23, 29, requires_grad=True), torch.randn(2, 8, 23, 29)
    out = m(x) if cls is MSCAM else m(x, y)
    assert out.shape == (2, 8, 23, 29)
    F.mse_loss(out, torch.zeros_like(out)).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        # a conv bias right before a training-mode BN has an exactly zero gradient
        if not name.endswith('conv.bias'):
            assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize('cls', [MSCAM, AFF, IAFF])
def test_bad_arguments(cls):
    with pytest.raises(ValueError, match=rf'{cls.__name__}: reduction .*\(6\), got 4'):
        cls(6, reduction=4)
    with pytest.raises(ValueError, match=rf'{cls.__name__}: channels must be an int >= 1, '
                                         r'got 0'):
        cls(0)
    with pytest.raises(ValueError, match=rf'{cls.__name__}: reduction .*\(8\), got 2.0'):
        cls(8, reduction=2.0)
    with pytest.raises(ValueError, match=rf'{cls.__name__}: reduction .*\(8\), got 0'):
        cls(8, reduction=0)
    with pytest.raises(ValueError, match=rf"{cls.__name__}: channels .* got '8'"):
        cls('8')
