"""SSRTTAModel: density fusion of scales x flips views, streaming, fallback, --tta end to end."""
import copy
import os
import os.path as osp
import shutil
import weakref

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_fusion  # noqa: F401
from mmseg_fusion.functional import fuse_scales
from mmseg_fusion.models.segmentors.ssr_tta import view_key

NORM = dict(type='BN', requires_grad=True)
SEGMENTOR = dict(
    type='SSREncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[0., 0., 0.], std=[1., 1., 1.]),
    backbone=dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
                  out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1),
                  norm_cfg=NORM),
    decode_head=dict(type='FCNHead', in_channels=64, in_index=3, channels=8, num_convs=1,
                     num_classes=3, norm_cfg=NORM, loss_decode=dict(type='CrossEntropyLoss')),
    test_cfg=dict(mode='whole', scales=(0.5, 1.0)),
)
SCALES = (0.5, 1.0, 1.5)
H, W = 20, 26


def build_tta(segmentor=None, **kwargs):
    init_default_scope('mmseg')
    model = MODELS.build(dict(type='SSRTTAModel', module=segmentor or copy.deepcopy(SEGMENTOR),
                              **kwargs))
    return model.eval()


def make_views(num_images=2, gt=True, seed=0, flips=(False, True), images=None):
    """A TTA batch: views = scales x flips, in the order of mmcv's TestTimeAug."""
    g = torch.Generator().manual_seed(seed)
    if images is None:
        images = [torch.rand(3, H, W, generator=g) * 255 for _ in range(num_images)]
    inputs, data_samples = [], []
    for scale in SCALES:
        for flip in flips:
            size = (int(round(H * scale)), int(round(W * scale)))
            view_inputs, view_samples = [], []
            for i, img in enumerate(images):
                x = torch.nn.functional.interpolate(img[None], size=size, mode='bilinear',
                                                    align_corners=False)[0]
                if flip:
                    x = x.flip(-1)
                meta = dict(img_path=f'img_{i}.png', ori_shape=(H, W), img_shape=size,
                            scale_factor=(size[1] / W, size[0] / H), flip=flip,
                            flip_direction='horizontal' if flip else None,
                            reduce_zero_label=False)
                sample = SegDataSample(metainfo=meta)
                if gt:
                    sample.gt_sem_seg = PixelData(data=torch.zeros(1, H, W, dtype=torch.long))
                view_inputs.append(x)
                view_samples.append(sample)
            inputs.append(view_inputs)
            data_samples.append(view_samples)
    return dict(inputs=inputs, data_samples=data_samples)


def reference(model, data):
    """Every view predicted, then SSR per flip group (coarse to fine) and the flip mean."""
    module = model.module
    per_view = []
    for inputs, samples in zip(data['inputs'], data['data_samples']):
        d = module.data_preprocessor(dict(inputs=inputs, data_samples=samples), False)
        per_view.append(module.predict_view(d['inputs'], d['data_samples'],
                                            scale=view_key(samples[0].metainfo)[1]))
    out = []
    for i in range(len(data['inputs'][0])):
        fused = []
        for flip in (False, True):
            views = [v[i] for v in per_view if v[i].flip == flip]
            views.sort(key=lambda s: s.scale_factor[0])
            # SSR/HMA: every density at the coarsest view's size (the rule of update_fusion)
            size = views[0].seg_density.data.shape[-2:]
            densities = [v.seg_density.data[None] for v in views]
            if module.fusion.method in ('ssr', 'hma'):
                densities = [torch.nn.functional.interpolate(d, size=size, mode='bilinear',
                                                             align_corners=False)
                             for d in densities]
            else:  # softmax: scores resized to the logits
                densities = [torch.nn.functional.interpolate(d, size=(H, W), mode='bilinear',
                                                             align_corners=False)
                             for d in densities]
            fused.append(fuse_scales([v.seg_logits.data[None] for v in views], densities,
                                     module.fusion.method, **module.fusion.options())[0])
        out.append(sum(fused) / 2)
    return out


