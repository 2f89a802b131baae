import pytest
import torch

from mmseg_fusion.functional import double_attention
from mmseg_fusion.testing import naive_double_attention


@pytest.mark.parametrize('spatial', [(5, 7), (3, 4, 5)])
def test_matches_naive_reference(spatial):
    torch.manual_seed(0)
    a = torch.randn(2, 3, *spatial)
    b = torch.randn(2, 4, *spatial) * 2
    v = torch.randn(2, 4, *spatial) * 2
    z = double_attention(a, b, v)
    assert z.shape == (2, 3, *spatial)
    torch.testing.assert_close(z.flatten(2), naive_double_attention(a, b, v).float(),
                               rtol=1e-5, atol=1e-6)


def test_gathering_softmax_is_over_positions():
    # one descriptor: V is irrelevant and B selects the position with the largest logit
    a = torch.arange(6.).reshape(1, 1, 2, 3)
    b = torch.full((1, 1, 2, 3), -1e4)
    b[0, 0, 1, 2] = 0
    z = double_attention(a, b, torch.randn(1, 1, 2, 3))
    torch.testing.assert_close(z, torch.full((1, 1, 2, 3), 5.0))
    # constant logits: every position receives the global mean of A
    z = double_attention(a, torch.zeros(1, 2, 2, 3), torch.randn(1, 2, 2, 3))
    torch.testing.assert_close(z, torch.full((1, 1, 2, 3), 2.5))


def test_gradients_and_bad_shapes():
    a, b, v = (torch.randn(1, c, 23, 29, requires_grad=True) for c in (3, 2, 2))
    double_attention(a, b, v).pow(2).sum().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in (a, b, v))
    with pytest.raises(ValueError, match=r'double_attention: expected .*\(1, 2, 5, 5\)'):
        double_attention(torch.randn(1, 3, 5, 5), torch.randn(1, 2, 5, 5),
                         torch.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match='double_attention'):
        double_attention(torch.randn(1, 3, 4, 5), torch.randn(1, 2, 5, 5),
                         torch.randn(1, 2, 5, 5))
