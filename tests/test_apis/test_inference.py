"""mmseg's inference APIs on our configs: ``init_model`` + ``inference_model`` and
``MMSegInferencer``, on an image path and on an array, with ``out_dir``.

One synthetic config of each family runs through both APIs with a checkpoint of the model
built from the config (its initial weights, the synthetic classes in ``meta.dataset_meta``);
the test pipeline of every shipped config is run the way each API runs it.
"""
import copy
import glob
import os
import os.path as osp
from types import SimpleNamespace
from typing import Callable, List, Tuple

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.apis import MMSegInferencer, inference_model, init_model
from mmseg.registry import MODELS
from PIL import Image

import mmseg_fusion  # noqa: F401  (registers our components, as custom_imports does)
from mmseg_fusion.datasets import CLASSES, PALETTE, generate_video

pytestmark = pytest.mark.usefixtures('one_thread')

#: one synthetic config of each family
FAMILIES = {
    'ccnet': 'configs/ccnet/ccnet_r18-d8_1xb8-600_synthetic-128x128.py',
    'emanet': 'configs/emanet/emanet_r18-d8_1xb8-600_synthetic-128x128.py',
    'a2net': 'configs/a2net/a2net_r18-d8_1xb8-600_synthetic-128x128.py',
    'afa': 'configs/afa/afa_r18_1xb8-600_synthetic-128x128.py',
    'iaff': 'configs/iaff/iaff_r18_1xb8-600_synthetic-128x128.py',
    'ssr': 'configs/ssr/ssr-retrofit_fcn_r18-d8-w8_1xb8-195_synthetic-128x128.py',  # the demo's
    'hma': 'configs/ssr/hma_fcn_r18-d8_1xb8-600_synthetic-128x128.py',
    'video-2d': 'configs/ccnet/ccnet_r18-d8_1xb8-1k_synthetic-video-64x64.py',
}
VIDEO_3D = 'configs/ccnet/ccnet3d_r18-d8_1xb8-1k_synthetic-video-64x64.py'
#: the odd size of the array input (rows, columns)
ARRAY_SIZE = (45, 61)


