import os.path as osp

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from torch.testing import assert_close

import mmseg_fusion  # noqa: F401  (registers the models)
from mmseg_fusion import testing
from mmseg_fusion.layers import BiAFA, MultiAFA

IN_CHANNELS = [8, 16, 32, 64]



def level_inputs(channels=IN_CHANNELS, batch=2, h=23, w=29):
    return testing.level_inputs(channels, batch, h, w)


@pytest.mark.parametrize('fusion', ['afa', 'concat', 'add'])
def test_shapes_at_odd_sizes_and_gradients(fusion):
    neck = MODELS.build(dict(type='AFANeck', in_channels=IN_CHANNELS, fusion=fusion,
                             reduction=4))
    x = level_inputs()
    outs = neck(x)
    assert len(outs) == 5
    assert outs[0].shape == (2, 8, 23, 29)
    assert [o.shape for o in outs[1:]] == [t.shape for t in x]
    assert outs[-1] is x[-1]
    sum(o.square().mean() for o in outs[:-1]).backward()
    for name, p in neck.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_structure_matches_official_dla102():
    # DLA-102 levels 1..5: the official afa_ida_0..3 and the fusion of the stride 8, 4, 2 maps
    neck = MODELS.build(dict(type='AFANeck', in_channels=[32, 128, 256, 512, 1024]))
    expected = [(512, [512, 1024]), (256, [256, 512, 512]), (128, [128, 256, 256, 256]),
                (32, [32, 128, 128, 128, 128])]
    for node, (out, ins) in zip(neck.ida_nodes, expected):
        assert node.num_inputs == len(ins)
        for i, c in enumerate(ins):
            proj = getattr(node, f'proj_{i}')
            if c == out:
                assert isinstance(proj, torch.nn.Identity)
            else:
                assert (proj.conv.in_channels, proj.conv.out_channels) == (c, out)
        assert all(isinstance(getattr(node, f'node_{i}'), BiAFA) for i in range(1, len(ins)))
    assert isinstance(neck.final_fusion, MultiAFA)
    assert [type(p).__name__ for p in neck.fuse_projs] == ['ConvModule', 'ConvModule',
                                                          'Identity']
    assert neck.fuse_projs[0].conv.in_channels == 256  # stride-8 level, deepest first
    assert neck.final_fusion.sa.in_channels == 32


def test_forward_follows_the_equations():
    neck = MODELS.build(dict(type='AFANeck', in_channels=[4, 8, 8], reduction=2,
                             fused_levels=2)).eval()
    x = level_inputs([4, 8, 8])
    outs = neck(x)

    def up(t, size):
        return torch.nn.functional.interpolate(t, size=size, mode='bilinear',
                                               align_corners=False)

    deep_node, shallow_node = neck.ida_nodes
    # node of level 1: [x1, x2] -> x1 fused with x2 (same channels, no projection)
    lvl1 = deep_node.node_1(x[1], up(x[2], x[1].shape[2:]))
    assert_close(outs[2], lvl1)
    # node of level 0: [x0, x1, lvl1] projected to 4 channels, folded in order
    size = x[0].shape[2:]
    a = shallow_node.node_1(x[0], up(shallow_node.proj_1(x[1]), size))
    b = shallow_node.node_2(a, up(shallow_node.proj_2(lvl1), size))
    assert_close(outs[1], b)
    fused = neck.final_fusion([up(neck.fuse_projs[0](lvl1), size), b])
    assert_close(outs[0], fused)
    assert_close(outs[3], x[2])


def test_init_weights_is_kaiming_fan_in():
    neck = MODELS.build(dict(type='AFANeck', in_channels=[64, 128], fused_levels=1))
    convs = [m for m in neck.modules() if isinstance(m, torch.nn.Conv2d)]
    for m in convs:
        torch.nn.init.zeros_(m.weight)
    neck.init_weights()
    big = neck.ida_nodes[0].node_1.sa.conv.conv  # 64 -> 64, 3x3: 576 inputs per output
    assert 0.8 < big.weight.std().item() / (2 / 576) ** 0.5 < 1.2
    assert all(m.weight.abs().sum() > 0 for m in convs)


@pytest.mark.parametrize('kwargs,match', [
    (dict(in_channels=[8]), r'AFANeck: in_channels must be a list of at least 2 positive ints '
                            r'\(one per backbone level\), got \[8\]'),
    (dict(in_channels=[8, -16, 32, 64]), r'AFANeck: in_channels must be a list of at least 2 '
                                         r'positive ints .* got \[8, -16, 32, 64\]'),
    (dict(in_channels=[8, True, 32, 64]), r'AFANeck: in_channels .* got \[8, True, 32, 64\]'),
    (dict(in_channels=(8, )), r'AFANeck: in_channels .* got \(8,\)'),
    (dict(fused_channels=0), r'AFANeck: fused_channels must be None or an int >= 1, got 0'),
    (dict(reduction=0), r'AFANeck: reduction must be in \[1, 8\] .*got 0'),
    (dict(fusion='sum'), r"AFANeck: fusion must be one of \('afa', 'aff', 'iaff', 'concat', "
                         r"'add'\), got 'sum'"),
    (dict(fused_levels=4), r'AFANeck: fused_levels must be an int in \[1, 3\] for 4 '
                           r'in_channels, got 4'),
    (dict(reduction=16), r'AFANeck: reduction must be in \[1, 8\] .*in_channels\), got 16'),
])
def test_bad_arguments(kwargs, match):
    cfg = dict(type='AFANeck', in_channels=IN_CHANNELS, reduction=4)
    cfg.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg)


