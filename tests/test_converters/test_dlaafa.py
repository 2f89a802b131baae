"""Official AFA checkpoint (dla-afa Lightning .ckpt) -> DLA + AFANeck + OCRBlockHead + SSR.

The synthetic checkpoints have the key names and shapes of the official code
(``afa_dla_ocr_seg_ssr.py``, ``necks/afa_dla_up.py``, ``necks/ocr.py``, ``utils/attn_utils.py``,
``utils/dla_utils.py``), written here from that structure (not from the converter's rules), with
random values, ``net.`` prefixes and ``hyper_parameters``. The reference forwards of the OCR
block, the scale-space attention and the level channel attention are written from the
official equations with ``bn_relu`` = BatchNorm + ReLU or InPlace-ABN (``|w| + eps``, leaky ReLU
0.01), reading the official keys.
"""
import os.path as osp
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

from mmseg_fusion.converters import (
    DLAAFA_CONFIGS,
    ConversionError,
    build_target_model,
    check_state_dict,
    convert_dlaafa,
    dlaafa_default_config,
)
from mmseg_fusion.converters.cli import converter_main

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'afa',
                  'afa-official_dla102x-ocr-ssr_8xb1-140k_cityscapes-1024x2048.py')
EPS = 1e-5
# small model: DLA-34 levels 1..5, OCR 16/8 channels, 3 classes
CHANS = (32, 64, 128, 256, 512)
MID, KEY, NCLS = 16, 8, 3


def small_config(tmp_path, iabn: bool) -> str:
    """The shipped config on DLA-34 with a small OCR head, BN instead of SyncBN."""
    act = "dict(type='LeakyReLU', negative_slope=0.01)" if iabn else "dict(type='ReLU')"
    heads = ',\n'.join(
        f"dict(type='FCNHead', in_channels={c}, in_index={i}, channels={c}, num_convs=0, "
        f"concat_input=False, dropout_ratio=0.0, num_classes={NCLS}, norm_cfg=norm_cfg, "
        "align_corners=False)"
        for i, c in ((4, CHANS[3]), (3, CHANS[2]), (2, CHANS[1]), (1, CHANS[0])))
    text = f"""_base_ = {CONFIG!r}
norm_cfg = dict(type='BN', requires_grad=True)
act_cfg = {act}
model = dict(
    data_preprocessor=dict(size=None),
    backbone=dict(arch='dla34', norm_cfg=norm_cfg),
    neck=dict(in_channels={list(CHANS)}, norm_cfg=norm_cfg, act_cfg=act_cfg),
    decode_head=dict(channels={MID}, ocr_channels={KEY}, num_classes={NCLS},
                     norm_cfg=norm_cfg, act_cfg=act_cfg),
    auxiliary_head=[{heads}],
    scale_attention=dict(act_cfg=act_cfg, norm_cfg=norm_cfg),
    test_cfg=dict(scales=(0.5, 1.0)))
"""
    path = tmp_path / f'small_{int(iabn)}.py'
    path.write_text(text)
    return str(path)


def add_conv(sd, name, cout, cin, k, bias=False):
    sd[f'{name}.weight'] = torch.randn(cout, cin, k, k) * (2.0 / (cin * k * k)) ** 0.5
    if bias:
        sd[f'{name}.bias'] = torch.randn(cout) * 0.1


def add_bn(sd, name, c, iabn):
    """BatchNorm2d or InPlace-ABN (signed weights: only |w| counts)."""
    w = torch.rand(c) * 0.5 + 0.5
    sd[f'{name}.weight'] = w * (torch.randint(0, 2, (c,)) * 2 - 1) if iabn else w
    sd[f'{name}.bias'] = torch.randn(c) * 0.1
    sd[f'{name}.running_mean'] = torch.randn(c) * 0.1
    sd[f'{name}.running_var'] = torch.rand(c) + 0.5
    sd[f'{name}.num_batches_tracked'] = torch.tensor(7)


def add_sa(sd, name, c, iabn):
    """SpatialAttentionModule(c, 1, c): conv/conv_inner = Sequential(conv3x3, bn_relu)."""
    for part in ('conv', 'conv_inner'):
        add_conv(sd, f'{name}.{part}.0', c, c, 3)
        add_bn(sd, f'{name}.{part}.1.0', c, iabn)
    add_conv(sd, f'{name}.final.0', 1, c, 1)


