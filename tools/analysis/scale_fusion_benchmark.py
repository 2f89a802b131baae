"""Seeded benchmark of the scale fusions (SSR, HMA, softmax, mean-TTA) and of the AFA neck.

    python tools/analysis/scale_fusion_benchmark.py [--rows main] [--seeds 0 1 2] [--jobs 2]
        [--iters 1000] [--data a [b ...]] [--device cpu] [--out work_dirs/scale_fusion_benchmark]

Every row is one model recipe (network + training); every (row, seed) is trained from scratch
on data generated in memory by :mod:`mmseg_fusion.datasets.synthetic_generator` and evaluated
on its validation split at scale 1.0, as the mean of the logits over the test scales
(mean-TTA) and, for the fusion models, with their own fusion over the test scales. The table
gives mean ± std of mIoU over the seeds and the worst class IoU of the main evaluation.

The models are built from mmseg / mmseg_fusion configs (``MODELS.build``) and trained with
their own ``train_step`` (mmseg's data preprocessor and losses, mmengine's optimizer wrapper);
the loop itself is a lean in-process one (data held in memory, SGD + poly as the synthetic
configs), so that a 2-core CPU runs the main table in about half an hour. Each training also
runs on a GPU (``--device cuda``; several share it with ``--jobs``). Results of each (data,
row, seed) are cached as JSON under ``--out``, with the generated data; a second run only
trains what is missing and rewrites ``--out/table_<data>_<rows>.md``.

Data sets (:data:`DATASETS`): ``a`` (the tuning set: 128x128, 2-8 objects of 6 px up to 1.25
times the image, whose texture period grows with the size, 400 train / 100 val images) and
``b`` (held out, never tuned on: another seed, up to 10 objects of 5 px up to 1.5 times the
image, finer textures); ``classic`` and ``legible`` are the earlier, less scale-limited sets.
"""
import argparse
import json
import math
import multiprocessing
import os
import os.path as osp
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmseg_fusion.models.segmentors.ssr_encoder_decoder import RANDOM_PAIRS

TEST_SCALES = (0.5, 0.75, 1.0, 1.5, 2.0)
DATASETS = {
    # the tuning set: legible textures, objects of 6 px up to 1.25 x the image (the largest
    # only partly visible), so that both ends of the size range are hard at scale 1.0
    'a': dict(image_size=128, min_size=6.0, max_objects=8, num_train=400, num_val=100, seed=0,
              style='wide'),
    # held out (never tuned on): another seed, more and smaller objects, up to 1.5 x the
    # image, textures of 5 periods per object as in the classic style
    'b': dict(image_size=128, min_size=5.0, max_objects=10, num_train=400, num_val=100, seed=7,
              style=dict(base='legible', max_size_ratio=1.5, period_divisor=5.0)),
    # the earlier data sets (objects up to half the image; the classic style is the demo's)
    'classic': dict(image_size=128, min_size=6.0, max_objects=12, num_train=400, num_val=100,
                    seed=0),
    'legible': dict(image_size=128, min_size=8.0, max_objects=10, num_train=400, num_val=100,
                    seed=0, style='legible'),
}
NUM_CLASSES = 5
WIDTH = 8  # ResNetV1c-18 at 1/8 width

# ----------------------------------------------------------------------------- recipes
NORM = dict(type='BN', requires_grad=True)


def _fcn(w: int = WIDTH) -> dict:
    """ResNetV1c-18 (D8) + FCNHead + auxiliary FCNHead, as the synthetic configs."""
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=False, pad_val=0,
                               seg_pad_val=255),
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=w, base_channels=w,
                      num_stages=4, out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
                      strides=(1, 2, 1, 1), norm_cfg=NORM, norm_eval=False, style='pytorch',
                      contract_dilation=True),
        decode_head=dict(type='FCNHead', in_channels=8 * w, in_index=3, channels=4 * w,
                         num_convs=1, concat_input=True, dropout_ratio=0.1,
                         num_classes=NUM_CLASSES, norm_cfg=NORM, align_corners=False,
                         loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        auxiliary_head=dict(type='FCNHead', in_channels=4 * w, in_index=2, channels=2 * w,
                            num_convs=1, concat_input=False, dropout_ratio=0.1,
                            num_classes=NUM_CLASSES, norm_cfg=NORM, align_corners=False,
                            loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4)),
        train_cfg=dict(), test_cfg=dict(mode='whole'))


