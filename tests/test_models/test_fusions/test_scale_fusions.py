"""The registered scale fusions: streaming == the functional fusion; per-scale weights."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from torch.testing import assert_close

import mmseg_fusion  # noqa: F401
from mmseg_fusion.functional import (
    fuse_scales,
    hma_weights,
    scale_space_weights,
    softmax_scale_weights,
)

pytestmark = pytest.mark.usefixtures('one_thread')
CASES = [(dict(type='SSRScaleFusion'), 'ssr', dict(phi='abs', terminal=True)),
         (dict(type='SSRScaleFusion', phi='softplus', terminal=False), 'ssr',
          dict(phi='softplus', terminal=False)),
         (dict(type='HMAScaleFusion'), 'hma', {}),
         (dict(type='SoftmaxScaleFusion'), 'softmax', {}),
         (dict(type='MeanScaleFusion'), 'mean', {}),
         (dict(type='MaxScaleFusion'), 'max', {})]


def build(cfg):
    init_default_scope('mmseg')
    return MODELS.build(cfg)


def per_scale(num=3, h=13, w=17, dh=5, dw=7):
    torch.manual_seed(0)
    logits = [torch.randn(2, 4, h, w) for _ in range(num)]
    densities = [torch.randn(2, 1, dh, dw) * 2 for _ in range(num)]
    return logits, densities


def stream(fusion, logits, densities, keep_weights=False):
    state = fusion.init(keep_weights=keep_weights)
    for i, (p, d) in enumerate(zip(logits, densities)):
        fusion.update(state, p, d if fusion.needs_density else None, last=i == len(logits) - 1)
    return fusion.finish(state), fusion.weights(state)


@pytest.mark.parametrize('cfg, method, options', CASES)
def test_streaming_equals_the_functional_fusion(cfg, method, options):
    fusion = build(cfg)
    assert fusion.method == method and fusion.options() == options
    assert list(fusion.parameters()) == []
    logits, densities = per_scale()
    fused, _ = stream(fusion, logits, densities)
    expected = fuse_scales(logits, densities if fusion.needs_density else None, method,
                           **options)
    assert_close(fused, expected)
    assert fused.shape == (2, 4, 13, 17)


def test_per_scale_weights():
    logits, densities = per_scale()

    def up(ws):
        return torch.cat([F.interpolate(w, size=(13, 17), mode='bilinear',
                                        align_corners=False) for w in ws], dim=1)

    _, ssr = stream(build(dict(type='SSRScaleFusion', terminal=False)), logits, densities,
                    keep_weights=True)
    assert_close(ssr, up(scale_space_weights(densities, 'abs', terminal=False)))
    _, hma = stream(build(dict(type='HMAScaleFusion')), logits, densities, True)
    assert_close(hma, up(hma_weights(densities)))
    assert_close(hma.sum(1), torch.ones(2, 13, 17))
    _, soft = stream(build(dict(type='SoftmaxScaleFusion')), logits, densities, True)
    resized = [F.interpolate(d, size=(13, 17), mode='bilinear', align_corners=False)
               for d in densities]
    assert_close(soft, torch.cat(softmax_scale_weights(resized), dim=1))
    _, mean = stream(build(dict(type='MeanScaleFusion')), logits, densities, True)
    assert_close(mean, torch.full((2, 3, 13, 17), 1 / 3))
    assert stream(build(dict(type='MaxScaleFusion')), logits, densities, True)[1] is None
    # not kept unless asked
    assert stream(build(dict(type='HMAScaleFusion')), logits, densities)[1] is None


def test_density_head_activation_and_need():
    assert build(dict(type='SSRScaleFusion')).density_activation == 'abs'
    assert build(dict(type='SSRScaleFusion', phi='softplus')).density_activation is None
    assert build(dict(type='HMAScaleFusion')).density_activation is None
    needs = {t: build(dict(type=t)).needs_density for t in (
        'SSRScaleFusion', 'HMAScaleFusion', 'SoftmaxScaleFusion', 'MeanScaleFusion',
        'MaxScaleFusion')}
    assert needs == dict(SSRScaleFusion=True, HMAScaleFusion=True, SoftmaxScaleFusion=True,
                         MeanScaleFusion=False, MaxScaleFusion=False)
    assert 'terminal=True' in repr(build(dict(type='SSRScaleFusion')))


def test_bad_phi_names_the_component():
    with pytest.raises(ValueError, match="SSRScaleFusion: phi must be 'abs' or 'softplus', "
                                         "got 'relu'"):
        build(dict(type='SSRScaleFusion', phi='relu'))


def test_a_density_fusion_without_density_is_refused():
    fusion = build(dict(type='HMAScaleFusion'))
    with pytest.raises(ValueError, match="method 'hma' needs a density per scale"):
        fusion.update(fusion.init(), torch.zeros(1, 2, 3, 3))
