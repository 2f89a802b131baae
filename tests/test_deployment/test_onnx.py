"""ONNX export of every model family, checked in onnxruntime at two sizes (an odd one)."""
import copy
import os
import os.path as osp

import numpy as np
import onnx
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_fusion  # noqa: F401
from mmseg_fusion.deployment import (
    ExportError,
    SegmentorExportWrapper,
    export_onnx,
    onnx_session,
    random_verify_inputs,
    verify_onnx,
)

pytestmark = pytest.mark.usefixtures('one_thread')

NORM = dict(type='BN', requires_grad=True)
LEAKY = dict(type='LeakyReLU', negative_slope=0.01)
PREPROCESSOR = dict(type='SegDataPreProcessor', mean=[0., 0., 0.], std=[1., 1., 1.])
# tiny ResNetV1c-18: channels 8, 16, 32, 64; dilated (stride 8) or strided (4 ... 32)
DILATED = dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
               dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=NORM)
STRIDED = dict(DILATED, dilations=(1, 1, 1, 1), strides=(1, 2, 2, 2))
TINY_DLA = dict(type='DLA', arch=None, levels=(1, 1, 1, 2, 1, 1),
                channels=(4, 8, 16, 16, 32, 32), out_indices=(1, 2, 3, 4, 5), norm_cfg=NORM)


def fcn(in_channels, in_index, **kwargs):
    return dict(dict(type='FCNHead', in_channels=in_channels, in_index=in_index, channels=8,
                     num_convs=1, concat_input=False, dropout_ratio=0.1, num_classes=3,
                     norm_cfg=NORM), **kwargs)


def head(kind, **kwargs):
    return dict(dict(type=kind, in_channels=64, in_index=3, channels=8, num_classes=3,
                     dropout_ratio=0.1, norm_cfg=NORM), **kwargs)


def segmentor(backbone, decode_head, **kwargs):
    return dict(type='EncoderDecoder', data_preprocessor=PREPROCESSOR, backbone=backbone,
                decode_head=decode_head, test_cfg=dict(mode='whole'), **kwargs)


def ssr(fusion='ssr', scales=(0.5, 1.0, 1.5), **kwargs):
    base = segmentor(DILATED, fcn(64, 3), auxiliary_head=fcn(32, 2))
    base.update(type='SSREncoderDecoder', fusion=fusion,
                test_cfg=dict(mode='whole', scales=scales), **kwargs)
    return base


AFA_NECK = dict(type='AFANeck', in_channels=[8, 16, 32, 64], fused_levels=3, reduction=4,
                norm_cfg=NORM)

#: one tiny model per family, as the shipped configs compose them
FAMILIES = {
    'rcca': segmentor(DILATED, head('RCCAHead', recurrence=2), auxiliary_head=fcn(32, 2)),
    'rcca-official': segmentor(
        DILATED, head('RCCAHead', recurrence=2, concat_input=True, act_cfg=LEAKY,
                      align_corners=True),
        auxiliary_head=fcn(32, 2, act_cfg=LEAKY, align_corners=True)),
    'emau': segmentor(DILATED, head('EMAUHead', ema_channels=8, num_bases=4, num_stages=3)),
    'emau-official': segmentor(DILATED, head('EMAUHead', ema_channels=8, num_bases=4,
                                             num_stages=3, official=True)),
    'a2': segmentor(DILATED, head('A2Head', mid_channels=4, num_descriptors=4)),
    'afa-bilinear': segmentor(STRIDED, fcn(8, 0), neck=AFA_NECK),
    'afa-deconv': segmentor(STRIDED, fcn(8, 0), neck=dict(AFA_NECK, upsample='deconv')),
    'iaff': segmentor(STRIDED, fcn(8, 0), neck=dict(
        type='IAFFNeck', in_channels=[8, 16, 32, 64], out_channels=8, num_outs=4,
        fusion='iaff', reduction=4)),
    # the converted official AFA models: DLA + AFA-DLA-Up (deconv) + OCR + SSR over 3 scales
    'dla-afa-ocr-ssr': dict(
        type='SSREncoderDecoder', data_preprocessor=PREPROCESSOR, backbone=TINY_DLA,
        neck=dict(type='AFANeck', in_channels=[8, 16, 16, 32, 32], fused_levels=3,
                  fused_channels=8, reduction=4, upsample='deconv', norm_cfg=NORM,
                  act_cfg=LEAKY),
        decode_head=dict(type='OCRBlockHead', in_channels=8, in_index=0, channels=16,
                         ocr_channels=8, dropout_ratio=0.05, num_classes=3, norm_cfg=NORM,
                         act_cfg=LEAKY),
        auxiliary_head=[fcn(16, 3, num_convs=0, channels=16)],
        fusion=dict(type='SSRScaleFusion', terminal=False), scale_loss_weight=0.05,
        density_input='resized',
        train_scales=(0.5, 1.0),
        scale_attention=dict(act_cfg=LEAKY),
        test_cfg=dict(mode='whole', scales=(0.5, 1.0))),
    'ssr': ssr(),
    'ssr-native': ssr(density_input='native'),
    'hma': ssr('hma'),
    'softmax': ssr('softmax'),
    'mean': ssr('mean'),
}


