"""Mixed precision: every decode head, neck and segmentor under autocast (issue 23, item 5).

Each synthetic config is built through the public path (``Config.fromfile``, ``MODELS.build``,
``revert_sync_batchnorm``) and run through ``model(inputs, samples, mode='loss'|'predict')``
only, on a batch of the synthetic data at 64x64, in float32 and under bfloat16 and float16
autocast on the test's device (``--device``; the CPU by default).

* Default (fast): one training step per cell of the matrix: a finite loss, finite float32
  gradients on the same parameters as in float32, and a loss within 5 % of float32's (same
  weights, same batch, same random draws; dropout off so that no mask depends on the dtype).
  The classifiers (``conv_seg``) are initialised with std 0.3 instead of mmseg's 0.01
  (through ``init_cfg``): with 0.01 every logit is near 0, the loss is about ``log(5)`` per
  head whatever the features, and a 5 % bound could not fail.
* Slow: each config is trained once per session in float32 (:data:`TRAIN_ITERS`
  iterations of 4 random 64x64 crops, the config's optimizer); on 12 synthetic images its
  float32 prediction must be non-trivial (at least 15 % of the object pixels right, where the
  trained models reach 26-43 %: an all-background model, which A2Net and AFA are for their
  first ~100 iterations, gets 0 % and agrees with itself in any precision), and its
  ``predict`` argmax under autocast must agree with float32's on at least 99 % of the pixels
  (SSR and HMA over their 5 test scales).

Measured on CPU (2 cores): the largest loss difference is 2.6 % (AFA, bfloat16), all other
cells are within 0.7 %; the trained predictions agree on 99.91 % of the pixels or more
(bfloat16; float16 99.98 %). The gradients are finite everywhere but not close, so they are
not compared: the whole gradient moves by 19-37 % of its norm in bfloat16 (AFA 72 %, iAFF
102 %: iAFF's error starts in the batch norm of the MS-CAM global branch, which normalises 2
values per channel at batch 2) and by 3-32 % in float16.
"""
import copy
import os.path as osp
from typing import Callable, Dict, Tuple

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: one synthetic config per decode head, neck, loss and segmentor
CONFIGS = {
    'fcn': 'configs/synthetic/fcn_r18-d8_1xb8-600_synthetic-128x128.py',
    'ccnet': 'configs/ccnet/ccnet_r18-d8_1xb8-600_synthetic-128x128.py',
    'ccnet-ccl': 'configs/ccnet/ccnet-ccl_r18-d8_1xb8-600_synthetic-128x128.py',
    'emanet': 'configs/emanet/emanet_r18-d8_1xb8-600_synthetic-128x128.py',
    'a2net': 'configs/a2net/a2net_r18-d8_1xb8-600_synthetic-128x128.py',
    'afa': 'configs/afa/afa_r18_1xb8-600_synthetic-128x128.py',
    'iaff': 'configs/iaff/iaff_r18_1xb8-600_synthetic-128x128.py',
    'ssr': 'configs/ssr/ssr_fcn_r18-d8_1xb8-600_synthetic-128x128.py',
    'hma': 'configs/ssr/hma_fcn_r18-d8_1xb8-600_synthetic-128x128.py',
}
DTYPES = ('float32', 'bfloat16', 'float16')
SIZE = 64
LOSS_RTOL = 0.05
AGREEMENT = 0.99
#: float32 training iterations: A2Net and AFA predict only background for ~100-150
#: iterations; SSR and HMA (two scales per step, up to 2x) learn faster and cost 3x per step
TRAIN_ITERS = dict(ssr=100, hma=100)
DEFAULT_TRAIN_ITERS = 200
TRAIN_BATCH = 4
#: the trained float32 prediction must get this share of the object (non-background) pixels
MIN_OBJECT_ACCURACY = 0.15

pytestmark = pytest.mark.usefixtures('one_thread')


