"""OCRBlockHead: same computation as mmseg's cascade OCRHead, the soft-region loss, SSR."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.models.decode_heads import OCRHead
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_fusion  # noqa: F401
from mmseg_fusion.functional import fuse_scales
from mmseg_fusion.models import OCRBlockHead

NORM = dict(type='BN', requires_grad=True)
HEAD = dict(in_channels=12, channels=16, ocr_channels=8, num_classes=5, norm_cfg=NORM,
            dropout_ratio=0.05, loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0))


def samples(n, h, w):
    out = []
    for _ in range(n):
        s = SegDataSample(metainfo=dict(ori_shape=(h, w), img_shape=(h, w), pad_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, h, w)))
        out.append(s)
    return out


def randomise_bn(module):
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.0)
            m.bias.data.normal_(0, 0.1)


def test_same_as_mmseg_ocr_head_given_the_regions():
    """With a zero bottleneck bias, logits equal mmseg's OCRHead fed our soft regions."""
    torch.manual_seed(0)
    ours = OCRBlockHead(**HEAD).eval()
    ref = OCRHead(**HEAD).eval()
    randomise_bn(ours)
    ours.bottleneck.conv.bias.data.zero_()
    state = {k: v for k, v in ours.state_dict().items()
             if not k.startswith('aux_head') and k != 'bottleneck.conv.bias'}
    missing, unexpected = ref.load_state_dict(state, strict=False)
    assert not missing and not unexpected
    x = torch.randn(2, 12, 11, 17)
    with torch.no_grad():
        logits, extras = ours.forward_with_extras([x])
        regions = extras['aux_ocr']
        expected = ref([x], regions)
    assert logits.shape == regions.shape == (2, 5, 11, 17)
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours([x]), logits)
    # the bias of the official conv3x3_ocr is used
    ours.bottleneck.conv.bias.data.fill_(0.3)
    with torch.no_grad():
        assert not torch.allclose(ours([x]), logits)


def test_loss_includes_weighted_region_loss():
    torch.manual_seed(0)
    head = OCRBlockHead(**HEAD, aux_loss_weight=0.4)
    data = samples(2, 22, 34)
    x = torch.randn(2, 12, 11, 17)
    losses = head.loss([x], data, None)
    assert set(losses) == {'loss_ce', 'acc_seg', 'aux_ocr.loss_ce', 'aux_ocr.acc_seg'}
    head.eval()  # no dropout: both passes give the same regions
    with torch.no_grad():
        _, extras = head.forward_with_extras([x])
        plain = head.loss_by_feat(extras['aux_ocr'], data)['loss_ce']
        weighted = head.loss_by_extras(extras, data)['aux_ocr.loss_ce']
    torch.testing.assert_close(weighted, 0.4 * plain)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None, name
    assert OCRBlockHead(**HEAD, aux_loss_weight=0).loss_by_extras(extras, data) == {}


def test_in_ssr_the_regions_are_fused_with_the_scale_weights():
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='SSREncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0.] * 3, std=[1.] * 3),
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
                      out_indices=(0, 1, 2, 3), norm_cfg=NORM),
        decode_head=dict(type='OCRBlockHead', in_index=1, **dict(HEAD, in_channels=16)),
        train_scales=(0.5, 1.0)))
    # the scale attention reads the OCR features (the input of conv_seg), as official
    assert model.scale_attention.in_channels == 16
    data = samples(2, 32, 32)
    inputs = torch.randn(2, 3, 32, 32)
    losses = model.loss(inputs, data)
    assert {'decode.loss_ce', 'decode.aux_ocr.loss_ce', 'scale_0.5.loss_ce'} <= set(losses)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for name, p in model.named_parameters():
        if not name.startswith(('backbone.layer3', 'backbone.layer4')):  # unused levels
            assert p.grad is not None, name
    # the fused region loss equals the loss of the SSR-weighted per-scale regions
    model.eval()
    with torch.no_grad():
        losses = model.loss(inputs, data)
        regions, densities = [], []
        for scale in (0.5, 1.0):
            x = model._resize_input(inputs, scale)
            _, density, _, extras = model._decode(x, scale, with_extras=True)
            regions.append(model._to_size(extras['aux_ocr'], (32, 32)))
            if densities:  # every density at the coarsest scale's size, as update_fusion
                density = torch.nn.functional.interpolate(
                    density, size=densities[0].shape[-2:], mode='bilinear', align_corners=False)
            densities.append(density)
        fused = fuse_scales(regions, densities, method='ssr', terminal=model.fusion.terminal)
        expected = model.decode_head.loss_by_extras({'aux_ocr': fused}, data)['aux_ocr.loss_ce']
    torch.testing.assert_close(losses['decode.aux_ocr.loss_ce'], expected)


@pytest.mark.parametrize('kwargs, match', [
    (dict(ocr_channels=0), 'OCRBlockHead: ocr_channels must be an int >= 1, got 0'),
    (dict(aux_loss_weight=-1), 'OCRBlockHead: aux_loss_weight must be >= 0, got -1'),
    (dict(in_channels=[12, 12], in_index=[0, 1], input_transform='multiple_select'),
     'OCRBlockHead: in_channels must be one int'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OCRBlockHead(**dict(HEAD, **kwargs))