def build(cfg, seed=0):
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    # non-trivial BN statistics, so that eval-mode normalisation is exercised
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_family_exports_and_verifies_at_two_sizes(family, tmp_path):
    wrapper = SegmentorExportWrapper(build(FAMILIES[family]))
    path = str(tmp_path / f'{family}.onnx')
    # traced at an even size, checked there and at odd sizes (49 x 61 from 64 x 80)
    inputs = random_verify_inputs((64, 80), dynamic=True)
    assert [tuple(x.shape[-2:]) for x in inputs] == [(64, 80), (49, 61)]
    inputs.append(torch.randn(2, 3, 37, 43))
    # loose here; the float64 comparison below is the strict check
    results = export_onnx(wrapper, path, shape=(64, 80), dynamic=True, verify_inputs=inputs,
                          rtol=1e-2)
    assert [r['shape'] for r in results] == [(64, 80), (49, 61), (37, 43)]
    assert all(r['passed'] and r['label_errors'] == 0 for r in results), results
    graph = onnx.load(path)
    onnx.checker.check_model(graph)
    assert [o.name for o in graph.graph.output] == ['logits', 'labels']
    assert all(node.domain in ('', 'ai.onnx') for node in graph.graph.node)
    # random tiny models are ill-conditioned (large activations, logits ~0.1): onnxruntime
    # must be as close to the float64 PyTorch result as PyTorch's own float32 result is
    session = onnx_session(path)
    exact = copy.deepcopy(wrapper).double()
    with torch.no_grad():
        for x in inputs:
            ort_logits, ort_labels = session.run(None, {'input': x.numpy()})
            ref32, ref64 = wrapper(x)[0].double(), exact(x.double())[0]
            err_ort = (torch.from_numpy(ort_logits).double() - ref64).abs().max().item()
            err_torch = (ref32 - ref64).abs().max().item()
            assert err_ort <= max(4 * err_torch, 1e-6 * ref64.abs().max().item()), (
                family, tuple(x.shape), err_ort, err_torch)
            assert ort_labels.shape == (x.shape[0], *x.shape[2:])
            assert ort_labels.dtype == np.int64 and (ort_labels == ort_logits.argmax(1)).all()


@pytest.mark.parametrize('family,flip,scales', [
    ('ssr', False, None), ('ssr', True, None), ('hma', False, None),
    pytest.param('dla-afa-ocr-ssr', True, (0.5, 1.0, 1.5, 1.75, 2.0), marks=pytest.mark.slow)])
def test_exported_fusion_equals_predict(family, flip, scales, tmp_path):
    model = build(FAMILIES[family])
    model.test_cfg['flip'] = flip
    if scales is not None:  # the official AFA test scales
        model.test_cfg['scales'] = scales
    wrapper = SegmentorExportWrapper(model, flip=flip)
    path = str(tmp_path / 'model.onnx')
    export_onnx(wrapper, path, shape=(48, 64), dynamic=True)
    h, w = 53, 71
    x = torch.randn(2, 3, h, w)
    samples = [SegDataSample(metainfo=dict(ori_shape=(h, w), img_shape=(h, w),
                                           pad_shape=(h, w), padding_size=[0, 0, 0, 0]))
               for _ in range(2)]
    with torch.no_grad():
        preds = model.predict(x, samples)
        logits, labels = wrapper(x)
    expected = torch.stack([p.seg_logits.data for p in preds])
    # the wrapper runs predict's own fusion: identical in PyTorch
    assert torch.equal(logits, expected)
    assert torch.equal(labels, torch.cat([p.pred_sem_seg.data for p in preds]))
    ort_logits, ort_labels = onnx_session(path).run(None, {'input': x.numpy()})
    torch.testing.assert_close(torch.from_numpy(ort_logits), expected, rtol=1e-4, atol=1e-4)
    assert (torch.from_numpy(ort_labels) == labels).double().mean() >= 0.999


