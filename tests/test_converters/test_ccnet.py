"""Official CCNet checkpoint -> ccnet-official (RCCAHead): key map, InPlace-ABN, same outputs.

The synthetic checkpoint has the key names and shapes of the official 2018 release
(``networks/ccnet.py``: bare ``ResNet(Bottleneck, [3, 4, 23, 3], 19).state_dict()``, InPlace-ABN
layers without ``num_batches_tracked``, signed ABN weights) with random values. The reference
forward is written from the official equations: InPlace-ABN = BN with ``|w| + eps`` followed by
identity (backbone) or LeakyReLU(0.01) (heads); criss-cross attention as an explicit loop over
each pixel's column and row (the pixel counted once), ``gamma * out + x``, applied twice.
"""
import os.path as osp
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from mmengine.model import revert_sync_batchnorm

from mmseg_fusion.converters import (
    ConversionError,
    build_target_model,
    check_state_dict,
    convert_ccnet,
    inplace_abn_to_bn,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'ccnet', 'ccnet-official_r101-d8_4xb2-60k_cityscapes-769x769.py')
# official ResNet-101, output stride 8, no dilation contraction: (planes, blocks, stride, dil.)
LAYERS = ((64, 3, 1, 1), (128, 4, 2, 1), (256, 23, 1, 2), (512, 3, 1, 4))
EPS = 1e-5


def add_conv(sd, name, cout, cin, k, bias=False):
    sd[f'{name}.weight'] = torch.randn(cout, cin, k, k) * (1.0 / (cin * k * k)) ** 0.5
    if bias:
        sd[f'{name}.bias'] = torch.randn(cout) * 0.1


def add_abn(sd, name, c):
    """InPlace-ABN: signed weights (only |w| counts), no num_batches_tracked."""
    sd[f'{name}.weight'] = (torch.rand(c) * 0.5 + 0.5) * (torch.randint(0, 2, (c,)) * 2 - 1)
    sd[f'{name}.bias'] = torch.randn(c) * 0.1
    sd[f'{name}.running_mean'] = torch.randn(c) * 0.1
    sd[f'{name}.running_var'] = torch.rand(c) + 0.5


def official_ccnet_state_dict(num_classes=19):
    torch.manual_seed(0)
    sd = OrderedDict()
    add_conv(sd, 'conv1', 64, 3, 3)
    add_abn(sd, 'bn1', 64)
    add_conv(sd, 'conv2', 64, 64, 3)
    add_abn(sd, 'bn2', 64)
    add_conv(sd, 'conv3', 128, 64, 3)
    add_abn(sd, 'bn3', 128)
    inplanes = 128
    for idx, (planes, blocks, _, _) in enumerate(LAYERS):
        for b in range(blocks):
            p = f'layer{idx + 1}.{b}'
            add_conv(sd, f'{p}.conv1', planes, inplanes, 1)
            add_abn(sd, f'{p}.bn1', planes)
            add_conv(sd, f'{p}.conv2', planes, planes, 3)
            add_abn(sd, f'{p}.bn2', planes)
            add_conv(sd, f'{p}.conv3', planes * 4, planes, 1)
            add_abn(sd, f'{p}.bn3', planes * 4)
            if b == 0:
                add_conv(sd, f'{p}.downsample.0', planes * 4, inplanes, 1)
                add_abn(sd, f'{p}.downsample.1', planes * 4)
            inplanes = planes * 4
    add_conv(sd, 'head.conva.0', 512, 2048, 3)
    add_abn(sd, 'head.conva.1', 512)
    add_conv(sd, 'head.cca.query_conv', 64, 512, 1, bias=True)
    add_conv(sd, 'head.cca.key_conv', 64, 512, 1, bias=True)
    add_conv(sd, 'head.cca.value_conv', 512, 512, 1, bias=True)
    sd['head.cca.gamma'] = torch.tensor([0.7])
    add_conv(sd, 'head.convb.0', 512, 512, 3)
    add_abn(sd, 'head.convb.1', 512)
    add_conv(sd, 'head.bottleneck.0', 512, 2560, 3)
    add_abn(sd, 'head.bottleneck.1', 512)
    add_conv(sd, 'head.bottleneck.3', num_classes, 512, 1, bias=True)
    add_conv(sd, 'dsn.0', 512, 1024, 3, bias=True)
    add_abn(sd, 'dsn.1', 512)
    add_conv(sd, 'dsn.3', num_classes, 512, 1, bias=True)
    return sd