@pytest.fixture(scope='module')
def checkpoint(repo_root: str, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """``checkpoint(config)``: a checkpoint of the model built from ``config`` (made once).

    It holds ``state_dict`` and ``meta.dataset_meta`` (the synthetic classes and palette), as
    a checkpoint of ``tools/train.py`` does.
    """
    folder = tmp_path_factory.mktemp('checkpoints')
    made = {}

    def make(config: str) -> str:
        if config not in made:
            init_default_scope('mmseg')
            torch.manual_seed(0)
            model = MODELS.build(Config.fromfile(osp.join(repo_root, config)).model)
            path = str(folder / (osp.splitext(osp.basename(config))[0] + '.pth'))
            torch.save({'state_dict': model.state_dict(),
                        'meta': {'dataset_meta': {'classes': list(CLASSES),
                                                  'palette': [list(c) for c in PALETTE]}}},
                       path)
            made[config] = path
        return made[config]

    return make


@pytest.fixture(scope='module')
def image(synthetic_root: str) -> Tuple[str, np.ndarray]:
    """A validation image of the synthetic data (64x64) and an odd-size BGR array."""
    path = sorted(glob.glob(osp.join(synthetic_root, 'img_dir', 'val', '*.png')))[0]
    array = np.ascontiguousarray(mmcv.imread(path)[:ARRAY_SIZE[0], :ARRAY_SIZE[1]])
    return path, array


@pytest.fixture(scope='module')
def frames(tmp_path_factory: pytest.TempPathFactory) -> List[str]:
    """4 consecutive frames (64x64) of a synthetic video, as PNG files in frame order."""
    folder = tmp_path_factory.mktemp('video')
    images, _, _ = generate_video(np.random.default_rng(0), num_frames=4, degrade_prob=0.0)
    paths = []
    for t, frame in enumerate(images):
        paths.append(str(folder / f'{t:05d}.png'))
        Image.fromarray(frame).save(paths[-1])
    return paths


def check_prediction(sample, size: Tuple[int, int]) -> np.ndarray:
    """Assert a prediction of ``size`` (H, W) with values among the 5 classes; return it."""
    pred = sample.pred_sem_seg.data
    assert tuple(pred.shape) == (1, *size)
    assert int(pred.min()) >= 0 and int(pred.max()) < len(CLASSES)
    assert tuple(sample.seg_logits.data.shape) == (len(CLASSES), *size)
    return pred[0].numpy()


def check_written(out_dir: str, written: List[Tuple[str, np.ndarray]]) -> None:
    """Assert the inferencer's files, ``written`` being ``(picture name, prediction)`` per input
    in call order: ``vis/<name>`` of the input's size, and ``pred/<n>_pred.png`` holding
    exactly the returned labels."""
    assert sorted(os.listdir(osp.join(out_dir, 'vis'))) == sorted(n for n, _ in written)
    names = [f'{i:08d}_pred.png' for i in range(len(written))]
    assert sorted(os.listdir(osp.join(out_dir, 'pred'))) == names
    for name, (vis_name, pred) in zip(names, written):
        saved = np.asarray(Image.open(osp.join(out_dir, 'pred', name)))
        np.testing.assert_array_equal(saved, pred)
        vis = Image.open(osp.join(out_dir, 'vis', vis_name))
        assert vis.size == pred.shape[::-1] and vis.mode == 'RGB'
        assert np.asarray(vis).std() > 0


@pytest.mark.parametrize('config', list(FAMILIES.values()), ids=list(FAMILIES))
def test_both_apis_on_a_path_and_an_array(config, repo_root, tmp_path, checkpoint, image):
    cfg_path, ckpt = osp.join(repo_root, config), checkpoint(config)
    img_path, array = image
    size = Image.open(img_path).size[::-1]

    model = init_model(cfg_path, ckpt, device='cpu')
    assert list(model.dataset_meta['classes']) == list(CLASSES)
    from_path = check_prediction(inference_model(model, img_path), size)
    from_array = check_prediction(inference_model(model, array), ARRAY_SIZE)
    # the checked label loader steps aside: no ground truth, and the pipeline kept it
    assert 'LoadCheckedAnnotations' in [t['type'] for t in model.cfg.test_pipeline]

    inferencer = MMSegInferencer(model=cfg_path, weights=ckpt, device='cpu')
    out_dir = str(tmp_path / 'out')
    result = inferencer(img_path, out_dir=out_dir)
    np.testing.assert_array_equal(result['predictions'], from_path)
    result_array = inferencer(array, out_dir=out_dir)
    np.testing.assert_array_equal(result_array['predictions'], from_array)
    check_written(out_dir, [(osp.basename(img_path), from_path),
                            ('00000001_vis.jpg', from_array)])


def test_a_clip_head_predicts_whole_clips(repo_root, tmp_path, checkpoint, frames):
    """RCCA3DHead attends over clips of ``clip_length`` = 4 consecutive frames: a list of the
    frames of one clip is one batch (``inference_model(model, frames)``, the inferencer with
    ``batch_size=4``); a single image is refused, naming the clip length."""
    cfg_path = osp.join(repo_root, VIDEO_3D)
    # the attention's residual scale starts at 0 (no attention): give it weight 1
    state = torch.load(checkpoint(VIDEO_3D), weights_only=True)
    gammas = [k for k in state['state_dict'] if k.endswith('gamma.scale')]
    assert gammas
    for key in gammas:
        state['state_dict'][key].fill_(1.0)
    ckpt = str(tmp_path / 'clip.pth')
    torch.save(state, ckpt)
    single = r'RCCA3DHead: the batch holds 1 frames, not a multiple of clip_length=4'

    model = init_model(cfg_path, ckpt, device='cpu')
    with pytest.raises(ValueError, match=single):
        inference_model(model, frames[0])
    samples = inference_model(model, frames)
    clip = [check_prediction(s, (64, 64)) for s in samples]
    assert len(clip) == 4
    # the frames attend to each other: the clip's prediction is not the frames' one by one
    # (the 2D config's head, same weights, on each frame alone)
    model_2d = init_model(osp.join(repo_root, FAMILIES['video-2d']), ckpt, device='cpu')
    alone = [s.seg_logits.data for s in inference_model(model_2d, frames)]
    together = [s.seg_logits.data for s in samples]
    assert not all(torch.allclose(a, b) for a, b in zip(alone, together))

    inferencer = MMSegInferencer(model=cfg_path, weights=ckpt, device='cpu')
    out_dir = str(tmp_path / 'out')
    result = inferencer(frames, batch_size=4, out_dir=out_dir)
    for pred, expected in zip(result['predictions'], clip):
        np.testing.assert_array_equal(pred, expected)
    check_written(out_dir, [(osp.basename(f), p) for f, p in zip(frames, clip)])
    with pytest.raises(ValueError, match=single):
        inferencer(frames[0])


@pytest.mark.parametrize('family', ['ssr', 'hma'])
def test_scale_weights_of_one_image(family, repo_root, checkpoint, image):
    """``model.test_cfg.return_weights=True`` puts SSR's per-scale weights (S, H, W) into the
    data sample that ``inference_model`` (and the inferencer) returns."""
    config = FAMILIES[family]
    cfg_path, ckpt = osp.join(repo_root, config), checkpoint(config)
    img_path, array = image
    size = Image.open(img_path).size[::-1]
    cfg = Config.fromfile(cfg_path)
    cfg.model.test_cfg.return_weights = True
    scales = cfg.model.test_cfg.scales
    assert len(scales) == 5

    model = init_model(cfg, ckpt, device='cpu')
    sample = inference_model(model, img_path)
    pred = check_prediction(sample, size)
    weights = sample.scale_weights.data
    assert tuple(weights.shape) == (len(scales), *size)
    assert float(weights.min()) >= 0
    # terminal fusion (SSR's default, and HMA): the weights of each pixel sum to 1
    torch.testing.assert_close(weights.sum(0), torch.ones(size))

    # the same switch on a built model; off: no weights, the same prediction
    model.test_cfg.return_weights = False
    plain = inference_model(model, img_path)
    assert 'scale_weights' not in plain
    np.testing.assert_array_equal(check_prediction(plain, size), pred)
    # (an array last: for one, mmseg 1.2.2 turns the first transform of model.cfg.test_pipeline
    # into LoadImageFromNDArray for good)
    model.test_cfg.return_weights = True
    assert tuple(inference_model(model, array).scale_weights.data.shape) == (
        len(scales), *ARRAY_SIZE)

    cfg = Config.fromfile(cfg_path)
    cfg.model.test_cfg.return_weights = True
    inferencer = MMSegInferencer(model=cfg, weights=ckpt, device='cpu')
    returned = inferencer(img_path, return_datasamples=True)
    torch.testing.assert_close(returned.scale_weights.data, weights)


def shipped_configs(repo_root: str) -> List[str]:
    """Every config under ``configs/`` but the ``_base_`` files."""
    names = sorted(glob.glob(osp.join(repo_root, 'configs', '**', '*.py'), recursive=True))
    return [n for n in names if f'{os.sep}_base_{os.sep}' not in n]


@pytest.mark.slow  # ~30 s, nearly all of it loading the 40-odd configs
def test_every_shipped_config_runs_in_both_apis_pipelines(repo_root, image):
    """The test pipeline of every config, as each API builds it, on a path and an array.

    ``MMSegInferencer`` needs a ``LoadImageFromFile`` in ``test_dataloader.dataset.pipeline``
    and swaps it for its loader of paths and arrays; ``inference_model`` runs
    ``test_pipeline`` (first transform ``LoadImageFromNDArray`` for an array). Neither passes
    a label, and both drop only ``LoadAnnotations``.
    """
    from mmseg.apis.inference import _preprare_data
    img_path, array = image
    configs = shipped_configs(repo_root)
    assert len(configs) > 40
    init_default_scope('mmseg')
    for name in configs:
        cfg = Config.fromfile(name)
        types = [t['type'] for t in cfg.test_dataloader.dataset.pipeline]
        assert 'LoadImageFromFile' in types, (name, types)
        pipeline = MMSegInferencer._init_pipeline(object.__new__(MMSegInferencer),
                                                  copy.deepcopy(cfg))
        for img in (img_path, array):
            data = pipeline(img)
            assert data['inputs'].shape[0] == 3, name
            assert 'gt_sem_seg' not in data['data_samples'], name
            batch, _ = _preprare_data(img, SimpleNamespace(cfg=copy.deepcopy(cfg)))
            assert batch['inputs'][0].shape == data['inputs'].shape, name