def load_config(name: str, classifier_std=None):
    """The config of ``name`` at 64x64 (data preprocessor and pipelines)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, CONFIGS[name]))  # imports mmseg_fusion
    cfg.model.data_preprocessor.size = (SIZE, SIZE)
    # the synthetic pipelines: train [load, load_ann, RandomResize, RandomCrop, flip, pack],
    # test [load, Resize, load_ann, pack]
    cfg.train_dataloader.dataset.pipeline[2].scale = (SIZE, SIZE)
    cfg.train_dataloader.dataset.pipeline[3].crop_size = (SIZE, SIZE)
    cfg.test_dataloader.dataset.pipeline[1].scale = (SIZE, SIZE)
    if classifier_std is not None:
        aux = cfg.model.get('auxiliary_head') or []
        for head in [cfg.model.decode_head, *([aux] if isinstance(aux, dict) else aux)]:
            head.init_cfg = dict(type='Normal', std=classifier_std,
                                 override=dict(name='conv_seg'))
    return cfg


def default_device() -> torch.device:
    """torch's default device (``--device`` in the model tests)."""
    return torch.empty(()).device


def build_model(cfg) -> torch.nn.Module:
    """The config's segmentor with seeded random weights, SyncBN reverted to BN, moved to the
    default device (as a runner does: the data preprocessor then casts its inputs there)."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()
    return model.to(default_device())


def build_dataset(cfg, data_root: str, split: str, train_pipeline: bool = False):
    """The synthetic ``split`` through the config's test (or train) pipeline."""
    from mmseg.registry import DATASETS
    loader = cfg.train_dataloader if train_pipeline else cfg.test_dataloader
    ds = copy.deepcopy(loader.dataset)
    ds.data_root = data_root
    ds.data_prefix = dict(img_path=f'img_dir/{split}', seg_map_path=f'ann_dir/{split}')
    return DATASETS.build(ds)


