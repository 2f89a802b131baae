"""tools/analysis/visualize_scale_attention.py: one PNG per image with the scale weights."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

CONFIG = osp.join('configs', 'ssr', 'ssr_fcn_r18-d8_1xb8-600_synthetic-128x128.py')


def val_images(root, n=2):
    import glob
    return sorted(glob.glob(osp.join(root, 'img_dir', 'val', '*.png')))[:n]


def check_png(path, min_width):
    img = Image.open(path)
    assert img.format == 'PNG' and img.size[0] >= min_width, img.size
    assert np.asarray(img).std() > 0


def test_writes_one_png_per_image(tmp_path, repo_root, synthetic_root, analysis_tool):
    """In-process on a checkpoint holding the model's (initialised) state_dict."""
    tool = analysis_tool('visualize_scale_attention')
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    cfg = Config.fromfile(osp.join(repo_root, CONFIG))
    model = MODELS.build(cfg.model)
    ckpt = tmp_path / 'model.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    images = val_images(synthetic_root)
    out = tmp_path / 'vis'
    tool.main([osp.join(repo_root, CONFIG), str(ckpt), *images, '--out-dir', str(out),
               '--cfg-options', 'model.test_cfg.scales=(0.5,1.0,2.0)'])
    for img in images:
        check_png(out / osp.basename(img), min_width=300)
    # the annotation next to the image is found; a path outside img_dir has none
    assert tool.find_annotation(images[0], '.png').endswith(
        osp.join('ann_dir', 'val', osp.basename(images[0])))
    assert tool.find_annotation(str(tmp_path / 'x.png'), '.png') is None
    with pytest.raises(SystemExit, match='one file per image'):
        tool.main([osp.join(repo_root, CONFIG), str(ckpt), *images, '--ann', images[0]])
    with pytest.raises(SystemExit, match='expected SSREncoderDecoder'):
        tool.main([osp.join(repo_root, 'configs', 'synthetic',
                            'fcn_r18-d8_1xb8-600_synthetic-128x128.py'), str(ckpt), images[0]])
    # a fusion without per-scale weights: inference_model's sample has no scale_weights
    with pytest.raises(SystemExit, match=r'returned no scale_weights .* this fusion has no '
                                         r'per-scale weights'):
        tool.main([osp.join(repo_root, CONFIG), str(ckpt), images[0], '--out-dir', str(out),
                   '--cfg-options', 'model.fusion=max'])


def test_weights_come_from_inference_model(tmp_path, repo_root, synthetic_root, analysis_tool,
                                           monkeypatch):
    """The pictures are drawn from what ``mmseg.apis.inference_model`` returns."""
    tool = analysis_tool('visualize_scale_attention')
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    model = MODELS.build(Config.fromfile(osp.join(repo_root, CONFIG)).model)
    ckpt = tmp_path / 'model.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    calls = []
    real = tool.inference_model

    def spy(model, img):
        calls.append((model.test_cfg.return_weights, img))
        return real(model, img)

    monkeypatch.setattr(tool, 'inference_model', spy)
    images = val_images(synthetic_root)
    tool.main([osp.join(repo_root, CONFIG), str(ckpt), *images, '--out-dir',
               str(tmp_path / 'vis'), '--cfg-options', 'model.test_cfg.scales=(1.0,2.0)'])
    assert calls == [(True, img) for img in images]


@pytest.mark.slow
def test_on_a_trained_checkpoint(tmp_path, repo_root, synthetic_root, tiny_options, run_tool):
    work = str(tmp_path / 'work')
    run_tool([osp.join(repo_root, 'tools', 'train.py'), CONFIG, '--work-dir', work,
              '--cfg-options', *tiny_options(synthetic_root, iters=2, ckpt_interval=2)])
    images = val_images(synthetic_root, n=3)
    out = tmp_path / 'vis'
    proc = run_tool([osp.join(repo_root, 'tools', 'analysis', 'visualize_scale_attention.py'),
                     CONFIG, osp.join(work, 'iter_2.pth'), *images, '--out-dir', str(out)])
    assert proc.stdout.count('wrote ') == 3
    for img in images:
        check_png(out / osp.basename(img), min_width=400)