def _afa(fusion: str, **neck) -> dict:
    """The same backbone without dilation (strides 4-32), AFANeck, FCNHead on the fused map."""
    cfg = _fcn()
    w = WIDTH
    cfg['backbone'].update(dilations=(1, 1, 1, 1), strides=(1, 2, 2, 2))
    neck.setdefault('fused_levels', 3)
    cfg['neck'] = dict(type='AFANeck', in_channels=[w, 2 * w, 4 * w, 8 * w], fusion=fusion,
                       norm_cfg=NORM, **neck)
    cfg['decode_head'].update(in_channels=neck.get('fused_channels') or w, in_index=0,
                              channels=4 * w, concat_input=False)
    # outs[1 + j] is level j aggregated (in_channels[j]): the auxiliary head on level 2
    cfg['auxiliary_head'].update(in_channels=4 * w, in_index=3)
    return cfg


def _ssr(**kwargs) -> dict:
    cfg = _fcn()
    cfg['type'] = 'SSREncoderDecoder'
    cfg.update(kwargs)
    return cfg


# The official SSR recipe, and the recipe chosen by the rows below (the defaults of
# SSREncoderDecoder): a random pair of scales per step, each scale fully supervised, terminal.
OFFICIAL = dict(fusion='ssr', phi='abs', terminal=False, train_scales=(0.5, 1.0),
                scale_loss_weight=0.05, density_input='resized', fuse_log_probs=False)
# RANDOM_PAIRS: one pair per training step, drawn at random, each test scale with 1.0 (the
# default train_scales of SSREncoderDecoder)
CHOSEN = dict(OFFICIAL, scale_loss_weight=1.0, terminal=True, train_scales=RANDOM_PAIRS)
OPACITY_HALF = math.log(2.0)  # |b| with 1 - exp(-|b|) = 0.5


def _chosen(**changes) -> dict:
    """The chosen SSR recipe with ``changes`` (one per ablation row)."""
    return _ssr(**dict(CHOSEN, **changes))