def test_wrong_number_of_inputs():
    neck = MODELS.build(dict(type='AFANeck', in_channels=IN_CHANNELS, reduction=4))
    with pytest.raises(ValueError, match='AFANeck: expected 4 inputs .* got 3'):
        neck(level_inputs()[:3])


@pytest.mark.parametrize('backbone', ['DLA', 'HRNet', 'MixVisionTransformer', 'ResNetV1c'])
def test_segmentor_with_backbone(backbone, tiny_backbones, segmentor_step):
    backbone_cfg, channels = tiny_backbones[backbone]
    segmentor_step(dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor'),
        backbone=backbone_cfg,
        neck=dict(type='AFANeck', in_channels=channels, reduction=4),
        decode_head=dict(type='FCNHead', in_channels=channels[0], channels=8, num_convs=1,
                         in_index=0, num_classes=3, concat_input=False),
        auxiliary_head=dict(type='FCNHead', in_channels=channels[1], channels=8,
                            num_convs=1, in_index=2, num_classes=3, concat_input=False),
        test_cfg=dict(mode='whole')))


CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__))))), 'configs', 'afa')


def test_configs_build(method_configs):
    init_default_scope('mmseg')
    for name, cfg in method_configs('afa', 9):
        cfg.model.pretrained = None
        cfg.model.backbone.pop('init_cfg', None)
        model = MODELS.build(cfg.model)
        assert type(model.neck).__name__ == 'AFANeck', name


@pytest.mark.slow
def test_synthetic_config_trains(tmp_path, train_tiny):
    config = osp.join(CONFIG_DIR, 'afa_r18_1xb8-600_synthetic-128x128.py')
    train_tiny(config, str(tmp_path / 'work'))


def test_deconv_upsampling_is_the_official_bilinear_kernel():
    from mmseg_fusion.models.necks.afa_neck import bilinear_deconv
    up = bilinear_deconv(3)
    assert tuple(up.weight.shape) == (3, 1, 4, 4) and up.bias is None
    x = torch.randn(1, 3, 6, 7)
    ref = torch.nn.functional.interpolate(x, scale_factor=2, mode='bilinear',
                                          align_corners=False)
    out = up(x)
    assert out.shape == ref.shape
    assert_close(out[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1])  # borders: zero padding


@pytest.mark.parametrize('fusion', ['afa', 'concat'])
def test_deconv_mode_keys_odd_sizes_and_init(fusion):
    neck = MODELS.build(dict(type='AFANeck', in_channels=IN_CHANNELS, fusion=fusion,
                             reduction=4, upsample='deconv'))
    keys = neck.state_dict().keys()
    # official names inside a node: proj_{i}, up_{i} (i >= 1)
    assert 'ida_nodes.0.up_1.weight' in keys and 'ida_nodes.2.up_3.weight' in keys
    assert 'ida_nodes.0.up_0.weight' not in keys
    up = neck.ida_nodes[2].up_3
    torch.nn.init.zeros_(up.weight)
    neck.init_weights()
    assert_close(up.weight[0, 0, 1], torch.tensor([0.1875, 0.5625, 0.5625, 0.1875]))
    x = level_inputs()
    outs = neck(x)
    assert outs[0].shape == (2, 8, 23, 29)
    assert [o.shape for o in outs[1:]] == [t.shape for t in x]
    sum(o.square().mean() for o in outs[:-1]).backward()
    assert all(p.grad is not None for p in neck.parameters())
    with pytest.raises(ValueError, match="AFANeck: upsample must be one of .* got 'nearest'"):
        MODELS.build(dict(type='AFANeck', in_channels=IN_CHANNELS, upsample='nearest'))


def test_readme_lists_every_config(readme_config_links):
    linked, present = readme_config_links('afa')
    assert linked == present


@pytest.mark.parametrize('upsample', ['deconv', 'bilinear'])
def test_trace_at_even_size_serves_odd_sizes(upsample):
    # a deconv doubles the size: equal to the shallower level at even sizes only, so a trace
    # must record the resize although it is an identity at the traced size
    neck = MODELS.build(dict(type='AFANeck', in_channels=IN_CHANNELS, reduction=4,
                             upsample=upsample)).eval()
    with torch.no_grad():
        traced = torch.jit.trace(neck, (level_inputs(batch=1, h=24, w=32), ),
                                 check_trace=False, strict=False)
        for h, w in [(24, 32), (23, 29), (17, 21)]:
            x = level_inputs(batch=1, h=h, w=w)
            for got, want in zip(traced(x), neck(x)):
                assert_close(got, want)