@pytest.mark.parametrize('fusion', ['ssr', 'hma', 'softmax'])
def test_density_fusion_matches_reference_and_order(fusion):
    torch.manual_seed(0)
    segmentor = dict(copy.deepcopy(SEGMENTOR), fusion=fusion)
    model = build_tta(segmentor)
    data = make_views()
    with torch.no_grad():
        out = model.test_step(data)
        ref = reference(model, data)
        # the views in another order (e.g. a tta_pipeline listing flips first) fuse the same
        perm = [5, 2, 0, 4, 1, 3]
        shuffled = {k: [v[i] for i in perm] for k, v in data.items()}
        out2 = model.test_step(shuffled)
    assert len(out) == 2
    for i in range(2):
        assert out[i].seg_logits.data.shape == (3, H, W)
        assert out[i].pred_sem_seg.data.shape == (1, H, W)
        torch.testing.assert_close(out[i].seg_logits.data, ref[i], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out2[i].seg_logits.data, ref[i], rtol=1e-5, atol=1e-6)
        # metainfo of the unflipped 1.0-scale view is kept
        assert out[i].img_path == f'img_{i}.png'
        assert out[i].flip is False and out[i].img_shape == (H, W)
        assert out[i].reduce_zero_label is False
        assert 'gt_sem_seg' in out[i]


def test_merge_preds_interface_equals_test_step():
    torch.manual_seed(1)
    model = build_tta()
    data = make_views()
    module = model.module
    with torch.no_grad():
        per_view = []
        for inputs, samples in zip(data['inputs'], data['data_samples']):
            d = module.data_preprocessor(dict(inputs=inputs, data_samples=samples), False)
            per_view.append(module.predict_view(d['inputs'], d['data_samples'],
                                            scale=view_key(samples[0].metainfo)[1]))
        merged = model.merge_preds(list(zip(*per_view)))
        streamed = model.test_step(data)
    for a, b in zip(merged, streamed):
        torch.testing.assert_close(a.seg_logits.data, b.seg_logits.data)


def test_no_ground_truth_and_no_parameters():
    model = build_tta()
    assert [n for n, _ in model.named_parameters() if not n.startswith('module.')] == []
    with torch.no_grad():
        out = model.test_step(make_views(gt=False))
    assert all('gt_sem_seg' not in s and s.pred_sem_seg.data.shape == (1, H, W) for s in out)


def test_fallback_without_densities_is_softmax_mean():
    torch.manual_seed(2)
    plain = dict(copy.deepcopy(SEGMENTOR), type='EncoderDecoder')
    plain.pop('test_cfg')
    plain['test_cfg'] = ConfigDict(mode='whole')
    model = build_tta(plain)
    assert model.fusion is None
    data = make_views()
    with torch.no_grad():
        out = model.test_step(data)
        views = [model.module.test_step(dict(inputs=i, data_samples=s))
                 for i, s in zip(data['inputs'], data['data_samples'])]
    for i in range(2):
        mean = sum(v[i].seg_logits.data.softmax(0) for v in views) / len(views)
        torch.testing.assert_close(out[i].seg_logits.data, mean)
        torch.testing.assert_close(out[i].pred_sem_seg.data, mean.argmax(0, keepdim=True))
    # a segmentor whose fusion has no density (mean) also falls back
    assert build_tta(dict(copy.deepcopy(SEGMENTOR), fusion='mean')).fusion is None
    with pytest.raises(ValueError, match="SSRTTAModel: fusion must be one of .* got 'max'"):
        build_tta(fusion='max')


@pytest.mark.parametrize('segmentor, match', [
    (dict(test_cfg=dict(mode='whole', scales=(1.0, 0.5))),
     r'SSREncoderDecoder: test_cfg.scales must be a sequence of positive numbers sorted '
     r'ascending and containing 1.0, got \(1.0, 0.5\)'),
    (dict(train_scales=(0.5, 0.75)), r'SSREncoderDecoder: train_scales .* got \(0.5, 0.75\)'),
    (dict(fusion=dict(type='SSRScaleFusion', phi='exp')),
     r"SSRScaleFusion: phi must be 'abs' or 'softplus', got 'exp'"),
    (dict(decode_head=dict(SEGMENTOR['decode_head'], in_index=4)),
     r'SSREncoderDecoder: decode_head \(FCNHead\) in_index must index one of the 4 outputs '
     r'of ResNetV1c \(in \[-4, 3\]\), got 4'),
])
def test_bad_segmentor_raises_when_the_tta_model_is_built(segmentor, match):
    # the views' scales come from the tta_pipeline (sorted per flip group at run time); the
    # wrapped segmentor's own arguments are checked when SSRTTAModel builds it
    with pytest.raises(ValueError, match=match):
        build_tta(dict(copy.deepcopy(SEGMENTOR), **segmentor))


