"""SSREncoderDecoder: training and prediction in whole/slide mode, heads, fusions, errors."""
import copy

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_fusion  # noqa: F401
from mmseg_fusion.functional import fuse_scales
from mmseg_fusion.models.segmentors.density import capture_cls_input
from mmseg_fusion.testing import seg_samples, tiny_ssr_config

NORM = dict(type='BN', requires_grad=True)
# the official training scales and fusion, which most tests below spell out
BASE = tiny_ssr_config()
AUX = dict(type='FCNHead', in_channels=32, in_index=2, channels=4, num_convs=1,
           num_classes=3, norm_cfg=NORM, dropout_ratio=0.0,
           loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4))


def build(**overrides):
    init_default_scope('mmseg')
    cfg = copy.deepcopy(BASE)
    cfg.update(overrides)
    return MODELS.build(cfg)


def samples(n, h, w, flip=False):
    return seg_samples(n, h, w, flip=flip)


@pytest.mark.parametrize('aux', [False, True])
@pytest.mark.parametrize('fusion', ['ssr', 'hma', 'softmax', 'mean', 'max'])
def test_loss_and_gradients(fusion, aux):
    torch.manual_seed(0)
    model = build(fusion=fusion, auxiliary_head=AUX if aux else None)
    model.train()
    inputs = torch.randn(2, 3, 32, 32)
    losses = model.loss(inputs, samples(2, 32, 32))
    assert {'decode.loss_ce', 'scale_0.5.loss_ce', 'scale_1.loss_ce'} <= set(losses)
    assert ('aux.loss_ce' in losses) == aux
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert (model.scale_attention is None) == (fusion in ('mean', 'max'))
    for name, p in model.named_parameters():
        assert p.grad is not None, name


def test_loss_weights_and_scales():
    torch.manual_seed(0)
    model = build(scale_loss_weight=0.0, train_scales=(0.75, 1.0, 1.25))
    losses = model.loss(torch.randn(2, 3, 24, 24), samples(2, 24, 24))
    assert not any(k.startswith('scale_') for k in losses)
    model = build(scale_loss_weight=0.5)
    model.eval()
    inputs, data = torch.randn(2, 3, 24, 24), samples(2, 24, 24)
    with torch.no_grad():
        losses = model.loss(inputs, data)
        model.scale_loss_weight = 1.0
        full = model.loss(inputs, data)
    torch.testing.assert_close(losses['scale_0.5.loss_ce'], 0.5 * full['scale_0.5.loss_ce'])


def reference_prediction(model, inputs):
    """Naive multi-scale: all scales computed, then fused with ``fuse_scales``."""
    logits, dens = [], []
    for s in model.test_cfg.scales:
        p, d = model._scale_prediction(inputs, s)
        logits.append(p)
        if d is not None:
            # SSR/HMA: every density at the coarsest scale's size (the rule of update_fusion);
            # softmax: scores resized to the logits
            method = model.fusion.method
            size = (dens[0].shape[-2:] if dens and method in ('ssr', 'hma')
                    else d.shape[-2:] if method in ('ssr', 'hma') else p.shape[-2:])
            d = torch.nn.functional.interpolate(d, size=size, mode='bilinear',
                                                align_corners=False)
        dens.append(d)
    return fuse_scales(logits, None if dens[0] is None else dens, model.fusion.method,
                       **model.fusion.options())


@pytest.mark.parametrize('mode', ['whole', 'slide'])
@pytest.mark.parametrize('fusion', ['ssr', 'hma', 'softmax', 'mean'])
def test_predict_fuses_scales(mode, fusion):
    torch.manual_seed(1)
    test_cfg = dict(mode=mode, scales=(0.5, 1.0, 1.5), crop_size=(16, 16), stride=(11, 11),
                    return_weights=True)
    model = build(fusion=fusion, test_cfg=test_cfg, auxiliary_head=AUX).eval()
    inputs = torch.randn(2, 3, 23, 29)
    with torch.no_grad():
        out = model.predict(inputs, samples(2, 23, 29))
        ref = reference_prediction(model, inputs)
    assert len(out) == 2
    for i, sample in enumerate(out):
        assert sample.seg_logits.shape == (23, 29)
        assert sample.seg_logits.data.shape == (3, 23, 29)
        assert sample.pred_sem_seg.data.shape == (1, 23, 29)
        torch.testing.assert_close(sample.seg_logits.data, ref[i], rtol=1e-4, atol=1e-5)
        weights = sample.scale_weights.data
        assert weights.shape == (3, 23, 29)
        assert torch.isfinite(weights).all() and (weights >= 0).all()
        if fusion in ('hma', 'softmax', 'mean'):
            torch.testing.assert_close(weights.sum(0), torch.ones(23, 29))
        else:
            assert (weights.sum(0) <= 1 + 1e-5).all()