ROWS: Dict[str, dict] = {
    # --- the main table
    'plain': dict(model=_fcn(), aug=False, doc='plain FCN (EncoderDecoder)'),
    'plain-aug': dict(model=_fcn(), aug=True, doc='plain FCN + random resize 0.5-2'),
    'hma': dict(model=_chosen(fusion='hma', terminal=False), aug=False,
                doc='HMA (fusion=hma), same training'),
    'softmax': dict(model=_chosen(fusion='softmax', terminal=False), aug=False,
                    doc='Attention to Scale (softmax over scales), same training'),
    'ssr': dict(model=_chosen(), aug=False,
                doc='SSR, the default: random scale pairs, scale_loss_weight 1, terminal'),
    'afa': dict(model=_afa('afa', reduction=8), aug=False,
                doc='AFANeck fusion=afa (reduction 8: 1 hidden unit on 8 channels)'),
    'concat': dict(model=_afa('concat'), aug=False, doc='AFANeck fusion=concat'),
    # --- SSR ablations: one change of the chosen recipe per row
    'ssr-official': dict(model=_ssr(**OFFICIAL), aug=False,
                         doc='SSR, official recipe: (0.5, 1), scale_loss_weight 0.05, '
                             'not terminal'),
    'ssr-nonterminal': dict(model=_chosen(terminal=False), aug=False,
                            doc='ssr, not terminal (official)'),
    'ssr-fixed-pair': dict(model=_chosen(train_scales=(0.5, 1.0)), aug=False,
                           doc='ssr, train scales (0.5, 1) (official)'),
    'ssr-pairs15': dict(model=_chosen(train_scales=RANDOM_PAIRS[:3]), aug=False,
                        doc='ssr, random pairs without (1, 2)'),
    'ssr-3scales': dict(model=_chosen(train_scales=(0.5, 1.0, 2.0)), aug=False,
                        doc='ssr, train scales (0.5, 1, 2) at every step'),
    'ssr-slw0.05': dict(model=_chosen(scale_loss_weight=0.05), aug=False,
                        doc='ssr, scale_loss_weight 0.05 (official)'),
    'ssr-slw0.2': dict(model=_chosen(scale_loss_weight=0.2), aug=False,
                       doc='ssr, scale_loss_weight 0.2'),
    'ssr-slw0.5': dict(model=_chosen(scale_loss_weight=0.5), aug=False,
                       doc='ssr, scale_loss_weight 0.5'),
    'ssr-native': dict(model=_chosen(density_input='native'), aug=False,
                       doc='ssr, attention on each scale\'s own features (NVIDIA)'),
    'ssr-backbone': dict(model=_chosen(density_features='backbone'), aug=False,
                         doc='ssr, attention on the backbone output (non-OCR official)'),
    'ssr-logsoftmax': dict(model=_chosen(fuse_log_probs=True), aug=False,
                           doc='ssr, fuse log-softmax (non-OCR official)'),
    'ssr-opacity0.5': dict(model=_chosen(scale_attention=dict(bias_init=OPACITY_HALF)),
                           aug=False, doc='ssr, initial opacity 0.5 (density bias)'),
    'ssr-softplus': dict(model=_chosen(phi='softplus'), aug=False,
                         doc='ssr, phi softplus (= HMA with an attention that sees the '
                             'resized features)'),
    'hma-nvidia-order': dict(model=_chosen(fusion='hma', terminal=False), aug=False,
                             fused_by='hma-nvidia',
                             doc="hma, fused in NVIDIA's resampling order (nscale_forward)"),
    'ssr-aug': dict(model=_chosen(), aug=True, doc='ssr + random resize 0.5-2'),
    'mean': dict(model=_chosen(fusion='mean'), aug=False,
                 doc='mean of the scales in training and test (no attention), same training'),
    # --- AFA ablations: one change per row
    'afa-r2': dict(model=_afa('afa', reduction=2), aug=False,
                   doc='afa, channel-attention reduction 2 (4 hidden units)'),
    'afa-norm': dict(model=_afa('afa', reduction=8, normalize=True), aug=False,
                     doc='afa, normalised (convex) fusion weights'),
    'afa-deconv': dict(model=_afa('afa', reduction=8, upsample='deconv'), aug=False,
                       doc='afa, official deconv upsampling in the nodes'),
    'afa-fl2': dict(model=_afa('afa', reduction=8, fused_levels=2), aug=False,
                    doc='afa, fused_levels 2'),
    'afa-fc32': dict(model=_afa('afa', reduction=8, fused_channels=32), aug=False,
                     doc='afa, fused map of 32 channels (8 by default)'),
    'afa-conv': dict(model=_afa('afa', reduction=8, node_conv=True), aug=False,
                     doc='afa, a 3x3 conv after every fusion (as the concat nodes)'),
    'concat-fc32': dict(model=_afa('concat', fused_channels=32), aug=False,
                        doc='concat, fused map of 32 channels'),
    'add': dict(model=_afa('add'), aug=False,
                doc='AFANeck fusion=add: the levels summed (no attention, no conv)'),
}
GROUPS = {
    'main': ['plain', 'plain-aug', 'hma', 'softmax', 'ssr', 'afa', 'concat'],
    'ssr-ablation': ['ssr', 'ssr-official', 'ssr-nonterminal', 'ssr-fixed-pair', 'ssr-pairs15',
                     'ssr-3scales', 'ssr-slw0.05', 'ssr-slw0.2', 'ssr-slw0.5', 'ssr-native',
                     'ssr-backbone', 'ssr-logsoftmax', 'ssr-opacity0.5', 'ssr-softplus',
                     'ssr-aug', 'mean'],
    'afa-ablation': ['afa', 'afa-r2', 'afa-norm', 'afa-deconv', 'afa-fl2', 'afa-fc32',
                     'afa-conv', 'concat', 'concat-fc32', 'add'],
    # the same HMA models fused in our order and in NVIDIA's (nscale_forward)
    'hma-order': ['hma', 'hma-nvidia-order'],
    'heldout': ['plain', 'plain-aug', 'hma', 'softmax', 'ssr', 'ssr-backbone', 'ssr-3scales'],
}


