"""Traceable size arithmetic: the same sizes as Python's, recorded symbolically when traced."""
import pytest
import torch
import torch.nn.functional as F

from mmseg_fusion.utils import is_tracing, scaled_size

SCALES = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 0.4, 1 / 3, 0.1]


@pytest.mark.parametrize('scale', SCALES)
def test_tensor_sizes_match_python(scale):
    for size in range(1, 70):
        for inverse in (False, True):
            python = max(1, int(round(size / scale if inverse else size * scale)))
            assert scaled_size([size], scale, inverse) == (python, ), (size, scale)
            traced = scaled_size([torch.tensor(size)], scale, inverse)[0]
            assert traced.dtype == torch.int64 and traced.item() == python, (size, scale)


def test_ties_round_half_to_even_and_never_below_one():
    # 5 * 0.5 = 2.5 -> 2, 7 * 0.5 = 3.5 -> 4, 5 / 2 = 2.5 -> 2 (round half to even)
    assert scaled_size((5, 7), 0.5) == (2, 4)
    assert scaled_size((5, ), 2.0, inverse=True) == (2, )
    assert [s.item() for s in scaled_size((torch.tensor(5), torch.tensor(7)), 0.5)] == [2, 4]
    assert scaled_size((1, 2), 0.1) == (1, 1)
    assert [s.item() for s in scaled_size((torch.tensor(5), torch.tensor(3)), 0.1)] == [1, 1]


def test_a_trace_follows_the_input_size():
    seen = []

    def resize(x):
        seen.append(is_tracing())
        return F.interpolate(x, size=scaled_size(x.shape[-2:], 0.75), mode='bilinear',
                             align_corners=False)

    traced = torch.jit.trace(resize, torch.randn(1, 2, 20, 30), check_trace=False)
    assert seen == [True] and not is_tracing()
    for h, w in [(20, 30), (17, 45), (3, 1)]:
        x = torch.randn(1, 2, h, w)
        out = traced(x)
        assert out.shape[-2:] == scaled_size((h, w), 0.75)
        torch.testing.assert_close(out, resize(x))