def no_dropout(model: torch.nn.Module) -> torch.nn.Module:
    """Dropout off (its masks are random draws that could depend on the dtype)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            module.p = 0.0
    return model


def autocast(dtype_name: str):
    """``torch.autocast`` on the default device (``--device``), off for float32."""
    return torch.autocast(default_device().type, dtype=getattr(torch, dtype_name),
                          enabled=dtype_name != 'float32')


def loss_step(model: torch.nn.Module, data: dict, dtype_name: str
              ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """One training forward (under autocast) and backward; the total loss and the gradients.
    """
    model.train()
    data = copy.deepcopy(data)
    torch.manual_seed(0)  # the same draws (e.g. SSR's pair of training scales) in every dtype
    with autocast(dtype_name):
        losses = model(data['inputs'], data['data_samples'], mode='loss')
    total = 0.
    for key, value in losses.items():
        if 'loss' in key:
            total = total + (sum(value) if isinstance(value, (list, tuple)) else value)
    total.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    return total.detach().float(), grads


@pytest.fixture(scope='module')
def reference(synthetic_root) -> Callable[[str], dict]:
    """``reference(name)``: the model (random weights), a preprocessed training batch (two
    synthetic images with their labels) and its float32 loss and gradients, made once per
    config and device (inside the test, so on its default device)."""
    from mmengine.dataset import pseudo_collate
    cache: Dict[tuple, dict] = {}

    def get(name: str) -> dict:
        key = (name, default_device().type)
        if key not in cache:
            cfg = load_config(name)
            model = no_dropout(build_model(cfg))
            dataset = build_dataset(cfg, synthetic_root, 'train')
            data = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]),
                                           training=True)
            loss, grads = loss_step(copy.deepcopy(model), data, 'float32')
            cache[key] = dict(model=model, data=data, loss=loss, grads=grads)
        return cache[key]

    return get


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('name', list(CONFIGS))
def test_training_step_under_autocast(name, dtype, reference):
    ref = reference(name)
    loss, grads = loss_step(copy.deepcopy(ref['model']), ref['data'], dtype)
    assert torch.isfinite(loss), f'{name} {dtype}: loss {loss.item()}'
    assert set(grads) == set(ref['grads']), (
        f'{name} {dtype}: parameters with a gradient differ from float32: '
        f'{sorted(set(grads) ^ set(ref["grads"]))}')
    bad = [n for n, g in grads.items() if not torch.isfinite(g).all()]
    assert not bad, f'{name} {dtype}: gradients not finite: {bad}'
    assert all(g.dtype == torch.float32 for g in grads.values())
    rel = abs(loss.item() - ref['loss'].item()) / abs(ref['loss'].item())
    assert rel <= LOSS_RTOL, (
        f'{name} {dtype}: loss {loss.item():.5f} vs float32 {ref["loss"].item():.5f} '
        f'({rel:.2%} apart, at most {LOSS_RTOL:.0%})')


def test_reference_losses_differ_between_configs(reference):
    """The matrix compares real, distinct models (not one cached model for every config)."""
    losses = {name: reference(name)['loss'].item() for name in ('fcn', 'ccnet', 'ssr')}
    assert len({round(v, 6) for v in losses.values()}) == 3, losses


# ------------------------------------------------------------ trained models (slow)
def train(name: str, data_root: str) -> Dict[str, torch.Tensor]:
    """Train ``name`` on the synthetic data in float32 (``model.train_step`` with the
    config's optimizer; batches of :data:`TRAIN_BATCH` random 64x64 crops); its state dict.
    """
    iters = TRAIN_ITERS.get(name, DEFAULT_TRAIN_ITERS)
    import random

    import numpy as np
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper
    cfg = load_config(name)
    model = build_model(cfg)
    dataset = build_dataset(cfg, data_root, 'train', train_pipeline=True)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 (mmcv's random transforms draw from the global state)
    g = torch.Generator(device='cpu').manual_seed(0)
    model.train()
    for _ in range(iters):
        index = torch.randint(len(dataset), (TRAIN_BATCH, ), generator=g, device='cpu')
        model.train_step(pseudo_collate([dataset[i] for i in index.tolist()]), optim_wrapper)
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


@pytest.fixture(scope='session')
def trained(synthetic_root) -> Callable[[str], Dict[str, torch.Tensor]]:
    """``trained(name)``: the state dict of ``name`` trained once per session."""
    cache: Dict[str, Dict[str, torch.Tensor]] = {}

    def get(name: str) -> Dict[str, torch.Tensor]:
        if name not in cache:
            cache[name] = train(name, synthetic_root)
        return cache[name]

    return get


@pytest.fixture(scope='module')
def predict_batch(synthetic_root) -> Callable[[str], dict]:
    """``predict_batch(name)``: 4 validation and 8 training images, through the test pipeline.
    """
    from mmengine.dataset import pseudo_collate
    cache: Dict[str, dict] = {}

    def get(name: str) -> dict:
        if name not in cache:
            cfg = load_config(name)
            val = build_dataset(cfg, synthetic_root, 'val')
            tr = build_dataset(cfg, synthetic_root, 'train')
            cache[name] = pseudo_collate([val[i] for i in range(4)]
                                         + [tr[i] for i in range(8)])
        return cache[name]

    return get


@pytest.mark.slow  # trains every config once: about 4 min on 2 cores
@pytest.mark.parametrize('dtype', ('bfloat16', 'float16'))
@pytest.mark.parametrize('name', list(CONFIGS))
def test_trained_prediction_under_autocast(name, dtype, trained, predict_batch):
    model = build_model(load_config(name))
    model.load_state_dict(trained(name))
    model.eval()
    data = model.data_preprocessor(copy.deepcopy(predict_batch(name)), training=False)
    preds = {}
    for precision in ('float32', dtype):
        with torch.no_grad(), autocast(precision):
            out = model(data['inputs'], copy.deepcopy(data['data_samples']), mode='predict')
        preds[precision] = torch.stack([s.pred_sem_seg.data for s in out])
    gt = torch.stack([s.gt_sem_seg.data for s in data['data_samples']]).to(preds[dtype].device)
    assert preds[dtype].shape == preds['float32'].shape == gt.shape
    # the trained model predicts objects, not only background (which would agree trivially)
    objects = gt != 0
    accuracy = (preds['float32'] == gt)[objects].float().mean().item()
    assert accuracy >= MIN_OBJECT_ACCURACY, (
        f'{name}: float32 prediction right on {accuracy:.1%} of the object pixels after '
        f'training (at least {MIN_OBJECT_ACCURACY:.0%})')
    agreement = (preds[dtype] == preds['float32']).float().mean().item()
    assert agreement >= AGREEMENT, (
        f'{name} {dtype}: argmax agrees with float32 on {agreement:.2%} of the pixels '
        f'(at least {AGREEMENT:.0%})')