def test_scales_override_and_plain_encoder_decoder_flip(tmp_path):
    model = build(FAMILIES['ssr'])
    wrapper = SegmentorExportWrapper(model, scales=[0.75, 1.0])
    assert wrapper.scales == (0.75, 1.0)
    x = torch.randn(1, 3, 41, 57)
    with torch.no_grad():
        fused, _ = model.multiscale_logits(x, (0.75, 1.0), flip=False)
        assert torch.equal(wrapper(x)[0], fused)
    plain = build(FAMILIES['rcca'])
    flipped = SegmentorExportWrapper(plain, flip=True)
    with torch.no_grad():
        meta = [dict(img_shape=(41, 57))]
        ref = (plain.encode_decode(x, meta) + plain.encode_decode(x.flip(-1), meta).flip(-1)) / 2
        torch.testing.assert_close(flipped(x)[0], ref)
    results = export_onnx(flipped, str(tmp_path / 'flip.onnx'), shape=(41, 57),
                          verify_inputs=[x])
    assert results[0]['passed']


def test_single_class_labels_are_thresholded():
    cfg = copy.deepcopy(FAMILIES['rcca'])
    cfg['decode_head'].update(num_classes=2, out_channels=1, threshold=0.3,
                              loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True))
    cfg.pop('auxiliary_head')
    wrapper = SegmentorExportWrapper(build(cfg))
    with torch.no_grad():
        logits, labels = wrapper(torch.randn(1, 3, 33, 35))
    assert logits.shape == (1, 1, 33, 35) and labels.shape == (1, 33, 35)
    assert torch.equal(labels, (logits.sigmoid() > 0.3).squeeze(1).long())


def test_static_export_accepts_only_its_size(tmp_path):
    wrapper = SegmentorExportWrapper(build(FAMILIES['afa-deconv']))
    inputs = random_verify_inputs((40, 56), dynamic=False)
    assert [tuple(x.shape) for x in inputs] == [(1, 3, 40, 56)] * 2
    assert not torch.equal(inputs[0], inputs[1])
    path = str(tmp_path / 'static.onnx')
    assert all(r['passed'] for r in export_onnx(wrapper, path, shape=(40, 56),
                                                verify_inputs=inputs))
    session = onnx_session(path)
    with pytest.raises(Exception, match='(?i)dimension|shape'):
        session.run(None, {'input': np.zeros((1, 3, 41, 56), np.float32)})


def test_verification_failure_writes_nothing(tmp_path):
    wrapper = SegmentorExportWrapper(build(FAMILIES['emau']))
    out = tmp_path / 'new' / 'deeper' / 'model.onnx'
    # a negative tolerance cannot be met
    with pytest.raises(ExportError, match='beyond the tolerance'):
        export_onnx(wrapper, str(out), shape=(32, 32), verify_inputs=[torch.randn(1, 3, 32,
                                                                                   32)],
                    atol=-1.0)
    assert not (tmp_path / 'new').exists()
    # an existing file is neither replaced without force nor touched by a failed export
    out = tmp_path / 'model.onnx'
    out.write_bytes(b'old')
    with pytest.raises(FileExistsError, match='force'):
        export_onnx(wrapper, str(out), shape=(32, 32))
    with pytest.raises(ExportError):
        export_onnx(wrapper, str(out), shape=(32, 32), force=True,
                    verify_inputs=[torch.randn(1, 3, 32, 32)], atol=-1.0)
    assert out.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['model.onnx']
    export_onnx(wrapper, str(out), shape=(32, 32), force=True)
    onnx.checker.check_model(str(out))


def test_verify_detects_a_different_model(tmp_path):
    path = str(tmp_path / 'a.onnx')
    export_onnx(SegmentorExportWrapper(build(FAMILIES['a2'], seed=0)), path, shape=(32, 40))
    other = SegmentorExportWrapper(build(FAMILIES['a2'], seed=1))
    results = verify_onnx(path, other, [torch.randn(1, 3, 32, 40)])
    assert not results[0]['passed'] and results[0]['max_abs_diff'] > 1e-3