def abn(x, sd, name, leaky):
    """InPlace-ABN forward: (x - mean) / sqrt(var + eps) * (|w| + eps) + b, then activation."""
    shape = (1, -1, 1, 1)
    scale = (sd[f'{name}.weight'].abs() + EPS) / torch.sqrt(sd[f'{name}.running_var'] + EPS)
    y = ((x - sd[f'{name}.running_mean'].view(shape)) * scale.view(shape)
         + sd[f'{name}.bias'].view(shape))
    return F.leaky_relu(y, 0.01) if leaky else y


def cca(x, sd):
    q = F.conv2d(x, sd['head.cca.query_conv.weight'], sd['head.cca.query_conv.bias'])
    k = F.conv2d(x, sd['head.cca.key_conv.weight'], sd['head.cca.key_conv.bias'])
    v = F.conv2d(x, sd['head.cca.value_conv.weight'], sd['head.cca.value_conv.bias'])
    _, _, h, w = x.shape
    out = torch.zeros_like(x)
    for i in range(h):
        for j in range(w):
            where = [(r, j) for r in range(h)] + [(i, c) for c in range(w) if c != j]
            keys = torch.stack([k[:, :, r, c] for r, c in where], dim=-1)
            vals = torch.stack([v[:, :, r, c] for r, c in where], dim=-1)
            att = torch.softmax(torch.einsum('nc,ncl->nl', q[:, :, i, j], keys), dim=-1)
            out[:, :, i, j] = torch.einsum('nl,ncl->nc', att, vals)
    return sd['head.cca.gamma'] * out + x


def official_forward(sd, img):
    """(head logits, dsn logits) at feature resolution, as the official ResNet returns them."""
    sd = {k: v.double() for k, v in sd.items()}
    x = F.relu(abn(F.conv2d(img, sd['conv1.weight'], stride=2, padding=1), sd, 'bn1', False))
    x = F.relu(abn(F.conv2d(x, sd['conv2.weight'], padding=1), sd, 'bn2', False))
    x = F.relu(abn(F.conv2d(x, sd['conv3.weight'], padding=1), sd, 'bn3', False))
    x = F.max_pool2d(x, 3, 2, 1, ceil_mode=True)
    feats = []
    for idx, (_, blocks, stride, d) in enumerate(LAYERS):
        for b in range(blocks):
            p = f'layer{idx + 1}.{b}'
            s = stride if b == 0 else 1
            out = F.relu(abn(F.conv2d(x, sd[f'{p}.conv1.weight']), sd, f'{p}.bn1', False))
            out = F.relu(abn(F.conv2d(out, sd[f'{p}.conv2.weight'], stride=s, padding=d,
                                      dilation=d), sd, f'{p}.bn2', False))
            out = abn(F.conv2d(out, sd[f'{p}.conv3.weight']), sd, f'{p}.bn3', False)
            if b == 0:
                x = abn(F.conv2d(x, sd[f'{p}.downsample.0.weight'], stride=s), sd,
                        f'{p}.downsample.1', False)
            x = F.relu(out + x)
        feats.append(x)
    x3, x4 = feats[2], feats[3]
    out = abn(F.conv2d(x4, sd['head.conva.0.weight'], padding=1), sd, 'head.conva.1', True)
    for _ in range(2):
        out = cca(out, sd)
    out = abn(F.conv2d(out, sd['head.convb.0.weight'], padding=1), sd, 'head.convb.1', True)
    out = abn(F.conv2d(torch.cat([x4, out], 1), sd['head.bottleneck.0.weight'], padding=1), sd,
              'head.bottleneck.1', True)
    head = F.conv2d(out, sd['head.bottleneck.3.weight'], sd['head.bottleneck.3.bias'])
    aux = abn(F.conv2d(x3, sd['dsn.0.weight'], sd['dsn.0.bias'], padding=1), sd, 'dsn.1', True)
    dsn = F.conv2d(aux, sd['dsn.3.weight'], sd['dsn.3.bias'])
    return head, dsn


@pytest.fixture(scope='module')
def official():
    return official_ccnet_state_dict()


@pytest.fixture(scope='module')
def model():
    return revert_sync_batchnorm(build_target_model(CONFIG)).eval()


