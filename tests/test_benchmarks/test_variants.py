"""benchmarks/variants.py: the ablation-only options, moved out of the product classes.

The assertions are those the product tests made of the options when they lived in
``AFANeck(normalize=, node_conv=)`` and ``SSREncoderDecoder(fuse_log_probs=,
density_features=)``.
"""
import copy

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from torch.testing import assert_close

import mmseg_fusion  # noqa: F401
from mmseg_fusion.functional import fuse_scales
from mmseg_fusion.testing import level_inputs, seg_samples, tiny_ssr_config

SSR = tiny_ssr_config()


@pytest.fixture(scope='module')
def variants(benchmark_script):
    return benchmark_script('variants')


def build(**overrides):
    init_default_scope('mmseg')
    cfg = copy.deepcopy(SSR)
    cfg.update(overrides)
    return MODELS.build(cfg)


def samples(n, h, w):
    return seg_samples(n, h, w)


def test_normalized_and_conv_afa_fusions(variants):
    init_default_scope('mmseg')
    x = level_inputs([4, 8, 8])
    base = dict(type='AFANeck', in_channels=[4, 8, 8], reduction=2, fused_levels=2)
    plain = MODELS.build(base).eval()
    norm = MODELS.build(dict(base, fusion=dict(type='NormalizedAFAFusion'))).eval()
    norm.load_state_dict(plain.state_dict())  # the same parameters
    assert type(norm.final_fusion).__name__ == 'NormalizedMultiAFAFusion'
    assert all(type(node.node_1).__name__ == 'NormalizedAFAFusion' for node in norm.ida_nodes)
    with torch.no_grad():
        assert not torch.allclose(norm(x)[0], plain(x)[0])
    conv = MODELS.build(dict(base, fusion=dict(type='ConvAFAFusion')))
    # a 3x3 conv after every AFA fusion: one per node input, and the final one
    assert conv.ida_nodes[1].node_2.conv.conv.kernel_size == (3, 3)
    assert conv.final_fusion.conv.conv.kernel_size == (3, 3)
    outs = conv(x)
    assert outs[0].shape == (2, 4, 23, 29)
    sum(o.square().mean() for o in outs[:-1]).backward()
    assert all(p.grad is not None for p in conv.parameters())
    with torch.no_grad():
        conv.eval()
        # the same fusion as without the conv, then the conv
        no_conv = MODELS.build(base).eval()
        no_conv.load_state_dict(conv.state_dict(), strict=False)
        lvl = conv.ida_nodes[0].node_1.conv(no_conv.ida_nodes[0].node_1(
            x[1], torch.nn.functional.interpolate(x[2], size=x[1].shape[2:], mode='bilinear',
                                                  align_corners=False)))
        assert_close(conv(x)[2], lvl)


def test_log_prob_fusion_fuses_the_log_softmax(variants):
    torch.manual_seed(0)
    model = build(fusion=dict(type='LogProbSSRScaleFusion', terminal=False),
                  test_cfg=dict(mode='whole', scales=(0.5, 1.0))).eval()
    inputs = torch.randn(1, 3, 24, 24)
    with torch.no_grad():
        fused = model.inference(inputs, [dict(ori_shape=(24, 24))])
        per_scale = [model._scale_prediction(inputs, s) for s in (0.5, 1.0)]
    size = per_scale[0][1].shape[-2:]
    densities = [torch.nn.functional.interpolate(d, size=size, mode='bilinear',
                                                 align_corners=False) for _, d in per_scale]
    expected = fuse_scales([torch.log_softmax(p, 1) for p, _ in per_scale], densities, 'ssr',
                           terminal=model.fusion.terminal)
    assert_close(fused, expected)


def test_backbone_density_sees_the_head_input(variants):
    torch.manual_seed(0)
    model = build(type='BackboneDensitySSREncoderDecoder').eval()
    # the attention takes the backbone's last stage (the FCN head's input, 64 channels)
    assert model.scale_attention.in_channels == 64
    inputs = torch.randn(1, 3, 32, 40)
    half = torch.nn.functional.interpolate(inputs, size=(16, 20), mode='bilinear',
                                           align_corners=False)
    with torch.no_grad():
        density = model._decode(half, 0.5)[1]
        feat = model.extract_feat(half)[3]
        expected = model.scale_attention(torch.nn.functional.interpolate(
            feat, size=(4, 6), mode='bilinear', align_corners=False))
    assert_close(density, expected)
    model.train()
    losses = model.loss(torch.randn(2, 3, 24, 24), samples(2, 24, 24))
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert all(p.grad is not None for p in model.scale_attention.parameters())
    with pytest.raises(ValueError, match=r"scale_attention.in_channels must equal the decode "
                                         r"head's in_channels \(64, .*\), got 8"):
        build(type='BackboneDensitySSREncoderDecoder', scale_attention=dict(in_channels=8))
