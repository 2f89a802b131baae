"""The registered pair and level fusions: AFA, AFF, iAFF, concat, add."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from torch.testing import assert_close

import mmseg_fusion  # noqa: F401
from mmseg_fusion.functional import afa_bi_fusion, afa_multi_fusion
from mmseg_fusion.layers import AFF, IAFF, BiAFA, MultiAFA
from mmseg_fusion.models.fusions import build_fusion

pytestmark = pytest.mark.usefixtures('one_thread')


def build(**cfg):
    init_default_scope('mmseg')
    return MODELS.build(cfg).eval()


def pair(c=8, h=23, w=29):
    torch.manual_seed(0)
    return torch.randn(2, c, h, w), torch.randn(2, c, h, w)


def test_afa_fusion_is_the_bi_input_afa():
    fusion = build(type='AFAFusion', channels=8, reduction=2)
    assert isinstance(fusion, BiAFA) and fusion.multi_input_type == 'MultiAFAFusion'
    assert {k.split('.')[0] for k in fusion.state_dict()} == {'sa', 'ca'}
    x, y = pair()
    with torch.no_grad():
        assert_close(fusion(x, y), afa_bi_fusion(x, y, fusion.sa(x), fusion.ca(y)))


def test_multi_afa_fusion_is_the_progressive_afa():
    fusion = build(type='MultiAFAFusion', channels=8, reduction=2)
    assert isinstance(fusion, MultiAFA) and fusion.level_fusion
    feats = list(pair()) + [torch.randn(2, 8, 23, 29)]
    with torch.no_grad():
        expected = afa_multi_fusion(feats, [fusion.sa(f) for f in feats],
                                    [fusion.ca(f) for f in feats])
        assert_close(fusion(feats), expected)


@pytest.mark.parametrize('name, layer, kwargs', [
    ('AFFFusion', AFF, dict(scale=1.0)), ('IAFFFusion', IAFF, {})])
def test_aff_fusions_are_the_layers(name, layer, kwargs):
    fusion = build(type=name, channels=8, reduction=2, **kwargs)
    ref = layer(8, 2, **kwargs).eval()
    ref.load_state_dict(fusion.state_dict(), strict=True)
    x, y = pair()
    with torch.no_grad():
        assert_close(fusion(x, y), ref(x, y))


def test_add_fusion_sums_a_pair_or_a_list():
    add = build(type='AddFusion')
    x, y = pair()
    assert_close(add(x, y), x + y)
    assert list(add.parameters()) == []
    three = build(type='AddFusion', num_inputs=3)
    assert_close(three([x, y, x]), 2 * x + y)
    with pytest.raises(ValueError, match=r'AddFusion: expected 3 inputs \(num_inputs\), got 2'):
        three(x, y)
    with pytest.raises(ValueError, match='AddFusion: num_inputs must be an int >= 1, got 0'):
        build(type='AddFusion', num_inputs=0)


def test_concat_fusion_is_a_conv_module_on_the_concatenation():
    fusion = build(type='ConcatFusion', channels=4, num_inputs=3)
    # the keys of the former 'concat' nodes (a ConvModule): conv.weight, bn.*
    assert set(fusion.state_dict()) == {'conv.weight', 'bn.weight', 'bn.bias',
                                        'bn.running_mean', 'bn.running_var',
                                        'bn.num_batches_tracked'}
    feats = [torch.randn(2, 4, 9, 11) for _ in range(3)]
    with torch.no_grad():
        cat = torch.cat(feats, dim=1)
        expected = torch.relu(fusion.bn(torch.nn.functional.conv2d(
            cat, fusion.conv.weight, padding=1)))
        assert_close(fusion(feats), expected)
        assert fusion(*feats).shape == (2, 4, 9, 11)
    with pytest.raises(ValueError, match='ConcatFusion: channels must be an int >= 1, got 0'):
        build(type='ConcatFusion', channels=0)


@pytest.mark.parametrize('name', ['AFAFusion', 'AFFFusion', 'IAFFFusion', 'ConcatFusion',
                                  'AddFusion'])
def test_every_pair_fusion_keeps_the_shape_and_passes_gradients(name):
    init_default_scope('mmseg')
    # what a neck offers; each fusion takes the arguments its constructor names
    fusion = build_fusion(dict(type=name), 'test', channels=8, reduction=2)
    fusion.train()
    x, y = (t.requires_grad_() for t in pair(h=7, w=9))
    out = fusion(x, y)
    assert out.shape == (2, 8, 7, 9)
    out.square().mean().backward()
    assert x.grad.abs().sum() > 0 and y.grad.abs().sum() > 0
    for pname, p in fusion.named_parameters():
        assert p.grad is not None, pname