def test_bad_fusion_names_the_component():
    with pytest.raises(ValueError, match=r"SSRTTAModel: fusion must be one of \('ssr', 'hma', "
                                         r"'softmax'\) or None, got 'median'"):
        build_tta(fusion='median')


def test_streaming_keeps_one_view_alive():
    model = build_tta()
    live, peak = [], [0]
    original = model._predict_view

    def tracked(view, scale=1.0):
        out = original(view, scale)
        live[:] = [r for r in live if r() is not None]
        live.append(weakref.ref(out[0].seg_logits.data))
        peak[0] = max(peak[0], len(live))
        return out

    model._predict_view = tracked
    with torch.no_grad():
        model.test_step(make_views())
    assert peak[0] == 1


@pytest.mark.slow
def test_tta_through_tools_test_without_ground_truth(tmp_path, repo_root, synthetic_root,
                                                     tiny_options, run_tool):
    """Train the SSR demo config briefly, then ``tools/test.py --tta`` on images without
    annotation files: the tta_pipeline has no ``LoadAnnotations`` and the evaluator only
    writes the predictions (``format_only``)."""
    config = osp.join(repo_root, 'configs', 'ssr', 'ssr_fcn_r18-d8_1xb8-600_synthetic-128x128.py')
    work = str(tmp_path / 'work')
    opts = tiny_options(synthetic_root, iters=2, ckpt_interval=2)
    run_tool([osp.join(repo_root, 'tools', 'train.py'), config, '--work-dir', work,
              '--cfg-options', *opts])
    # a test set without ground truth: the val images only, no ann_dir
    nogt = tmp_path / 'nogt'
    shutil.copytree(osp.join(synthetic_root, 'img_dir', 'val'), nogt / 'img_dir' / 'val')
    out_dir = tmp_path / 'preds'
    test_cfg = tmp_path / 'nogt_config.py'
    test_cfg.write_text(
        f"_base_ = '{config}'\n"
        "tta_pipeline = [\n"
        "    dict(type='LoadImageFromFile'),\n"
        "    dict(type='TestTimeAug', transforms=[\n"
        "        [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in (0.5, 1.0)],\n"
        "        [dict(type='RandomFlip', prob=0., direction='horizontal'),\n"
        "         dict(type='RandomFlip', prob=1., direction='horizontal')],\n"
        "        [dict(type='PackSegInputs')]])]\n"
        f"test_dataloader = dict(dataset=dict(data_root='{nogt}'))\n"
        f"test_evaluator = dict(format_only=True, output_dir='{out_dir}')\n")
    opts = [o for o in opts if not o.startswith('test_dataloader.dataset.data_root')]
    out = run_tool([osp.join(repo_root, 'tools', 'test.py'), str(test_cfg),
                    osp.join(work, 'iter_2.pth'), '--tta', '--work-dir', work,
                    '--cfg-options', *opts])
    assert 'Load checkpoint from' in out.stdout
    names = sorted(os.listdir(out_dir))
    assert len(names) == 4 and all(n.endswith('.png') for n in names), names


def _blob_batch(g, n=4):
    """Images (n, 3, H, W) in 0-255 whose label (3 classes) is a colour threshold: learnable."""
    images = torch.rand(n, 3, H, W, generator=g) * 60
    labels = torch.zeros(n, H, W, dtype=torch.long)
    for i in range(n):
        for cls in (1, 2):
            y, x = torch.randint(0, H - 6, (2, ), generator=g).tolist()
            size = int(torch.randint(3, 10, (1, ), generator=g))
            labels[i, y:y + size, x:x + size] = cls
            images[i, cls, y:y + size, x:x + size] += 150
    return images, labels