def add_ca(sd, name, c, iabn):
    """ChannelAttentionModule(c, c): conv1 = Sequential(1x1 c -> c/16, bn_relu), conv2."""
    add_conv(sd, f'{name}.conv1.0', c // 16, c, 1)
    add_bn(sd, f'{name}.conv1.1.0', c // 16, iabn)
    add_conv(sd, f'{name}.conv2.0', c, c // 16, 1)


def random_backbone_value(name, shape):
    """Random DLA weights that keep activations finite (He-scaled convs, valid BN stats)."""
    if not shape:
        return torch.tensor(3)
    if len(shape) == 4:
        return torch.randn(shape) * (1.0 / (shape[1] * shape[2] * shape[3])) ** 0.5
    if name.endswith('running_var'):
        return torch.rand(shape) + 0.5
    if name.endswith('weight'):
        return torch.rand(shape) * 0.5 + 0.5
    return torch.randn(shape) * 0.1


def official_state_dict(chans, backbone_keys, mid, key, ncls, iabn, seed=0):
    """``ckpt['state_dict']`` of ``afa_dla_ocr_seg_ssr`` (random values)."""
    torch.manual_seed(seed)
    sd = OrderedDict()
    for name, shape in backbone_keys:
        sd[f'backbone.base.{name}'] = random_backbone_value(name, shape)
    sd['backbone.base.fc.weight'] = torch.randn(1000, chans[-1], 1, 1)
    sd['backbone.base.fc.bias'] = torch.randn(1000)
    # DLA-Up: node j aggregates level L-2-j with j + 1 deeper (already aggregated) maps
    levels = len(chans)
    for j in range(levels - 1):
        out = chans[levels - 2 - j]
        ins = [out] + [chans[levels - 1 - j]] * (j + 1)
        node = f'backbone.afa_dla_up.afa_ida_{j}'
        for i, c in enumerate(ins):
            if c != out:
                add_conv(sd, f'{node}.proj_{i}.0', out, c, 1)
                add_bn(sd, f'{node}.proj_{i}.1.0', out, iabn)
            if i > 0:
                sd[f'{node}.up_{i}.weight'] = torch.rand(out, 1, 4, 4)
            if i > 0:
                add_sa(sd, f'{node}.sa_{i}', out, iabn)
                add_ca(sd, f'{node}.ca_{i}', out, iabn)
    high = chans[0]
    add_sa(sd, 'backbone.level_sa', high, iabn)
    add_ca(sd, 'backbone.level_ca', high, iabn)
    for name, c in (('proj_1', chans[2]), ('proj_2', chans[1])):
        add_conv(sd, f'backbone.{name}.0', high, c, 1)
        add_bn(sd, f'backbone.{name}.1.0', high, iabn)
    add_sa(sd, 'scale_space_attn', mid, iabn)
    add_conv(sd, 'ocr.conv3x3_ocr.0', mid, high, 3, bias=True)
    add_bn(sd, 'ocr.conv3x3_ocr.1.0', mid, iabn)
    ocb = 'ocr.ocr_distri_head.object_context_block'
    for f in ('f_pixel', 'f_object'):
        add_conv(sd, f'{ocb}.{f}.0', key, mid, 1)
        add_bn(sd, f'{ocb}.{f}.1.0', key, iabn)
        add_conv(sd, f'{ocb}.{f}.2', key, key, 1)
        add_bn(sd, f'{ocb}.{f}.3.0', key, iabn)
    add_conv(sd, f'{ocb}.f_down.0', key, mid, 1)
    add_bn(sd, f'{ocb}.f_down.1.0', key, iabn)
    add_conv(sd, f'{ocb}.f_up.0', mid, key, 1)
    add_bn(sd, f'{ocb}.f_up.1.0', mid, iabn)
    add_conv(sd, 'ocr.ocr_distri_head.conv_bn_dropout.0', mid, 2 * mid, 1)
    add_bn(sd, 'ocr.ocr_distri_head.conv_bn_dropout.1.0', mid, iabn)
    add_conv(sd, 'ocr.cls_head', ncls, mid, 1, bias=True)
    add_conv(sd, 'ocr.aux_head.0', high, high, 1, bias=True)
    add_bn(sd, 'ocr.aux_head.1.0', high, iabn)
    add_conv(sd, 'ocr.aux_head.2', ncls, high, 1, bias=True)
    # deep supervision fc_k on the DLA-Up outputs at strides 16, 8, 4, 2 and fixed upsamplers
    for k, (c, factor) in enumerate(((chans[3], 16), (chans[2], 8), (chans[1], 4),
                                     (chans[0], 2)), start=1):
        add_conv(sd, f'fc_{k}.0', ncls, c, 1, bias=True)
        sd[f'up_{k}.weight'] = torch.rand(ncls, 1, 2 * factor, 2 * factor)
    return OrderedDict((f'net.{k}', v) for k, v in sd.items())


def lightning_checkpoint(state_dict, iabn, arch='dla34'):
    return {'state_dict': state_dict, 'epoch': 374, 'global_step': 139000,
            'pytorch-lightning_version': '1.6.5',
            'hyper_parameters': {'arch': f'afa_dla_ocr_seg_ssr.{arch}', 'inplace_abn': iabn,
                                 'dataset': 'cityscapes', 'lr': 0.01}}


def dla_keys(arch):
    from mmseg_fusion.models import DLA
    return [(k, tuple(v.shape)) for k, v in DLA(arch=arch).state_dict().items()]


@pytest.fixture(scope='module')
def small_backbone_keys():
    return dla_keys('dla34')


def bn_act(sd, name, x, iabn):
    """Official bn_relu at inference: BatchNorm2d + ReLU, or InPlace-ABN (+ leaky 0.01)."""
    w = sd[f'{name}.weight']
    w = w.abs() + EPS if iabn else w
    x = F.batch_norm(x, sd[f'{name}.running_mean'], sd[f'{name}.running_var'], w,
                     sd[f'{name}.bias'], False, 0.0, EPS)
    return F.leaky_relu(x, 0.01) if iabn else F.relu(x)


def conv(sd, name, x, padding=0):
    return F.conv2d(x, sd[f'{name}.weight'], sd.get(f'{name}.bias'), padding=padding)


def official_sa(sd, name, x, iabn):
    """SpatialAttentionModule logits (before sigmoid/abs)."""
    x = bn_act(sd, f'{name}.conv.1.0', conv(sd, f'{name}.conv.0', x, 1), iabn)
    x = bn_act(sd, f'{name}.conv_inner.1.0', conv(sd, f'{name}.conv_inner.0', x, 1), iabn)
    return conv(sd, f'{name}.final.0', x)


def official_ca(sd, name, x, iabn):
    def mlp(v):
        v = bn_act(sd, f'{name}.conv1.1.0', conv(sd, f'{name}.conv1.0', v), iabn)
        return conv(sd, f'{name}.conv2.0', v)
    return torch.sigmoid(mlp(F.adaptive_avg_pool2d(x, 1)) + mlp(F.adaptive_max_pool2d(x, 1)))


def official_ocr(sd, x, iabn):
    """OCRBlock: (cls_out, aux_out, ocr_feats) of the official code, at inference."""
    n = x.shape[0]
    feats = bn_act(sd, 'ocr.conv3x3_ocr.1.0', conv(sd, 'ocr.conv3x3_ocr.0', x, 1), iabn)
    aux = conv(sd, 'ocr.aux_head.2',
               bn_act(sd, 'ocr.aux_head.1.0', conv(sd, 'ocr.aux_head.0', x), iabn))
    # SpatialGather: per class, softmax over pixels, weighted mean of the features
    probs = F.softmax(aux.flatten(2), dim=2)                        # (N, K, HW)
    context = (probs @ feats.flatten(2).transpose(1, 2))            # (N, K, C)
    proxy = context.transpose(1, 2).unsqueeze(3)                     # (N, C, K, 1)
    ocb = 'ocr.ocr_distri_head.object_context_block'

    def two(name, v):
        v = bn_act(sd, f'{ocb}.{name}.1.0', conv(sd, f'{ocb}.{name}.0', v), iabn)
        return bn_act(sd, f'{ocb}.{name}.3.0', conv(sd, f'{ocb}.{name}.2', v), iabn)

    query = two('f_pixel', feats).flatten(2).transpose(1, 2)        # (N, HW, key)
    key = two('f_object', proxy).flatten(2)                         # (N, key, K)
    value = bn_act(sd, f'{ocb}.f_down.1.0', conv(sd, f'{ocb}.f_down.0', proxy),
                   iabn).flatten(2).transpose(1, 2)                 # (N, K, key)
    sim = F.softmax(query @ key * KEY ** -0.5, dim=-1)
    ctx = (sim @ value).transpose(1, 2).reshape(n, KEY, *feats.shape[2:])
    ctx = bn_act(sd, f'{ocb}.f_up.1.0', conv(sd, f'{ocb}.f_up.0', ctx), iabn)
    out = conv(sd, 'ocr.ocr_distri_head.conv_bn_dropout.0', torch.cat([ctx, feats], 1))
    ocr_feats = bn_act(sd, 'ocr.ocr_distri_head.conv_bn_dropout.1.0', out, iabn)
    return conv(sd, 'ocr.cls_head', ocr_feats), aux, ocr_feats


@pytest.mark.parametrize('iabn', [False, True])
def test_convert_and_compare_with_official_forward(iabn, tmp_path, small_backbone_keys):
    official = official_state_dict(CHANS, small_backbone_keys, MID, KEY, NCLS, iabn)
    converted, unmapped = convert_dlaafa(lightning_checkpoint(official, iabn))
    model = build_target_model(small_config(tmp_path, iabn)).eval()
    check_state_dict(converted, model, unmapped)  # strict: every key and shape
    sd = OrderedDict((k[len('net.'):], v) for k, v in official.items())
    torch.manual_seed(1)
    x = torch.randn(2, CHANS[0], 9, 13)
    with torch.no_grad():
        cls_ref, aux_ref, feats_ref = official_ocr(sd, x, iabn)
        cls, extras = model.decode_head.forward_with_extras([x])
        aux = extras['aux_ocr']
        torch.testing.assert_close(cls, cls_ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(aux, aux_ref, rtol=1e-4, atol=1e-5)
        # SSR's density: |scale_space_attn(ocr_feats)|
        torch.testing.assert_close(model.scale_attention(feats_ref),
                                   official_sa(sd, 'scale_space_attn', feats_ref, iabn).abs(),
                                   rtol=1e-4, atol=1e-5)
        y = torch.randn(2, CHANS[0], 9, 13)
        torch.testing.assert_close(model.neck.final_fusion.ca(y),
                                   official_ca(sd, 'backbone.level_ca', y, iabn),
                                   rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(
            model.neck.ida_nodes[1].node_2.sa(torch.randn(1, CHANS[2], 5, 7).abs()).shape,
            (1, 1, 5, 7))
    # the whole model runs on the converted weights, SSR over two scales
    img = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        logits = model.inference(img, [dict(img_shape=(64, 96), ori_shape=(64, 96))])
    assert logits.shape == (1, NCLS, 64, 96) and torch.isfinite(logits).all()


def test_inplace_abn_only_outside_the_backbone(small_backbone_keys):
    official = official_state_dict(CHANS, small_backbone_keys, MID, KEY, NCLS, True)
    converted, _ = convert_dlaafa(lightning_checkpoint(official, True))
    src = official['net.backbone.afa_dla_up.afa_ida_0.proj_1.1.0.weight']
    torch.testing.assert_close(converted['neck.ida_nodes.0.proj_1.bn.weight'], src.abs() + EPS)
    bb = 'level2.tree1.bn1.weight'
    assert torch.equal(converted[f'backbone.{bb}'], official[f'net.backbone.base.{bb}'])
    plain, _ = convert_dlaafa(lightning_checkpoint(official, False))
    assert torch.equal(plain['neck.ida_nodes.0.proj_1.bn.weight'], src)
    # an explicit flavour overrides the recorded one
    forced, _ = convert_dlaafa(lightning_checkpoint(official, False), inplace_abn=True)
    assert torch.equal(forced['neck.ida_nodes.0.proj_1.bn.weight'], src.abs() + EPS)


def test_default_config_from_hyper_parameters():
    ckpt = lightning_checkpoint({}, False, arch='dla102x')
    assert dlaafa_default_config(ckpt).endswith(DLAAFA_CONFIGS[('dla102x', False)])
    ckpt['hyper_parameters']['inplace_abn'] = True
    assert dlaafa_default_config(ckpt).endswith(DLAAFA_CONFIGS[('dla102x', True)])
    ckpt['hyper_parameters']['arch'] = 'afa_dla_ocr_seg_ssr.dla169'
    assert dlaafa_default_config(ckpt).endswith(DLAAFA_CONFIGS[('dla169', True)])
    for (arch, _), name in DLAAFA_CONFIGS.items():
        assert osp.isfile(osp.join(ROOT, 'configs', 'afa', name))
        assert arch in name
    with pytest.raises(ConversionError, match="no shipped config for arch 'dla34'"):
        dlaafa_default_config(lightning_checkpoint({}, True))
    del ckpt['hyper_parameters']['inplace_abn']
    with pytest.raises(ConversionError, match='pass --inplace-abn'):
        dlaafa_default_config(ckpt)


def test_errors(small_backbone_keys, tmp_path):
    official = official_state_dict(CHANS, small_backbone_keys, MID, KEY, NCLS, False)
    with pytest.raises(ConversionError, match='expected an official dla-afa'):
        convert_dlaafa({'state_dict': {'net.conv.weight': torch.zeros(1)},
                        'hyper_parameters': {'inplace_abn': False}})
    no_ocr = OrderedDict((k, v) for k, v in official.items() if not k.startswith('net.ocr.'))
    with pytest.raises(ConversionError, match='only the released segmentation models'):
        convert_dlaafa(lightning_checkpoint(no_ocr, False))
    with pytest.raises(ConversionError, match='pass --inplace-abn'):
        convert_dlaafa({'state_dict': official})
    # a missing key, an unknown key and a wrong shape are all listed
    broken = OrderedDict(official)
    del broken['net.ocr.cls_head.bias']
    broken['net.ocr.extra.weight'] = torch.zeros(1)
    broken['net.backbone.level_sa.final.0.weight'] = torch.zeros(1, 3, 1, 1)
    converted, unmapped = convert_dlaafa(lightning_checkpoint(broken, False))
    model = build_target_model(small_config(tmp_path, False))
    with pytest.raises(ConversionError) as err:
        check_state_dict(converted, model, unmapped)
    msg = str(err.value)
    assert 'ocr.extra.weight' in msg and 'decode_head.conv_seg.bias' in msg
    assert 'neck.final_fusion.sa.final.weight: converted (1, 3, 1, 1)' in msg


def test_cli_on_a_small_model(small_backbone_keys, tmp_path, capsys):
    official = official_state_dict(CHANS, small_backbone_keys, MID, KEY, NCLS, True)
    src, dst = tmp_path / 'afa.ckpt', tmp_path / 'afa_fusion.pth'
    ckpt = lightning_checkpoint(official, True)
    del ckpt['hyper_parameters']['inplace_abn']
    torch.save(ckpt, src)
    cfg = small_config(tmp_path, True)
    argv = [str(src), str(dst), '--config', cfg]
    assert converter_main('AFA', convert_dlaafa, dlaafa_default_config, 't', argv) == 1
    assert 'pass --inplace-abn' in capsys.readouterr().err and not dst.exists()
    argv += ['--inplace-abn', 'true']
    options = [(('--inplace-abn',), dict(type=lambda s: s == 'true', dest='inplace_abn'))]
    assert converter_main('AFA', convert_dlaafa, dlaafa_default_config, 't', argv,
                          options=options) == 0
    out = torch.load(dst, weights_only=True)
    assert out['meta']['converted_from'] == 'AFA' and out['meta']['config'] == osp.basename(cfg)
    assert converter_main('AFA', convert_dlaafa, dlaafa_default_config, 't', argv,
                          options=options) == 1
    assert 'refusing to overwrite' in capsys.readouterr().err


@pytest.mark.slow
def test_full_size_release_through_the_tool(tmp_path, run_tool):
    """A full-size DLA-X-102 checkpoint converts into the shipped config chosen by the tool."""
    register_all_modules()
    official = official_state_dict((32, 128, 256, 512, 1024), dla_keys('dla102x'), 256, 128,
                                   19, False)
    src, dst = tmp_path / 'afa_dla_up_ocr_ssr_dla102x.ckpt', tmp_path / 'afa.pth'
    torch.save(lightning_checkpoint(official, False, arch='dla102x'), src)
    del official
    tool = osp.join(ROOT, 'tools', 'model_converters', 'dlaafa2fusion.py')
    proc = run_tool([tool, str(src), str(dst)])
    assert DLAAFA_CONFIGS[('dla102x', False)] in proc.stdout
    ckpt = torch.load(dst, weights_only=True)
    cfg = Config.fromfile(CONFIG)
    model = MODELS.build(cfg.model)
    model.load_state_dict(ckpt['state_dict'], strict=True)
    assert ckpt['meta']['config'] == osp.basename(CONFIG)