def test_exporter_error_is_reported(tmp_path):
    class Broken(torch.nn.Module):
        def forward(self, x):
            return x, torch.linalg.eigvals(x[0, 0]).real  # no ONNX symbolic

    out = tmp_path / 'broken.onnx'
    with pytest.raises(ExportError, match='torch.onnx.export failed'):
        export_onnx(Broken(), str(out), shape=(4, 4))
    assert os.listdir(tmp_path) == []


def test_wrapper_errors():
    with pytest.raises(TypeError, match='SegmentorExportWrapper: segmentor must be'):
        SegmentorExportWrapper(torch.nn.Conv2d(3, 3, 1))
    slide = build(dict(FAMILIES['rcca'], test_cfg=dict(mode='slide', crop_size=(32, 32),
                                                         stride=(16, 16))))
    with pytest.raises(ValueError, match="test_cfg.mode must be 'whole'.*'slide'"):
        SegmentorExportWrapper(slide)
    with pytest.raises(ValueError, match=r'need an SSREncoderDecoder.*\(0\.5, 1\.0\)'):
        SegmentorExportWrapper(build(FAMILIES['a2']), scales=(0.5, 1.0))
    with pytest.raises(ValueError, match='SegmentorExportWrapper: scales must be.*1.0'):
        SegmentorExportWrapper(build(FAMILIES['ssr']), scales=(0.5, 2.0))
    with pytest.raises(ValueError, match='shape must be two positive ints'):
        random_verify_inputs((0, 8), dynamic=True)


def test_build_export_model_and_images(tmp_path, repo_root):
    import mmcv

    from mmseg_fusion.deployment import build_export_model, load_verify_images
    config = osp.join(repo_root, 'configs', 'ccnet',
                      'ccnet-official_r101-d8_4xb2-60k_cityscapes-769x769.py')
    with pytest.raises(FileNotFoundError, match='checkpoint'):
        build_export_model(config, str(tmp_path / 'missing.pth'))
    tiny = {'model.backbone.depth': 18, 'model.backbone.stem_channels': 16,
            'model.backbone.base_channels': 8, 'model.decode_head.in_channels': 64,
            'model.decode_head.channels': 16, 'model.auxiliary_head.in_channels': 32,
            'model.auxiliary_head.channels': 8}
    model = build_export_model(config, None, tiny)
    # whole mode (the config slides), BN instead of SyncBN, eval
    assert model.test_cfg.mode == 'whole' and not model.training
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    ckpt = tmp_path / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    loaded = build_export_model(config, str(ckpt), tiny)
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    img = np.random.RandomState(0).randint(0, 256, (21, 30, 3), np.uint8)
    mmcv.imwrite(img, str(tmp_path / 'a.png'))
    native, resized = (load_verify_images([str(tmp_path / 'a.png')], model, shape)[0]
                       for shape in (None, (16, 24)))
    # BGR kept (bgr_to_rgb=False), the official mean subtracted, std 1
    mean = torch.tensor([104.00698793, 116.66876762, 122.67891434]).view(1, 3, 1, 1)
    expected = torch.from_numpy(img.transpose(2, 0, 1).copy()).float()[None] - mean
    torch.testing.assert_close(native, expected)
    assert resized.shape == (1, 3, 16, 24)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_verify_images([str(tmp_path / 'b.png')], model)


@pytest.mark.slow
@pytest.mark.parametrize('config', [
    'ccnet/ccnet-official_r101-d8_4xb2-60k_cityscapes-769x769.py',
    'emanet/emanet-official_r101-d8_4xb4-30k_voc12aug-512x512.py',
    'afa/afa-official-iabn_dla102x-ocr-ssr_8xb2-60k_cityscapes-1024x1024.py',
])
def test_shipped_official_configs_export(config, repo_root, tmp_path):
    from mmseg_fusion.deployment import build_export_model
    torch.manual_seed(0)
    model = build_export_model(osp.join(repo_root, 'configs', config))
    wrapper = SegmentorExportWrapper(model)
    # full widths, the config's own test scales (5 for AFA), small inputs
    inputs = random_verify_inputs((64, 96), dynamic=True)
    results = export_onnx(wrapper, str(tmp_path / 'model.onnx'), shape=(64, 96), dynamic=True,
                          verify_inputs=inputs)
    assert [r['shape'] for r in results] == [(64, 96), (49, 73)]
    assert all(r['passed'] for r in results), results
