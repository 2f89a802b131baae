"""resize_to_multiple / multiple_size: the official AFA ``dla_resize`` rule."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmseg_fusion.models.utils import multiple_size, resize_to_multiple


@pytest.mark.parametrize('size, divisor, expected', [
    ((180, 320), 128, (256, 384)),
    ((720, 1280), 128, (768, 1280)),   # BDD100K at test time
    ((720, 1280), 64, (768, 1280)),    # BDD100K crops in training
    ((1024, 2048), 128, (1024, 2048)),  # Cityscapes: already multiples
    ((1, 129), 128, (128, 256)),
])
def test_multiple_size_rounds_up(size, divisor, expected):
    assert multiple_size(size, divisor) == expected
    # the official rule, written as dla-afa does: kept when divisible, else (s // d + 1) * d
    assert expected == tuple(s if s % divisor == 0 else (s // divisor + 1) * divisor
                             for s in size)


def test_resize_to_multiple_is_bilinear_and_keeps_multiples():
    x = torch.randn(2, 3, 180, 320)
    out = resize_to_multiple(x, 128)
    assert out.shape == (2, 3, 256, 384)
    torch.testing.assert_close(out, F.interpolate(x, size=(256, 384), mode='bilinear',
                                                  align_corners=False))
    y = torch.randn(1, 3, 256, 384)
    assert resize_to_multiple(y, 128) is y
    assert resize_to_multiple(x, None) is x and resize_to_multiple(x, 0) is x


@pytest.mark.parametrize('scale', [0.5, 0.75, 1.5, 1.75])
def test_resize_to_multiple_of_a_scaled_view(scale):
    """A view at ``scale`` of a 180x320 image goes to ``scale`` x 256x384 (rounded)."""
    view = torch.randn(1, 3, int(180 * scale + 0.5), int(320 * scale + 0.5))
    out = resize_to_multiple(view, 128, scale=scale, size_1x=(180, 320))
    assert out.shape[-2:] == (round(256 * scale), round(384 * scale))
    # without size_1x it is recovered from the view's size
    assert resize_to_multiple(view, 128, scale=scale).shape == out.shape
    assert math.isclose(out.shape[-1] / out.shape[-2], 384 / 256, rel_tol=0.02)


@pytest.mark.parametrize('divisor', [0.5, -64, True, '128'])
def test_bad_divisor_names_the_argument(divisor):
    with pytest.raises(ValueError, match=r'size_divisor_resize: the divisor must be a positive '
                                         r'int, got'):
        multiple_size((10, 10), divisor)


@pytest.mark.parametrize('scale', [1.0, 0.5])
def test_resize_to_multiple_traced_once_serves_other_sizes(scale):
    """Under the ONNX/TorchScript tracer the sizes are tensors: the rule must stay symbolic."""
    def fn(x):
        return resize_to_multiple(x, 128, scale=scale)

    traced = torch.jit.trace(fn, torch.randn(1, 3, 128, 256), check_trace=False)
    for h, w in ((180, 320), (77, 129), (256, 384)):
        x = torch.randn(1, 3, h, w)
        expected = fn(x)
        out = traced(x)
        assert out.shape == expected.shape
        torch.testing.assert_close(out, expected)