def test_predict_restores_original_shape_flip_and_no_samples():
    torch.manual_seed(2)
    model = build(test_cfg=dict(mode='whole', scales=(0.5, 1.0), flip=True)).eval()
    inputs = torch.randn(1, 3, 20, 24)
    data = samples(1, 20, 24)
    data[0].set_metainfo(dict(ori_shape=(40, 48)))
    with torch.no_grad():
        out = model.predict(inputs, data, return_weights=True)
        bare = model.predict(inputs)
        # flip averaging: the fused logits of the image and of its mirror, averaged
        a = reference_prediction(model, inputs)
        b = reference_prediction(model, inputs.flip(-1)).flip(-1)
    assert out[0].seg_logits.data.shape == (3, 40, 48)
    assert out[0].scale_weights.data.shape == (2, 40, 48)
    torch.testing.assert_close(bare[0].seg_logits.data, ((a + b) / 2)[0], rtol=1e-4, atol=1e-5)
    assert 'scale_weights' not in bare[0]


def test_predict_view_gives_logits_and_density():
    torch.manual_seed(3)
    model = build().eval()
    inputs = torch.randn(1, 3, 16, 20)
    data = samples(1, 16, 20, flip=True)
    with torch.no_grad():
        out = model.predict_view(inputs, data)
        logits, density = model._scale_prediction(inputs, 1.0)
    # whole mode: the density at its own size, as predict fuses it
    torch.testing.assert_close(out[0].seg_density.data, density[0].flip(-1))
    torch.testing.assert_close(out[0].seg_logits.data, logits[0].flip(-1))
    assert (out[0].seg_density.data >= 0).all()
    assert density.shape[1] == 1
    model = build(fusion='mean').eval()
    with torch.no_grad():
        assert 'seg_density' not in model.predict_view(inputs, samples(1, 16, 20))[0]
    # slide mode (and padded inputs) go through postprocess_result
    model = build(test_cfg=dict(mode='slide', crop_size=(12, 12), stride=(8, 8))).eval()
    data = samples(1, 16, 20, flip=True)
    with torch.no_grad():
        out = model.predict_view(inputs, data)
        logits, density = model._scale_prediction(inputs, 1.0)
    torch.testing.assert_close(out[0].seg_logits.data, logits[0].flip(-1))
    torch.testing.assert_close(out[0].seg_density.data, density[0].flip(-1))


def test_any_decode_head():
    torch.manual_seed(4)
    head = dict(type='PSPHead', in_channels=64, in_index=3, channels=8, pool_scales=(1, 2),
                num_classes=3, norm_cfg=NORM, loss_decode=dict(type='CrossEntropyLoss'))
    model = build(decode_head=head, neck=None)
    losses = model.loss(torch.randn(2, 3, 32, 32), samples(2, 32, 32))
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.scale_attention.conv.conv.in_channels == 8
    assert model.scale_attention.conv.conv.weight.grad is not None


def test_memory_does_not_grow_with_scales():
    """Streaming: the number of live (N, C, H, W) maps does not depend on the scale count."""
    model = build(test_cfg=dict(mode='whole', scales=(1.0, )))
    model.eval()
    inputs = torch.randn(1, 3, 16, 16)
    peaks = []
    for scales in ((0.5, 1.0), (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)):
        model.test_cfg.scales = scales
        live, peak = [], [0]
        original = model._scale_prediction

        def tracked(x, s, view_scale=1.0, original=original, live=live, peak=peak):
            out = original(x, s, view_scale)
            live[:] = [t for t in live if t() is not None]
            import weakref
            live.append(weakref.ref(out[0]))
            peak[0] = max(peak[0], sum(t() is not None for t in live))
            return out

        model._scale_prediction = tracked
        with torch.no_grad():
            model.predict(inputs)
        del model._scale_prediction
        peaks.append(peak[0])
    assert peaks[0] == peaks[1] == 1


