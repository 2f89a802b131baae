"""Plot the per-scale fusion weights of an SSREncoderDecoder (SSR, HMA, softmax, mean).

    python tools/analysis/visualize_scale_attention.py CFG CKPT IMG [IMG ...] [--out-dir D]

Writes ``D/<image stem>.png`` per image: the input, the weight map of every test scale (the
``scale_weights`` the segmentor returns, at the original image size, on a common 0..1 colour
scale), the fused prediction and, when an annotation is found, the ground truth. The annotation
of ``.../img_dir/<split>/<stem>.<ext>`` is looked for at ``.../ann_dir/<split>/<stem><suffix>``
(``seg_map_suffix`` of the config's test dataset, ``.png`` by default) unless ``--ann`` gives
the files.

The weights come from the call a user makes (README, "Use a trained model"):
``mmseg.apis.init_model`` with ``model.test_cfg.return_weights=True``, then
``mmseg.apis.inference_model(model, img)``, whose data sample holds ``scale_weights``
(PixelData (S, H, W)) next to ``pred_sem_seg``. A fusion without per-scale weights (``max``)
returns no ``scale_weights``; the tool then stops with a message.
"""
import argparse
import os
import os.path as osp
from typing import List, Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config, ConfigDict, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmseg.apis import inference_model, init_model  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from PIL import Image  # noqa: E402

import mmseg_fusion  # noqa: E402, F401  (registers SSREncoderDecoder; safe checkpoint loading)
from mmseg_fusion.models import SSREncoderDecoder  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Plot the scale weights of SSREncoderDecoder')
    parser.add_argument('config', help='config of an SSREncoderDecoder model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--out-dir', default='work_dirs/scale_attention',
                        help='folder for the PNGs (created)')
    parser.add_argument('--ann', nargs='+', default=None,
                        help='annotation files, one per image (default: found next to them)')
    parser.add_argument('--device', default='cpu', help='device, e.g. cpu or cuda:0')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, e.g. model.test_cfg.scales=(1,2)')
    return parser.parse_args(argv)


def find_annotation(img_path: str, suffix: str) -> Optional[str]:
    """``.../ann_dir/<split>/<stem><suffix>`` for ``.../img_dir/<split>/<stem>.<ext>``."""
    parts = osp.abspath(img_path).split(os.sep)
    if 'img_dir' not in parts:
        return None
    parts[len(parts) - 1 - parts[::-1].index('img_dir')] = 'ann_dir'
    parts[-1] = osp.splitext(parts[-1])[0] + suffix
    path = os.sep.join(parts)
    return path if osp.isfile(path) else None


def colorize(labels: np.ndarray, palette: Optional[List[List[int]]]) -> np.ndarray:
    """(H, W) labels -> (H, W, 3) uint8 colours (ignored labels black)."""
    num = int(labels.max()) + 1 if labels.size else 1
    if not palette or len(palette) < num:
        rng = np.random.default_rng(0)
        palette = [list(c) for c in rng.integers(0, 255, (max(num, 1), 3))]
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:len(palette)] = np.asarray(palette[:256], dtype=np.uint8)
    out = lut[np.clip(labels, 0, 255)]
    out[labels == 255] = 0
    return out


def build_model(args: argparse.Namespace) -> torch.nn.Module:
    """``init_model`` of the config and checkpoint, returning the per-scale weights.

    Args:
        args (argparse.Namespace): ``config``, ``checkpoint``, ``device`` and
            ``cfg_options``.

    Returns:
        nn.Module: The segmentor, in eval mode, with ``test_cfg.return_weights=True``.
    """
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_type = MODELS.get(cfg.model.type) if isinstance(cfg.model.type, str) \
        else cfg.model.type
    if not (isinstance(model_type, type) and issubclass(model_type, SSREncoderDecoder)):
        name = getattr(model_type, '__name__', cfg.model.type)
        raise SystemExit(f'visualize_scale_attention: the model of {args.config} is a '
                         f'{name}, expected SSREncoderDecoder')
    # the documented way to get the weights of a single image from mmseg's inference API
    if cfg.model.get('test_cfg') is None:
        cfg.model.test_cfg = ConfigDict()
    cfg.model.test_cfg.return_weights = True
    return init_model(cfg, args.checkpoint, device=args.device)


def fusion_name(model: torch.nn.Module) -> str:
    """The segmentor's fusion, short, for the titles: ``'ssr'`` for ``SSRScaleFusion``."""
    fusion = getattr(model, 'fusion', None)
    if isinstance(fusion, str):
        return fusion
    name = type(fusion).__name__
    return name[:-len('ScaleFusion')].lower() if name.endswith('ScaleFusion') else name


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    if args.ann is not None and len(args.ann) != len(args.images):
        raise SystemExit(f'visualize_scale_attention: --ann needs one file per image, got '
                         f'{len(args.ann)} for {len(args.images)} images')
    model = build_model(args)
    suffix = model.cfg.test_dataloader.dataset.get('seg_map_suffix', '.png')
    palette = (getattr(model, 'dataset_meta', None) or {}).get('palette')
    os.makedirs(args.out_dir, exist_ok=True)
    for idx, img_path in enumerate(args.images):
        sample = inference_model(model, img_path)
        if 'scale_weights' not in sample:
            raise SystemExit(
                f'visualize_scale_attention: the model of {args.config} returned no '
                f'scale_weights with test_cfg.return_weights=True (fusion '
                f'{fusion_name(model)}): this fusion has no per-scale weights; use ssr, hma, '
                'softmax or mean')
        weights = sample.scale_weights.data.float().cpu().numpy()
        pred = sample.pred_sem_seg.data[0].cpu().numpy()
        scales = tuple(model.test_cfg.get('scales') or ())
        if len(scales) != len(weights):
            scales = tuple(range(len(weights)))
        image = np.asarray(Image.open(img_path).convert('RGB'))
        ann = args.ann[idx] if args.ann else find_annotation(img_path, suffix)
        gt = np.asarray(Image.open(ann)) if ann else None

        panels = 2 + len(scales) + (gt is not None)
        fig, axes = plt.subplots(1, panels, figsize=(2.6 * panels, 2.9), squeeze=False)
        axes = axes[0]
        axes[0].imshow(image)
        axes[0].set_title('input')
        for k, scale in enumerate(scales):
            im = axes[1 + k].imshow(weights[k], cmap='viridis', vmin=0.0, vmax=1.0)
            axes[1 + k].set_title(f'weight x{scale:g} ({fusion_name(model)})')
        axes[1 + len(scales)].imshow(colorize(pred, palette))
        axes[1 + len(scales)].set_title('fused prediction')
        if gt is not None:
            axes[-1].imshow(colorize(gt.astype(np.int64), palette))
            axes[-1].set_title('ground truth')
        for ax in axes:
            ax.axis('off')
        fig.colorbar(im, ax=list(axes[1:1 + len(scales)]), fraction=0.02, pad=0.01)
        out = osp.join(args.out_dir, osp.splitext(osp.basename(img_path))[0] + '.png')
        fig.savefig(out, dpi=80, bbox_inches='tight')
        plt.close(fig)
        print(f'wrote {out}')


if __name__ == '__main__':
    main()
