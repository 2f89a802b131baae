import os.path as osp

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.models.necks import FPN
from mmseg.registry import MODELS
from torch.testing import assert_close

import mmseg_fusion  # noqa: F401  (registers the models)
from mmseg_fusion.layers import AFF, IAFF

IN_CHANNELS = [4, 8, 16, 32]



def inputs(batch=2, h=23, w=29):
    torch.manual_seed(0)
    sizes = [(h, w)]
    for _ in range(3):
        sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
    return [torch.randn(batch, c, *s) for c, s in zip(IN_CHANNELS, sizes)]


FPN_VARIANTS = [
    dict(out_channels=8, num_outs=4),
    dict(out_channels=8, num_outs=6, add_extra_convs='on_input', relu_before_extra_convs=True),
    dict(out_channels=8, num_outs=5, start_level=1, add_extra_convs=True,
         norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'), no_norm_on_lateral=True),
    dict(out_channels=8, num_outs=3, start_level=1, end_level=4, add_extra_convs='on_lateral'),
    dict(out_channels=8, num_outs=5, upsample_cfg=dict(mode='bilinear', align_corners=False)),
    dict(out_channels=8, num_outs=4, upsample_cfg=dict(scale_factor=2, mode='nearest')),
]


@pytest.mark.parametrize('kwargs', FPN_VARIANTS)
def test_add_is_mmseg_fpn(kwargs):
    fpn = FPN(IN_CHANNELS, **kwargs)
    fpn.init_weights()
    neck = MODELS.build(dict(type='IAFFNeck', in_channels=IN_CHANNELS, fusion='add', **kwargs))
    neck.load_state_dict(fpn.state_dict(), strict=True)
    assert neck.state_dict().keys() == fpn.state_dict().keys()
    fpn.eval(), neck.eval()
    h, w = (24, 32) if 'scale_factor' in kwargs.get('upsample_cfg', {}) else (23, 29)
    x = inputs(h=h, w=w)
    ours, theirs = neck(x), fpn(x)
    assert len(ours) == len(theirs) == kwargs['num_outs']
    for a, b in zip(ours, theirs):
        assert_close(a, b)


@pytest.mark.parametrize('fusion,cls', [('iaff', IAFF), ('aff', AFF)])
def test_attentional_merges(fusion, cls):
    neck = MODELS.build(dict(type='IAFFNeck', in_channels=IN_CHANNELS, out_channels=8,
                             num_outs=5, fusion=fusion, reduction=2))
    assert len(neck.fusions) == 3 and all(isinstance(f, cls) for f in neck.fusions)
    # an FPN checkpoint initialises everything but the fusions
    fpn = FPN(IN_CHANNELS, 8, 5)
    missing, unexpected = neck.load_state_dict(fpn.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith('fusions.') for k in missing)
    outs = neck(inputs())
    assert [o.shape for o in outs] == [(2, 8, 23, 29), (2, 8, 12, 15), (2, 8, 6, 8),
                                       (2, 8, 3, 4), (2, 8, 2, 2)]
    sum(o.square().mean() for o in outs).backward()
    for name, p in neck.named_parameters():
        assert p.grad is not None, name
        if not name.endswith('conv.bias') or 'fusions' not in name:  # bias before BN: 0
            assert p.grad.abs().sum() > 0, name


def test_merge_order_and_fusion_argument():
    neck = MODELS.build(dict(type='IAFFNeck', in_channels=IN_CHANNELS[:2], out_channels=8,
                             num_outs=2, fusion='aff', reduction=2, aff_scale=1.0)).eval()
    x = inputs()[:2]
    lat0, lat1 = neck.lateral_convs[0](x[0]), neck.lateral_convs[1](x[1])
    top_down = torch.nn.functional.interpolate(lat1, size=lat0.shape[2:], mode='nearest')
    weights = neck.fusions[0].att.attention(lat0 + top_down)
    merged = lat0 * weights + top_down * (1 - weights)  # X = lateral, Y = top-down
    assert_close(neck(x)[0], neck.fpn_convs[0](merged))


def test_init_weights_is_xavier_on_every_conv():
    neck = MODELS.build(dict(type='IAFFNeck', in_channels=IN_CHANNELS, out_channels=8,
                             num_outs=4, reduction=2))
    for m in neck.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.constant_(m.weight, 7.)
            if m.bias is not None:
                torch.nn.init.constant_(m.bias, 7.)
    neck.init_weights()
    for name, m in neck.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            fan_out = m.out_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            bound = (6 / (fan_in + fan_out)) ** 0.5
            assert m.weight.abs().max() <= bound + 1e-6, name
            assert m.bias is None or (m.bias == 0).all(), name


@pytest.mark.parametrize('kwargs,match', [
    (dict(in_channels=[]), r"IAFFNeck: in_channels must be a non-empty list .* got \[\]"),
    (dict(in_channels=[4, 0, 16, 32]), r'IAFFNeck: in_channels must be a non-empty list of '
                                       r'positive ints .* got \[4, 0, 16, 32\]'),
    (dict(in_channels=[4, 8.0, 16, 32]), r'IAFFNeck: in_channels .* got \[4, 8.0, 16, 32\]'),
    (dict(in_channels=32), r'IAFFNeck: in_channels .* got 32'),
    (dict(out_channels=0), r'IAFFNeck: out_channels must be an int >= 1, got 0'),
    (dict(num_outs=0), r'IAFFNeck: num_outs must be an int >= 1, got 0'),
    (dict(out_channels=8, reduction=0), r'IAFFNeck: reduction must be a positive divisor of '
                                        r'out_channels \(8\), got 0'),
    (dict(fusion='cat'), r"IAFFNeck: fusion must be one of .* got 'cat'"),
    (dict(reduction=3), r'IAFFNeck: reduction must be a positive divisor of out_channels '
                        r'\(8\), got 3'),
    (dict(num_outs=3), r'IAFFNeck: num_outs must be >= the number of used levels \(4\), got 3'),
    (dict(end_level=5, num_outs=5), r'IAFFNeck: end_level must be in \(0, 4\]'),
    (dict(end_level=3), r'IAFFNeck: num_outs must equal end_level - start_level \(3\), got 4'),
    (dict(add_extra_convs='on_top'), r"IAFFNeck: add_extra_convs must be .* got 'on_top'"),
])
def test_bad_arguments(kwargs, match):
    cfg = dict(type='IAFFNeck', in_channels=IN_CHANNELS, out_channels=8, num_outs=4)
    cfg.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg)


