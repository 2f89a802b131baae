import pytest
import torch
from torch.testing import assert_close

from mmseg_fusion.functional import afa_bi_fusion, afa_multi_fusion, progressive_weights


def test_bi_fusion_matches_elementwise_loop():
    torch.manual_seed(0)
    x, y = torch.randn(2, 3, 5, 7), torch.randn(2, 3, 5, 7)
    s, c = torch.rand(2, 1, 5, 7), torch.rand(2, 3, 1, 1)
    out = afa_bi_fusion(x, y, s, c)
    ref = torch.empty_like(x)
    for n in range(2):
        for ch in range(3):
            for i in range(5):
                for j in range(7):
                    sv, cv = s[n, 0, i, j], c[n, ch, 0, 0]
                    ref[n, ch, i, j] = (sv * (1 - cv) * x[n, ch, i, j]
                                        + (1 - sv) * cv * y[n, ch, i, j])
    assert_close(out, ref)


def test_bi_fusion_limits():
    x, y = torch.randn(1, 2, 3, 3), torch.randn(1, 2, 3, 3)
    one, zero = torch.ones(1, 1, 3, 3), torch.zeros(1, 2, 1, 1)
    assert_close(afa_bi_fusion(x, y, one, zero), x)  # s=1, c=0: only the shallow feature
    assert_close(afa_bi_fusion(x, y, 1 - one, 1 - zero), y)  # s=0, c=1: only the deep one
    assert_close(afa_bi_fusion(x, y, one, 1 - zero), torch.zeros_like(x))


def test_progressive_weights_product_reference():
    torch.manual_seed(1)
    att = [torch.rand(2, 1, 4, 3) for _ in range(4)]
    weights = progressive_weights(att)
    for k in range(4):
        ref = att[k].clone()
        for j in range(k + 1, 4):
            ref = ref * (1 - att[j])
        assert_close(weights[k], ref)
    # the weights and the leftover transmittance partition one
    leftover = torch.ones_like(att[0])
    for a in att:
        leftover = leftover * (1 - a)
    assert_close(sum(weights) + leftover, torch.ones_like(att[0]))
    assert_close(progressive_weights(att[:1])[0], att[0])
    with pytest.raises(ValueError, match='progressive_weights'):
        progressive_weights([])


def test_multi_fusion_reference_and_errors():
    torch.manual_seed(2)
    feats = [torch.randn(1, 3, 5, 6) for _ in range(3)]
    s = [torch.rand(1, 1, 5, 6) for _ in range(3)]
    c = [torch.rand(1, 3, 1, 1) for _ in range(3)]
    ref = (s[0] * (1 - s[1]) * (1 - s[2]) * c[0] * (1 - c[1]) * (1 - c[2]) * feats[0]
           + s[1] * (1 - s[2]) * c[1] * (1 - c[2]) * feats[1] + s[2] * c[2] * feats[2])
    assert_close(afa_multi_fusion(feats, s, c), ref)
    with pytest.raises(ValueError, match='afa_multi_fusion'):
        afa_multi_fusion(feats, s[:2], c)


def test_normalized_fusions_are_convex_combinations():
    torch.manual_seed(3)
    x, y = torch.randn(2, 3, 5, 7), torch.randn(2, 3, 5, 7)
    s, c = torch.rand(2, 1, 5, 7), torch.rand(2, 3, 1, 1)
    w_x, w_y = s * (1 - c), (1 - s) * c
    assert_close(afa_bi_fusion(x, y, s, c, normalize=True),
                 (w_x * x + w_y * y) / (w_x + w_y + 1e-6))
    # equal inputs come out unchanged (up to the 1e-6 of the denominator)
    assert_close(afa_bi_fusion(x, x, s, c, normalize=True), x, atol=1e-4, rtol=1e-4)
    feats = [torch.randn(2, 3, 4, 4) for _ in range(3)]
    sp = [torch.rand(2, 1, 4, 4) for _ in range(3)]
    ch = [torch.rand(2, 3, 1, 1) for _ in range(3)]
    weights = [a * b for a, b in zip(progressive_weights(sp), progressive_weights(ch))]
    ref = sum(w * f for w, f in zip(weights, feats)) / (sum(weights) + 1e-6)
    assert_close(afa_multi_fusion(feats, sp, ch, normalize=True), ref)
    assert_close(afa_multi_fusion(feats, sp, ch), sum(w * f for w, f in zip(weights, feats)))