# ----------------------------------------------------------------------------- data
def dataset_style(name: str):
    """The :class:`SampleStyle` of data set ``name``.

    ``DATASETS[name]['style']`` is a style name, or a dict of a ``base`` style name and the
    fields that differ from it.
    """
    import dataclasses

    from mmseg_fusion.datasets.synthetic_generator import STYLES
    style = DATASETS[name].get('style', 'classic')
    if isinstance(style, str):
        return STYLES[style]
    fields = dict(style)
    return dataclasses.replace(STYLES[fields.pop('base', 'classic')], **fields)


def make_data(name: str, cache_dir: Optional[str] = None
              ) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Images (N, H, W, 3) uint8 and labels (N, H, W) uint8 of both splits of a data set.

    With ``cache_dir`` the arrays are kept there (``data_<name>_<hash>.npz``, the hash of the
    data set's spec) and read back by later runs.
    """
    import hashlib
    cache = None
    if cache_dir is not None:
        key = hashlib.sha256(repr(sorted(DATASETS[name].items())).encode()).hexdigest()[:12]
        cache = osp.join(cache_dir, f'data_{name}_{key}.npz')
        if osp.exists(cache):
            with np.load(cache) as f:
                return {split: (f[f'{split}_img'], f[f'{split}_lab'])
                        for split in ('train', 'val')}
    out = _generate(name)
    if cache is not None:
        tmp = f'{cache}.{os.getpid()}.tmp.npz'
        np.savez(tmp, **{f'{split}_{k}': v for split, (img, lab) in out.items()
                         for k, v in (('img', img), ('lab', lab))})
        os.replace(tmp, cache)
    return out


def _generate(name: str) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    from mmseg_fusion.datasets.synthetic_generator import generate_sample
    spec = DATASETS[name]
    style = dataset_style(name)
    out = {}
    for split, num, offset in (('train', spec['num_train'], 0),
                               ('val', spec['num_val'], 1_000_003)):
        imgs, labels = [], []
        for i in range(num):
            rng = np.random.default_rng([spec['seed'], offset + i])
            img, lab = generate_sample(rng, spec['image_size'], spec['min_size'],
                                       spec['max_objects'], style)
            imgs.append(img)
            labels.append(lab)
        out[split] = (np.stack(imgs), np.stack(labels))
    return out


def _batch(data, idx, aug: bool, rng: np.random.Generator, size: int):
    """One training batch as ``train_step`` takes it (random flip; optional random resize)."""
    import cv2
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    imgs, labels = data
    inputs, samples = [], []
    for i in idx:
        img, lab = imgs[i], labels[i]
        if aug:  # mmseg's RandomResize(ratio 0.5-2) + RandomCrop, labels with nearest
            r = rng.uniform(0.5, 2.0)
            s = max(8, int(round(size * r)))
            img = cv2.resize(img, (s, s), interpolation=cv2.INTER_LINEAR)
            lab = cv2.resize(lab, (s, s), interpolation=cv2.INTER_NEAREST)
            if s > size:
                y, x = rng.integers(0, s - size + 1, size=2)
                img, lab = img[y:y + size, x:x + size], lab[y:y + size, x:x + size]
        if rng.random() < 0.5:
            img, lab = img[:, ::-1], lab[:, ::-1]
        h, w = lab.shape
        inputs.append(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))))
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        sample.gt_sem_seg = PixelData(
            data=torch.from_numpy(np.ascontiguousarray(lab)).long()[None])
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


# ----------------------------------------------------------------------------- train / eval
def _iou(conf: np.ndarray) -> np.ndarray:
    inter = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - inter
    return 100.0 * inter / np.maximum(union, 1)


def hma_nvidia_order(model, inputs, scales: Sequence[float]):
    """HMA fused in the order of NVIDIA's ``MscaleOCR.nscale_forward``.

    From ``model``'s own per-scale logits and attention, scales from the largest to the
    smallest: each scale's logits and attention
    (``sigmoid`` of the density) are resized to that scale's input size; the running
    prediction is shrunk to a scale >= 1.0 and mixed there, a scale < 1.0 is mixed
    (attention times logits) at its own size and then enlarged; the largest scale's attention
    is unused. ``SSREncoderDecoder(fusion='hma')`` computes the same recursion with every map
    resized to the input size first.

    Args:
        model (SSREncoderDecoder): A model with ``fusion='hma'``'s attention head.
        inputs (Tensor): Normalised images (N, 3, H, W).
        scales (Sequence[float]): Test scales, 1.0 among them.

    Returns:
        Tensor: Fused logits (N, C, H, W).
    """
    import torch
    import torch.nn.functional as F

    def resize(x, size):
        return F.interpolate(x, size=tuple(size), mode='bilinear', align_corners=False)

    pred = None
    for s in sorted(scales, reverse=True):
        x = model._network_input(inputs, s)
        logits, density = model._decode(x, s)[:2]
        logits = resize(logits, x.shape[-2:])
        attn = torch.sigmoid(resize(density, x.shape[-2:]))
        if pred is None:
            pred = logits
        elif s >= 1.0:
            pred = attn * logits + (1 - attn) * resize(pred, logits.shape[-2:])
        else:
            size = pred.shape[-2:]
            pred = resize(attn * logits, size) + (1 - resize(attn, size)) * pred
    return resize(pred, inputs.shape[-2:])


def _evaluate(model, data, scales: Sequence[float], fusion: str, batch: int = 10,
              scale: Optional[float] = None) -> List[float]:
    """Per-class IoU (%) of ``model`` with ``fusion`` over ``scales`` on a split.

    With ``scale``, the prediction of that one scale alone (``scales`` is then ignored).
    """
    import torch
    import torch.nn.functional as F
    from mmseg.structures import SegDataSample
    imgs, labels = data
    conf = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    old = (model.fusion, model.test_cfg['scales'])
    model.fusion, model.test_cfg['scales'] = fusion, tuple(scales)
    if scale is not None:
        # the one scale as the view of a test-time augmentation (SSREncoderDecoder's scales
        # must contain 1.0): fused alone with 'mean', that is its own logits
        model.fusion, model.test_cfg['scales'] = 'mean', (1.0, )
    try:
        with torch.no_grad():
            for start in range(0, len(imgs), batch):
                chunk = range(start, min(start + batch, len(imgs)))
                h, w = labels.shape[1:]
                inputs = [torch.from_numpy(np.ascontiguousarray(imgs[i].transpose(2, 0, 1)))
                          for i in chunk]
                samples = [SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
                           for _ in chunk]
                if scale is None and fusion != 'hma-nvidia':
                    preds = model.test_step(dict(inputs=inputs, data_samples=samples))
                else:
                    batch_data = model.data_preprocessor(
                        dict(inputs=inputs, data_samples=samples), False)
                    x, metas = batch_data['inputs'], batch_data['data_samples']
                    if scale is None:
                        preds = model.postprocess_result(hma_nvidia_order(model, x, scales),
                                                         metas)
                    else:
                        preds = model.predict_view(
                            F.interpolate(x, scale_factor=scale, mode='bilinear',
                                          align_corners=False), metas, scale=scale)
                for i, p in zip(chunk, preds):
                    pred = p.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
                    conf += np.bincount(NUM_CLASSES * labels[i].astype(np.int64).ravel()
                                        + pred.ravel(),
                                        minlength=NUM_CLASSES**2).reshape(NUM_CLASSES,
                                                                          NUM_CLASSES)
    finally:
        model.fusion, model.test_cfg['scales'] = old
    return [round(float(v), 2) for v in _iou(conf)]


def _as_fusion_model(cfg: dict, trained):
    """An ``SSREncoderDecoder`` that evaluates ``trained`` (any EncoderDecoder) over scales."""
    import copy

    from mmseg.registry import MODELS
    if cfg['type'] == 'SSREncoderDecoder':
        return trained
    ecfg = copy.deepcopy(cfg)
    ecfg.update(type='SSREncoderDecoder', fusion='mean', train_scales=(1.0, ))
    model = MODELS.build(ecfg)
    model.load_state_dict(trained.state_dict())
    return model.eval()


def _widen(cfg: dict, row: str, width: int) -> dict:
    """The FCN / SSR recipe ``cfg`` with backbone and heads at ``width`` base channels."""
    if width == WIDTH:
        return cfg
    if cfg.get('neck') is not None:
        raise ValueError(f'scale_fusion_benchmark: --width {width} is for the FCN and fusion '
                         f'rows, row {row!r} has a neck (AFA rows run at width {WIDTH})')
    cfg['backbone'].update(stem_channels=width, base_channels=width)
    cfg['decode_head'].update(in_channels=8 * width, channels=4 * width)
    cfg['auxiliary_head'].update(in_channels=4 * width, channels=2 * width)
    return cfg


def run_one(row: str, seed: int, iters: int, data_name: str, threads: int,
            lr: float, batch: int, optim_name: str = 'adamw', width: int = WIDTH,
            device: str = 'cpu', cache_dir: Optional[str] = None) -> dict:
    """Train row ``row`` with ``seed`` and evaluate it; returns a JSON-able result."""
    import copy
    import random

    import torch
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmseg_fusion  # noqa: F401
    from mmseg_fusion.utils import init_weights_quietly
    torch.set_num_threads(threads)
    init_default_scope('mmseg')
    spec = ROWS[row]
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (what mmengine's set_random_seed seeds, too)
    torch.manual_seed(seed)
    data = make_data(data_name, cache_dir)
    size = DATASETS[data_name]['image_size']
    cfg = _widen(copy.deepcopy(spec['model']), row, width)
    cfg['data_preprocessor']['size'] = (size, size)
    model = MODELS.build(cfg)
    init_weights_quietly(model)
    model.to(device)
    model.train()
    optimizer = (dict(type='SGD', lr=lr, momentum=0.9, weight_decay=5e-4) if optim_name == 'sgd'
                 else dict(type='AdamW', lr=lr, weight_decay=0.01))
    optim = build_optim_wrapper(model, dict(type='OptimWrapper', optimizer=optimizer))
    rng = np.random.default_rng(seed)
    start = time.time()
    n_train = len(data['train'][0])
    for it in range(iters):
        for group in optim.optimizer.param_groups:
            group['lr'] = (lr - lr / 100) * (1 - it / iters)**0.9 + lr / 100
        idx = rng.choice(n_train, size=batch, replace=False)
        log = model.train_step(_batch(data['train'], idx, spec['aug'], rng, size), optim)
        if (it + 1) % max(1, iters // 4) == 0:
            print(f'  [{row} seed {seed}] iter {it + 1}/{iters} loss {log["loss"].item():.3f} '
                  f'({time.time() - start:.0f} s)', flush=True)
    train_s = time.time() - start
    model.eval()
    emodel = _as_fusion_model(cfg, model)
    fusion = getattr(model, 'fusion', None) if cfg['type'] == 'SSREncoderDecoder' else None
    emodel.to(device)
    result = dict(row=row, seed=seed, iters=iters, data=data_name, lr=lr, batch=batch,
                  optim=optim_name, width=width, device=device, train_s=round(train_s, 1))
    result['single'] = _evaluate(emodel, data['val'], (1.0, ), 'mean')
    # each test scale alone (its prediction resized to the input size)
    result['per_scale'] = {f'{s:g}': _evaluate(emodel, data['val'], (s, ), 'mean', scale=s)
                           for s in TEST_SCALES if s != 1.0}
    result['mean_tta'] = _evaluate(emodel, data['val'], TEST_SCALES, 'mean')
    if fusion is not None and fusion != 'mean':
        fusion = spec.get('fused_by', fusion)
        result['fused'] = _evaluate(emodel, data['val'], TEST_SCALES, fusion)
        train_scales = tuple(model.train_scales)
        result['fused_train_scales'] = _evaluate(emodel, data['val'], train_scales, fusion)
    return result


# ----------------------------------------------------------------------------- table
def _stat(values: List[float]) -> str:
    if not values:
        return '-'
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{mean:.1f} ± {std:.1f}'


def _worst_class(rs: List[dict], key: str) -> float:
    """The lowest per-class IoU, each class's IoU averaged over the seeds first."""
    return min(statistics.mean(r[key][c] for r in rs) for c in range(len(rs[0][key])))


def table(results: List[dict], rows: Sequence[str]) -> str:
    """Markdown table: mean ± std of mIoU over seeds per row and evaluation.

    The worst-class columns give the lowest per-class IoU (seed means) at scale 1.0 and in the
    row's best column; the best single scale is the best of the other test scales alone.
    """
    lines = ['| row | recipe | seeds | scale 1.0 | mean-TTA (5 scales) | fused (train scales) '
             '| fused (5 scales) | best other scale alone | worst class: at 1.0 / best column '
             '| train s |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for row in rows:
        rs = [r for r in results if r['row'] == row]
        if not rs:
            continue
        cols = {}
        for key in ('single', 'mean_tta', 'fused_train_scales', 'fused'):
            cols[key] = [statistics.mean(r[key]) for r in rs if key in r]
        best = max((k for k in cols if cols[k]), key=lambda k: statistics.mean(cols[k]))
        other = '-'
        if all('per_scale' in r for r in rs):
            per_scale = {s: statistics.mean(statistics.mean(r['per_scale'][s]) for r in rs)
                         for s in rs[0]['per_scale']}
            top = max(per_scale, key=per_scale.get)
            other = f'{top}: {per_scale[top]:.1f}'
        lines.append(f"| `{row}` | {ROWS[row]['doc']} | {len(rs)} | {_stat(cols['single'])} | "
                     f"{_stat(cols['mean_tta'])} | {_stat(cols['fused_train_scales'])} | "
                     f"{_stat(cols['fused'])} | {other} | {_worst_class(rs, 'single'):.1f} / "
                     f"{_worst_class(rs, best):.1f} | "
                     f"{statistics.mean(r['train_s'] for r in rs):.0f} |")
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rows', default='main',
                        help=f'a group ({", ".join(GROUPS)}) or comma-separated row names '
                             f'({", ".join(ROWS)})')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=1000)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--optim', choices=('sgd', 'adamw'), default='sgd')
    parser.add_argument('--lr', type=float, default=0.05)
    parser.add_argument('--data', choices=sorted(DATASETS), nargs='+', default=['a'],
                        help='data sets (one table each)')
    parser.add_argument('--width', type=int, default=WIDTH,
                        help='base channels of the FCN and fusion rows (8: 1/8 of ResNet-18)')
    parser.add_argument('--jobs', type=int, default=2, help='parallel trainings')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per training')
    parser.add_argument('--device', default='cpu',
                        help="torch device of the trainings, e.g. 'cuda' (several trainings "
                             'share one GPU with --jobs)')
    parser.add_argument('--out', default='work_dirs/scale_fusion_benchmark')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    rows = GROUPS.get(args.rows, [r for r in args.rows.split(',') if r])
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        print(f'scale_fusion_benchmark: unknown rows {unknown}, expected some of '
              f'{sorted(ROWS)} or a group of {sorted(GROUPS)}', file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)

    def path(data: str, row: str, seed: int) -> str:
        wide = f'_w{args.width}' if args.width != WIDTH else ''
        device = '' if args.device == 'cpu' else f'_{args.device.replace(":", "")}'
        return osp.join(args.out, f'{data}_{row}_s{seed}_it{args.iters}_{args.optim}_'
                        f'lr{args.lr:g}_b{args.batch}{wide}{device}.json')

    # seed-major, so that a run cut short has every row and data set of the first seeds
    runs = [(d, r, s) for s in args.seeds for d in args.data for r in rows]
    todo = [run for run in runs if not osp.exists(path(*run))]
    print(f'scale_fusion_benchmark: {len(runs) - len(todo)} cached, {len(todo)} to train '
          f'({args.jobs} at a time on {args.device})', flush=True)
    start = time.time()
    # a CUDA context does not survive fork: start fresh interpreters for GPU runs
    context = multiprocessing.get_context('spawn' if args.device != 'cpu' else None)
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
        # each data set once, in parallel, into the cache the trainings read
        for data in pool.map(make_data, sorted({d for d, _, _ in todo}),
                             [args.out] * len(todo)):
            del data
        print(f'scale_fusion_benchmark: data ready ({time.time() - start:.0f} s)', flush=True)
        futures = {pool.submit(run_one, r, s, args.iters, d, args.threads, args.lr,
                               args.batch, args.optim, args.width, args.device,
                               args.out): (d, r, s)
                   for d, r, s in todo}
        failed = []
        for n, fut in enumerate(as_completed(futures), 1):
            d, r, s = futures[fut]
            try:
                res = fut.result()
            except Exception as exc:  # report it, keep the other runs' results
                failed.append((d, r, s))
                print(f'[{n}/{len(todo)}] {d} {r} seed {s} FAILED: {type(exc).__name__}: '
                      f'{exc}', flush=True)
                continue
            tmp = path(d, r, s) + '.tmp'
            with open(tmp, 'w') as f:
                json.dump(res, f)
            os.replace(tmp, path(d, r, s))
            summary = ', '.join(f'{k} {statistics.mean(res[k]):.1f}'
                                for k in ('single', 'mean_tta', 'fused_train_scales', 'fused')
                                if k in res)
            print(f'[{n}/{len(todo)}] {d} {r} seed {s}: {summary} '
                  f'({time.time() - start:.0f} s)', flush=True)
    if failed:
        print(f'scale_fusion_benchmark: {len(failed)} runs failed: {failed}', file=sys.stderr)
    for data in args.data:
        results = []
        for r in rows:
            for s in args.seeds:
                if osp.exists(path(data, r, s)):
                    with open(path(data, r, s)) as f:
                        results.append(json.load(f))
        text = (f'data {data} {DATASETS[data]}, width {args.width}, '
                f'{args.iters} iterations, batch '
                f'{args.batch}, {args.optim} lr {args.lr:g} poly, seeds {args.seeds}, '
                f'mIoU %\n\n' + table(results, rows))
        name = f'table_{data}_{args.rows.replace(",", "+")}.md'
        with open(osp.join(args.out, name), 'w') as f:
            f.write(text + '\n')
        print(text, flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