@pytest.mark.parametrize('kwargs, match', [
    (dict(train_scales=(1.0, 0.5)), r"SSREncoderDecoder: train_scales .*\(1\.0, 0\.5\)"),
    (dict(train_scales=(0.5, 0.75)), 'containing 1.0'),
    (dict(train_scales=(-0.5, 1.0)), 'positive'),
    (dict(train_scales=()), 'train_scales'),
    (dict(test_cfg=dict(mode='whole', scales=(0.5, 1.0, 1.0))), 'test_cfg.scales'),
    (dict(test_cfg=dict(mode='whole', scales='big')), 'test_cfg.scales'),
    (dict(fusion='median'), "fusion must be one of .* got 'median'"),
    (dict(fusion=dict(type='SSRScaleFusion', phi='relu')),
     "phi must be 'abs' or 'softplus', got 'relu'"),
    (dict(scale_loss_weight=-1), 'scale_loss_weight must be >= 0, got -1'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


@pytest.mark.parametrize('kwargs, match', [
    (dict(test_cfg=dict(mode='whole', scales=(1.0, 0.5))),
     r'SSREncoderDecoder: test_cfg.scales must be a sequence of positive numbers sorted '
     r'ascending and containing 1.0, got \(1.0, 0.5\)'),
    (dict(test_cfg=dict(mode='whole', scales=(0.5, 1.5))),
     r'SSREncoderDecoder: test_cfg.scales .* containing 1.0, got \(0.5, 1.5\)'),
    (dict(train_scales=(0.5, 2.0)),
     r'SSREncoderDecoder: train_scales .* containing 1.0, got \(0.5, 2.0\)'),
    (dict(fusion='median'),
     r"SSREncoderDecoder: fusion must be one of \('ssr', 'hma', 'softmax', 'mean', 'max'\), "
     r"got 'median'"),
    (dict(fusion=dict(type='SSRScaleFusion', phi='exp')),
     r"SSRScaleFusion: phi must be 'abs' or 'softplus', got 'exp'"),
])
def test_bad_scales_fusion_and_phi_name_the_component(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


# the BASE backbone gives 4 outputs with channels [8, 16, 32, 64]
IAFF_NECK = dict(type='IAFFNeck', in_channels=[8, 16, 32, 64], out_channels=8, num_outs=4,
                 reduction=2, norm_cfg=NORM)


@pytest.mark.parametrize('kwargs, match', [
    (dict(neck=dict(IAFF_NECK, in_channels=[8, 16, 32])),
     r'SSREncoderDecoder: neck \(IAFFNeck\) in_channels must be \[8, 16, 32, 64\] \(one entry '
     r'per output of ResNetV1c, 4 outputs\), got \[8, 16, 32\]'),
    (dict(neck=dict(IAFF_NECK, in_channels=[8, 16, 32, 32])),
     r'SSREncoderDecoder: neck \(IAFFNeck\) in_channels must be \[8, 16, 32, 64\] .*'
     r'got \[8, 16, 32, 32\]'),
    (dict(decode_head=dict(BASE['decode_head'], in_index=4)),
     r'SSREncoderDecoder: decode_head \(FCNHead\) in_index must index one of the 4 outputs of '
     r'ResNetV1c \(in \[-4, 3\]\), got 4'),
    (dict(decode_head=dict(BASE['decode_head'], in_channels=32)),
     r'SSREncoderDecoder: decode_head \(FCNHead\) in_channels must be 64 \(the channels of '
     r'ResNetV1c output 3\), got 32'),
    (dict(auxiliary_head=dict(AUX, in_index=-5)),
     r'SSREncoderDecoder: auxiliary_head \(FCNHead\) in_index must index one of the 4 outputs '
     r'of ResNetV1c \(in \[-4, 3\]\), got -5'),
    (dict(neck=IAFF_NECK, decode_head=dict(BASE['decode_head'], in_channels=8, in_index=4)),
     r'SSREncoderDecoder: decode_head \(FCNHead\) in_index must index one of the 4 outputs of '
     r'IAFFNeck \(in \[-4, 3\]\), got 4'),
    (dict(neck=IAFF_NECK, decode_head=dict(BASE['decode_head'], in_channels=8),
          auxiliary_head=[dict(AUX, in_channels=8), AUX]),
     r'SSREncoderDecoder: auxiliary_head\[1\] \(FCNHead\) in_channels must be 8 \(the channels '
     r'of IAFFNeck output 2\), got 32'),
])
def test_backbone_neck_head_mismatch_raises_at_build(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


def test_matching_neck_and_heads_build_and_keep_train_mode():
    model = build(neck=IAFF_NECK, decode_head=dict(BASE['decode_head'], in_channels=8,
                                                   in_index=0),
                  auxiliary_head=dict(AUX, in_channels=8))
    assert model.training and all(m.training for m in model.modules())
    losses = model.loss(torch.randn(2, 3, 32, 32), samples(2, 32, 32))
    assert torch.isfinite(losses['decode.loss_ce'])


@pytest.mark.parametrize('scale_attention, error, match', [
    (dict(in_channels=16), ValueError,
     r"SSREncoderDecoder: scale_attention.in_channels must equal the decode head's "
     r'conv_seg.in_channels \(8, .*\), got 16'),
    (dict(out_channels=2), ValueError,
     r'SSREncoderDecoder: scale_attention.out_channels must be 1 .*got 2'),
    (dict(mid=4), TypeError, r"SSREncoderDecoder: scale_attention has unknown keys \['mid'\]"),
])
def test_bad_scale_attention(scale_attention, error, match):
    with pytest.raises(error, match=match):
        build(scale_attention=scale_attention)


def test_explicit_scale_attention_in_channels():
    model = build(scale_attention=dict(in_channels=8, out_channels=1, mid_channels=4))
    assert model.scale_attention.conv.conv.in_channels == 8
    # unused (no density head) with the density-free fusions
    assert build(fusion='mean', scale_attention=dict(in_channels=16)).scale_attention is None


def test_default_test_scales_and_attention_config():
    model = build(test_cfg=dict(mode='whole'), fusion='hma',
                  scale_attention=dict(mid_channels=4))
    assert model.test_cfg.scales == (0.5, 1.0)
    assert model.scale_attention.activation is None
    assert model.scale_attention.conv.conv.out_channels == 4
    assert build().scale_attention.activation == 'abs'
    # the defaults: random pairs of training scales, every one of them tested, terminal SSR
    init_default_scope('mmseg')
    cfg = {k: v for k, v in BASE.items() if k not in ('train_scales', 'fusion', 'test_cfg')}
    model = MODELS.build(cfg)
    assert model.train_scale_sets == ((0.5, 1.0), (0.75, 1.0), (1.0, 1.5), (1.0, 2.0))
    assert model.test_cfg.scales == (0.5, 0.75, 1.0, 1.5, 2.0)
    assert model.fusion.terminal and model.scale_loss_weight == 1.0
    assert type(model.fusion).__name__ == 'SSRScaleFusion' and model.fusion.phi == 'abs'


@pytest.mark.slow
def test_ssr_configs_build(repo_root):
    """Every config of configs/ssr builds an SSREncoderDecoder with an SSRTTAModel."""
    import glob
    import os.path as osp

    from mmengine.config import Config

    from mmseg_fusion.models.utils.scales import RANDOM_PAIRS
    files = sorted(glob.glob(osp.join(repo_root, 'configs', 'ssr', '*.py')))
    assert len(files) == 10, files
    init_default_scope('mmseg')
    for path in files:
        cfg = Config.fromfile(path)
        cfg.model.pretrained = None
        cfg.model.backbone.pop('init_cfg', None)
        model = MODELS.build(cfg.model)
        assert type(model).__name__ == 'SSREncoderDecoder', path
        assert 1.0 in model.test_cfg.scales and cfg.tta_model.type == 'SSRTTAModel'
        if 'synthetic' in path:  # the benchmark's recipe, the defaults
            assert model.train_scale_sets == RANDOM_PAIRS, path
            assert getattr(model.fusion, 'terminal', True), path


def test_density_input_sets_what_the_attention_sees():
    """'resized': features resized to the 1.0-scale size first; 'native': own features."""
    torch.manual_seed(0)
    inputs = torch.randn(1, 3, 32, 40)
    half = torch.nn.functional.interpolate(inputs, size=(16, 20), mode='bilinear',
                                           align_corners=False)
    resized = build(density_input='resized').eval()
    native = build(density_input='native').eval()
    native.load_state_dict(resized.state_dict())
    with torch.no_grad():
        d_full = resized._decode(inputs, 1.0)[1]
        d_resized = resized._decode(half, 0.5)[1]
        d_native = native._decode(half, 0.5)[1]
        feat = []
        with capture_cls_input(native.decode_head) as store:
            native.decode_head(native.extract_feat(half))
            feat = store[-1]
        # the 1.0-scale feature size estimated from this scale: round(h_s / s, w_s / s)
        expected = native.scale_attention(torch.nn.functional.interpolate(
            feat, size=(4, 6), mode='bilinear', align_corners=False))
    assert d_full.shape == (1, 1, 4, 5)
    assert d_resized.shape == (1, 1, 4, 6)
    assert d_native.shape == (1, 1, 2, 3)
    torch.testing.assert_close(d_resized, expected)
    torch.testing.assert_close(d_native, native.scale_attention(feat))


def test_bad_density_input_names_the_component():
    with pytest.raises(ValueError, match="SSREncoderDecoder: density_input must be 'resized' "
                                         "or 'native', got 'both'"):
        build(density_input='both')


def test_scale_attention_bias_init_sets_the_initial_opacity():
    import math
    model = build(scale_attention=dict(bias_init=math.log(2.0)))
    model.init_weights()
    torch.nn.init.zeros_(model.scale_attention.final.weight)
    with torch.no_grad():
        density = model.eval()._decode(torch.randn(1, 3, 16, 16), 1.0)[1]
    torch.testing.assert_close(1 - torch.exp(-density), torch.full_like(density, 0.5))


def official_afa_forward(model, x, scales, divisor):
    """dla-afa ``nscale_forward`` written out: ``dla_resize``, every scale from it, back.

    The 1.0-scale input is resized bilinearly up to multiples of ``divisor``; scale ``s`` is
    ``interpolate(x_1x, scale_factor=s, recompute_scale_factor=True)``; every scale's logits
    are resized to the input size, its features to the 1.0-scale feature size, the SSR weights
    ``(1 - exp(-y_s)) prod_{t<s} exp(-y_t)`` are computed there and resized to the input size.
    """
    import math

    import torch.nn.functional as F

    def bilinear(t, **kwargs):
        return F.interpolate(t, mode='bilinear', align_corners=False, **kwargs)

    h, w = x.shape[-2:]
    x_1x = bilinear(x, size=(math.ceil(h / divisor) * divisor, math.ceil(w / divisor) * divisor))
    preds, feats = {}, {}
    for s in sorted(scales):
        xs = x_1x if s == 1.0 else bilinear(x_1x, scale_factor=s, recompute_scale_factor=True)
        store = []
        handle = model.decode_head.conv_seg.register_forward_pre_hook(
            lambda m, args, store=store: store.append(args[0]))
        logits = model.decode_head(model.extract_feat(xs))
        handle.remove()
        preds[s] = bilinear(logits, size=(h, w))
        feats[s] = store[0]
    pred, transmittance = 0, 1
    for s in sorted(scales):
        y = model.scale_attention(bilinear(feats[s], size=feats[1.0].shape[-2:])).abs()
        weight = (1 - torch.exp(-y)) * transmittance
        transmittance = transmittance * torch.exp(-y)
        pred = pred + preds[s] * bilinear(weight, size=(h, w))
    return pred


def record_input_sizes(model):
    """A list that receives the (H, W) of every backbone input, and the hook's handle."""
    sizes = []
    handle = model.backbone.register_forward_pre_hook(
        lambda m, args: sizes.append(tuple(args[0].shape[-2:])))
    return sizes, handle


@pytest.mark.parametrize('flip', [False, True])
def test_size_divisor_resize_follows_the_official_inference(flip):
    """test_cfg.size_divisor_resize=128 on 180x320: the network runs at 256x384 (x 0.5, 1.5)."""
    torch.manual_seed(0)
    scales = (0.5, 1.0, 1.5)
    model = build(test_cfg=dict(mode='whole', scales=scales, flip=flip,
                                size_divisor_resize=128)).eval()
    with torch.no_grad():  # logits of order 1, so that the tolerance below means something
        model.decode_head.conv_seg.weight.mul_(1000)
    inputs = torch.randn(1, 3, 180, 320)
    sizes, handle = record_input_sizes(model)
    with torch.no_grad():
        out = model.predict(inputs, samples(1, 180, 320))[0].seg_logits.data
        handle.remove()
        expected = official_afa_forward(model, inputs, scales, 128)
        if flip:
            flipped = official_afa_forward(model, inputs.flip(-1), scales, 128).flip(-1)
            expected = (expected + flipped) / 2
        model.test_cfg.size_divisor_resize = None
        native = model.predict(inputs, samples(1, 180, 320))[0].seg_logits.data
    assert sizes[:3] == [(128, 192), (256, 384), (384, 576)]
    assert len(sizes) == 3 * (2 if flip else 1)
    assert out.shape == native.shape == (3, 180, 320)
    scale = float(expected.abs().max())
    assert scale > 0.5
    torch.testing.assert_close(out, expected[0], rtol=1e-4, atol=1e-5 * scale)
    # running the network at the native size is not the official inference
    assert float((native - expected[0]).abs().max()) > 0.05 * scale


def test_size_divisor_resize_in_training_and_slide_mode():
    """train_cfg.size_divisor_resize: the losses see the resized input, at the input size."""
    import torch.nn.functional as F
    torch.manual_seed(0)
    model = build(train_cfg=dict(size_divisor_resize=64),
                  test_cfg=dict(mode='slide', crop_size=(32, 32), stride=(24, 24),
                                size_divisor_resize=64))
    model.train()
    inputs, data = torch.randn(2, 3, 40, 50), samples(2, 40, 50)
    sizes, handle = record_input_sizes(model)
    losses = model.loss(inputs, data)
    assert sizes == [(32, 32), (64, 64)]
    model.eval()
    with torch.no_grad():
        losses = model.loss(inputs, data)
        x_1x = F.interpolate(inputs, size=(64, 64), mode='bilinear', align_corners=False)
        logits = F.interpolate(model.decode_head(model.extract_feat(x_1x)), size=(40, 50),
                               mode='bilinear', align_corners=False)
        expected = model.decode_head.loss_by_feat(logits, data)['loss_ce']
        del sizes[:]
        out = model.predict(inputs[:1], samples(1, 40, 50))
    handle.remove()
    torch.testing.assert_close(losses['scale_1.loss_ce'], expected)
    # slide windows over the resized 64x64 input (and its 0.5 scale, one 32x32 window)
    assert sizes == [(32, 32)] + [(32, 32)] * 9
    assert out[0].seg_logits.data.shape == (3, 40, 50)


@pytest.mark.parametrize('value', [0, -128, 12.8, True, '128'])
def test_bad_size_divisor_resize_names_the_component(value):
    with pytest.raises(ValueError, match=r'SSREncoderDecoder: test_cfg.size_divisor_resize '
                                         r'must be a positive int or None, got'):
        build(test_cfg=dict(mode='whole', size_divisor_resize=value))
    with pytest.raises(ValueError, match=r'SSREncoderDecoder: train_cfg.size_divisor_resize'):
        build(train_cfg=dict(size_divisor_resize=value))


def test_random_scale_sets_draw_one_set_per_training_step():
    sets = ((0.5, 1.0), (1.0, 2.0))
    model = build(train_scales=[list(s) for s in sets])
    assert model.train_scale_sets == sets
    # every scale trained on is the default test set
    assert model.train_scales == (0.5, 1.0, 2.0)
    assert model.test_cfg.scales == (0.5, 1.0, 1.5)  # BASE sets its own
    assert build(train_scales=sets, test_cfg=dict(mode='whole')).test_cfg.scales == (0.5, 1.0,
                                                                                     2.0)
    model.train()
    inputs, data = torch.randn(2, 3, 24, 24), samples(2, 24, 24)
    seen = []
    torch.manual_seed(0)
    for _ in range(12):
        keys = {k for k in model.loss(inputs, data) if k.endswith('loss_ce')} - {'decode.loss_ce'}
        seen.append(frozenset(keys))
    # each step trains one whole set, and both sets are drawn
    assert set(seen) == {frozenset({'scale_0.5.loss_ce', 'scale_1.loss_ce'}),
                         frozenset({'scale_1.loss_ce', 'scale_2.loss_ce'})}
    # seeded: the same draws again
    torch.manual_seed(0)
    again = [frozenset(k for k in model.loss(inputs, data) if k.endswith('loss_ce')) - {
        'decode.loss_ce'} for _ in range(12)]
    assert again == seen


def test_bad_scale_set_names_the_set():
    with pytest.raises(ValueError, match=r'SSREncoderDecoder: train_scales\[1\] must be .*'
                                         r'containing 1.0, got \(0.5, 2.0\)'):
        build(train_scales=((0.5, 1.0), (0.5, 2.0)))


def test_plain_checkpoint_loads_with_only_the_scale_attention_missing():
    """The retrofit path: an EncoderDecoder's state dict into SSREncoderDecoder."""
    plain_cfg = {k: v for k, v in BASE.items() if k not in ('train_scales', 'fusion')}
    plain_cfg.update(type='EncoderDecoder', auxiliary_head=AUX)
    init_default_scope('mmseg')
    plain = MODELS.build(plain_cfg)
    for fusion in ('ssr', 'hma'):
        ssr = build(fusion=fusion, auxiliary_head=AUX)
        missing, unexpected = ssr.load_state_dict(plain.state_dict(), strict=False)
        assert unexpected == []
        assert missing and all(k.startswith('scale_attention.') for k in missing)
        # every parameter and statistic of the scale attention (torch does not report a
        # missing BatchNorm counter, num_batches_tracked)
        assert sorted(missing) == sorted(
            k for k in ssr.state_dict()
            if k.startswith('scale_attention.') and not k.endswith('num_batches_tracked'))
    # the density-free fusions need nothing more: the plain checkpoint loads strictly
    build(fusion='mean', auxiliary_head=AUX).load_state_dict(plain.state_dict(), strict=True)


@pytest.mark.slow
def test_retrofit_config_fine_tunes_a_plain_checkpoint(tmp_path, repo_root, train_tiny, run_tool,
                                                       synthetic_root, tiny_options):
    """configs/ssr/ssr-retrofit_*synthetic*: from a trained plain model, only the attention new."""
    import os.path as osp
    plain = osp.join(repo_root, 'configs', 'synthetic', 'fcn_r18-d8_1xb8-600_synthetic-128x128.py')
    train_tiny(plain, str(tmp_path / 'plain'), iters=2)
    work = str(tmp_path / 'retrofit')
    out = run_tool([osp.join(repo_root, 'tools', 'train.py'),
                    osp.join(repo_root, 'configs', 'ssr',
                             'ssr-retrofit_fcn_r18-d8_1xb8-40_synthetic-128x128.py'),
                    '--work-dir', work, '--cfg-options',
                    *tiny_options(synthetic_root, iters=2, ckpt_interval=2),
                    f"load_from={tmp_path / 'plain' / 'iter_2.pth'}"])
    assert osp.isfile(osp.join(work, 'iter_2.pth')), out.stdout[-3000:]
    reported = [line for line in out.stdout.splitlines() if 'missing keys in source' in line]
    assert len(reported) == 1, out.stdout[-3000:]
    keys = reported[0].split('state_dict:', 1)[1].split(',')
    assert keys and all(k.strip().startswith('scale_attention.') for k in keys), reported
    assert 'unexpected key' not in out.stdout