@pytest.mark.parametrize('density_input', ['resized', 'native'])
def test_tta_without_flip_fuses_as_predict_on_a_trained_model(density_input):
    """--tta over the same scales without flips == predict, after some training."""
    from mmengine.optim import OptimWrapper
    torch.manual_seed(0)
    init_default_scope('mmseg')
    cfg = copy.deepcopy(SEGMENTOR)
    cfg['data_preprocessor'] = dict(cfg['data_preprocessor'], size=(H, W))
    cfg.update(density_input=density_input, scale_loss_weight=1.0,
               fusion=dict(type='SSRScaleFusion', terminal=True),
               test_cfg=dict(mode='whole', scales=SCALES))
    segmentor = MODELS.build(cfg)
    optim = OptimWrapper(torch.optim.SGD(segmentor.parameters(), lr=0.05, momentum=0.9))
    g = torch.Generator().manual_seed(1)
    for _ in range(12):
        images, labels = _blob_batch(g)
        samples = []
        for lab in labels:
            sample = SegDataSample(metainfo=dict(img_shape=(H, W), ori_shape=(H, W)))
            sample.gt_sem_seg = PixelData(data=lab[None])
            samples.append(sample)
        segmentor.train_step(dict(inputs=list(images), data_samples=samples), optim)
    segmentor.eval()
    images, _ = _blob_batch(g, n=2)
    with torch.no_grad():
        # the trained density is not constant, so the fusion is not a plain mean
        density = segmentor._decode(images, 1.0)[1]
        assert float(density.std()) > 1e-3
        samples = [SegDataSample(metainfo=dict(img_shape=(H, W), ori_shape=(H, W)))
                   for _ in range(2)]
        expected = segmentor.test_step(dict(inputs=list(images), data_samples=samples))
        tta = MODELS.build(dict(type='SSRTTAModel', module=segmentor)).eval()
        got = tta.test_step(make_views(flips=(False, ), images=list(images)))
    for e, o in zip(expected, got):
        torch.testing.assert_close(o.seg_logits.data, e.seg_logits.data, rtol=1e-4, atol=1e-4)
        assert torch.equal(o.pred_sem_seg.data, e.pred_sem_seg.data)


def test_size_divisor_resize_runs_every_view_at_the_size_predict_uses():
    """test_cfg.size_divisor_resize: each --tta view runs where predict runs that scale."""
    torch.manual_seed(0)
    init_default_scope('mmseg')
    cfg = dict(copy.deepcopy(SEGMENTOR), test_cfg=dict(mode='whole', scales=SCALES,
                                                       size_divisor_resize=16))
    segmentor = MODELS.build(cfg).eval()
    with torch.no_grad():
        segmentor.decode_head.conv_seg.weight.mul_(1000)
    sizes = []
    segmentor.backbone.register_forward_pre_hook(
        lambda m, args: sizes.append(tuple(args[0].shape[-2:])))
    # smooth images, so that a view resized twice is close to the image resized twice
    g = torch.Generator().manual_seed(2)
    images = [torch.nn.functional.interpolate(torch.rand(1, 3, 4, 5, generator=g) * 255,
                                              size=(H, W), mode='bicubic',
                                              align_corners=False)[0] for _ in range(2)]
    metas = [dict(img_shape=(H, W), ori_shape=(H, W)) for _ in range(2)]
    tta = MODELS.build(dict(type='SSRTTAModel', module=segmentor)).eval()
    with torch.no_grad():
        expected = segmentor.test_step(dict(
            inputs=images, data_samples=[SegDataSample(metainfo=m) for m in metas]))
        predict_sizes, sizes[:] = list(sizes), []
        got = tta.test_step(make_views(flips=(False, ), images=images))
        tta_sizes, sizes[:] = list(sizes), []
        segmentor.test_cfg.size_divisor_resize = None
        native = tta.test_step(make_views(flips=(False, ), images=images))
    # 20x26 -> 32x32, then x 0.5, 1.0, 1.5
    assert predict_sizes == tta_sizes == [(16, 16), (32, 32), (48, 48)]
    for e, o, n in zip(expected, got, native):
        err = float((o.seg_logits.data - e.seg_logits.data).abs().max())
        assert err < 0.2 * float((n.seg_logits.data - e.seg_logits.data).abs().max())
        # (what is left: a view is resized twice, from the pipeline's size, not from 32x32)
        agree = float((o.pred_sem_seg.data == e.pred_sem_seg.data).float().mean())
        assert agree > 0.9 and agree > float(
            (n.pred_sem_seg.data == e.pred_sem_seg.data).float().mean()) + 0.1