def test_convert_and_compare_with_official_forward(official, model):
    converted, unmapped = convert_ccnet(official)
    assert unmapped == []
    check_state_dict(converted, model)
    assert len(converted) == len(model.state_dict())
    # InPlace-ABN weights became |w| + eps; the dsn conv bias went into the running mean
    torch.testing.assert_close(converted['backbone.stem.1.weight'],
                               official['bn1.weight'].abs() + EPS)
    torch.testing.assert_close(converted['auxiliary_head.convs.0.bn.running_mean'],
                               official['dsn.1.running_mean'] - official['dsn.0.bias'])
    assert converted['decode_head.cca.gamma.scale'].shape == ()
    assert model.decode_head.convs[0].activate.negative_slope == 0.01
    assert model.auxiliary_head.convs[0].activate.negative_slope == 0.01

    img = torch.randn(1, 3, 33, 41, dtype=torch.float64)  # odd stem output: ceil_mode agrees
    model.double()
    try:
        with torch.no_grad():
            feats = model.extract_feat(img)
            head, dsn = model.decode_head(feats), model.auxiliary_head(feats)
    finally:
        model.float()
    ref_head, ref_dsn = official_forward(official, img)
    assert head.shape == (1, 19, 5, 6) and dsn.shape == (1, 19, 5, 6)
    # the converter computes |w| + eps and the folded mean in float32, the reference in float64
    torch.testing.assert_close(head, ref_head, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dsn, ref_dsn, rtol=1e-5, atol=1e-6)
    assert (ref_head - ref_head.mean()).abs().mean() > 1e-2  # not a trivially flat output


def test_config_input_normalisation(model):
    pre = model.data_preprocessor
    # the exact BGR mean of the official train.py / evaluate.py
    torch.testing.assert_close(pre.mean.flatten(),
                               torch.tensor([104.00698793, 116.66876762, 122.67891434]),
                               rtol=0, atol=1e-5)
    from mmseg_fusion.converters.ccnet import CCNET_INPUT_NORMALISATION
    assert CCNET_INPUT_NORMALISATION['mean'] == [104.00698793, 116.66876762, 122.67891434]
    torch.testing.assert_close(pre.std.flatten(), torch.ones(3))
    assert not pre.channel_conversion  # BGR, as cv2 loads it


def test_inplace_abn_to_bn():
    sd = {'bn.weight': torch.tensor([-2.0, 0.0, 3.0])}
    inplace_abn_to_bn(sd, ['bn'], eps=0.5)
    torch.testing.assert_close(sd['bn.weight'], torch.tensor([2.5, 0.5, 3.5]))
    with pytest.raises(ConversionError, match="'other' has no weight"):
        inplace_abn_to_bn(sd, ['other'])


def test_errors_list_every_problem(official, model):
    broken = OrderedDict(official)
    del broken['head.convb.0.weight']
    broken['layer5.weight'] = torch.ones(1)
    broken['head.cca.value_conv.weight'] = torch.ones(512, 512, 3, 3)
    converted, unmapped = convert_ccnet(broken)
    with pytest.raises(ConversionError) as info:
        check_state_dict(converted, model, unmapped, source='CCNet')
    msg = str(info.value)
    assert 'layer5.weight' in msg and 'decode_head.convs.1.conv.weight' in msg
    assert 'decode_head.cca.value_conv.weight: converted (512, 512, 3, 3)' in msg


def test_not_a_ccnet_checkpoint():
    with pytest.raises(ConversionError, match='no "head.cca.gamma"'):
        convert_ccnet({'conv1.weight': torch.ones(1)})
    with pytest.raises(ConversionError, match='one value'):
        convert_ccnet({'head.cca.gamma': torch.ones(2), 'bn.running_var': torch.ones(1),
                       'bn.weight': torch.ones(1)})


def test_convert_file_through_cli(official, tmp_path):
    from mmseg_fusion.converters.cli import converter_main

    src, dst = tmp_path / 'ccnet_official.pth', tmp_path / 'ccnet_fusion.pth'
    torch.save(official, src)
    assert converter_main('CCNet', convert_ccnet, CONFIG, 'test', [str(src), str(dst)]) == 0
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['converted_from'] == 'CCNet'
    assert 'auxiliary_head.convs.0.conv.bias' not in ckpt['state_dict']
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([dst.name, src.name])