def test_wrong_number_of_inputs():
    neck = MODELS.build(dict(type='IAFFNeck', in_channels=IN_CHANNELS, out_channels=8,
                             num_outs=4, reduction=2))
    with pytest.raises(ValueError, match='IAFFNeck: expected 4 inputs .* got 3'):
        neck(inputs()[:3])


@pytest.mark.parametrize('backbone', ['DLA', 'HRNet', 'MixVisionTransformer', 'ResNetV1c'])
def test_segmentor_with_backbone(backbone, tiny_backbones, segmentor_step):
    backbone_cfg, channels = tiny_backbones[backbone]
    segmentor_step(dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor'),
        backbone=backbone_cfg,
        neck=dict(type='IAFFNeck', in_channels=channels, out_channels=8, num_outs=len(channels),
                  reduction=2),
        decode_head=dict(type='FCNHead', in_channels=8, channels=8, num_convs=1,
                         in_index=0, num_classes=3, concat_input=False),
        auxiliary_head=dict(type='FCNHead', in_channels=8, channels=8,
                            num_convs=1, in_index=2, num_classes=3, concat_input=False),
        test_cfg=dict(mode='whole')))


CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__))))), 'configs', 'iaff')


def test_configs_build(method_configs):
    init_default_scope('mmseg')
    for name, cfg in method_configs('iaff', 6):
        cfg.model.pretrained = None
        cfg.model.backbone.pop('init_cfg', None)
        model = MODELS.build(cfg.model)
        assert type(model.neck).__name__ == 'IAFFNeck', name


@pytest.mark.slow
def test_synthetic_config_trains(tmp_path, train_tiny):
    config = osp.join(CONFIG_DIR, 'iaff_r18_1xb8-600_synthetic-128x128.py')
    train_tiny(config, str(tmp_path / 'work'))


def test_readme_lists_every_config(readme_config_links):
    linked, present = readme_config_links('iaff')
    assert linked == present
