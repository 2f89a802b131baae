"""Test-time augmentation (scales x flips) fused by SSR densities, streaming.

For ``tools/test.py --tta`` with :class:`SSREncoderDecoder` (Scale-Space Rendering, Yang et al.,
WACV 2023, https://arxiv.org/abs/2111.00770): every view of the ``tta_pipeline`` runs at its own
scale through :meth:`SSREncoderDecoder.predict_view`, given the view's scale so that its density
is computed exactly as in :meth:`SSREncoderDecoder.predict`, which writes the view's logits and
its density (``seg_density``) into the data sample, already un-flipped (logits at the original
size, the density at the size :meth:`~SSREncoderDecoder.predict` fuses it).
The views are grouped by flip and ordered by scale (coarsest first) from their metainfo, each
group is fused with the segmentor's fusion (SSR by default) and the groups are averaged. With a
model that gives no densities (any mmseg segmentor) the softmax of the views is averaged, as
mmseg's ``SegTTAModel`` does.

Compared with mmseg's ``SegTTAModel``: views are merged as they are predicted (only the
running fusion and one view are alive, not every view), the metainfo of the view closest to the
original image (no flip, scale 1.0) is kept (``img_path``, ``reduce_zero_label``, ...), and a
sample without ground truth is fine (use a ``tta_pipeline`` without ``LoadAnnotations`` and
``test_evaluator.format_only=True``).

Shape shorthand: C classes, H x W original image size.
"""
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseTTAModel
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import SampleList

from ..fusions import SCALE_FUSIONS, BaseScaleFusion, build_fusion, fusion_cfg

__all__ = ['SSRTTAModel']

ViewKey = Tuple[Tuple[bool, str], float]


def view_key(meta: dict) -> ViewKey:
    """``((flip, direction), scale)`` of a view, from its metainfo.

    Args:
        meta (dict): Metainfo with ``flip``/``flip_direction`` and ``scale_factor`` (or
            ``img_shape`` and ``ori_shape``).

    Returns:
        tuple: The flip group and the scale of the view.
    """
    flip = bool(meta.get('flip', False))
    direction = str(meta.get('flip_direction') or '') if flip else ''
    factor = meta.get('scale_factor')
    if factor is not None:
        factor = factor if isinstance(factor, (tuple, list)) else (factor, )
        scale = float(sum(factor) / len(factor))
    else:
        scale = float(meta['img_shape'][0]) / float(meta['ori_shape'][0])
    return (flip, direction), scale


class _StreamingMerge:
    """Running merge of the views of one batch (one state per image)."""

    def __init__(self, fusion: Optional[BaseScaleFusion]) -> None:
        self.fusion = fusion
        self.images: List[Dict] = []

    def add(self, samples: SampleList, key: ViewKey, last_in_group: bool) -> None:
        if not self.images:
            self.images = [dict(group=None, state=None, total=None, count=0, best=None,
                                best_key=None) for _ in samples]
        for img, sample in zip(self.images, samples):
            # (C, H, W)
            logits = sample.seg_logits.data
            density = sample.seg_density.data if 'seg_density' in sample else None
            closeness = (key[0][0], abs(key[1] - 1.0))
            if img['best'] is None or closeness < img['best_key']:
                # keep the metainfo and ground truth only, not the view's logits
                best = SegDataSample(metainfo=sample.metainfo)
                if 'gt_sem_seg' in sample:
                    best.gt_sem_seg = sample.gt_sem_seg
                img['best'], img['best_key'] = best, closeness
            if self.fusion is None or density is None:
                probs = logits.softmax(0) if logits.shape[0] > 1 else logits.sigmoid()
                img['total'] = probs if img['total'] is None else img['total'].add_(probs)
                img['count'] += 1
                continue
            if img['state'] is None or img['group'] != key[0]:
                img['state'] = self.fusion.init()
                img['group'] = key[0]
            # (1, C, H, W) and (1, 1, H, W)
            self.fusion.update(img['state'], logits[None], density[None], last=last_in_group)
            if last_in_group:
                fused = self.fusion.finish(img['state'])[0]
                img['total'] = fused if img['total'] is None else img['total'].add_(fused)
                img['count'] += 1
                img['state'] = None

    def result(self, threshold: float) -> SampleList:
        out = []
        for img in self.images:
            sample: SegDataSample = img['best']
            merged = img['total'] / img['count']
            if merged.shape[0] > 1:
                pred = merged.argmax(dim=0, keepdim=True)
            else:
                pred = (merged > threshold).to(merged)
            sample.seg_logits = PixelData(data=merged)
            sample.pred_sem_seg = PixelData(data=pred)
            out.append(sample)
        return out


@MODELS.register_module()
class SSRTTAModel(BaseTTAModel):
    """Merge scales x flips views with the densities of :class:`SSREncoderDecoder`.

    Holds no learnable parameters (checkpoints load into ``module``).

    Args:
        module (dict | nn.Module): The segmentor. With a ``predict_view`` method (an
            :class:`SSREncoderDecoder`) each view is predicted at its own scale with a density;
            otherwise ``module.test_step`` runs and the softmax of the views is averaged.
        data_preprocessor (dict | nn.Module, optional): See ``BaseTTAModel``. Defaults to None.
        fusion (str | dict, optional): Scale fusion of the views of one flip group, one that
            uses densities: ``'ssr'``, ``'hma'``, ``'softmax'`` or a config dict (e.g.
            ``dict(type='SSRScaleFusion', terminal=False)``). Defaults to None: the module's
            own ``fusion`` object (the one its ``predict`` fuses with) when it uses densities,
            else softmax averaging.
    """

    def __init__(self, module: Union[dict, nn.Module],
                 data_preprocessor: Union[dict, nn.Module, None] = None,
                 fusion: Union[str, dict, None] = None) -> None:
        super().__init__(module, data_preprocessor)
        if fusion is None:
            fusion = getattr(self.module, 'fusion', None)
            if not isinstance(fusion, BaseScaleFusion) or not fusion.needs_density:
                fusion = None
        else:
            fusion = self._density_fusion(fusion)
        # not a submodule: the module's fusion stays the module's (no parameters either way)
        self.__dict__['fusion'] = fusion

    @staticmethod
    def _density_fusion(fusion: Union[str, dict]) -> BaseScaleFusion:
        """Build ``fusion`` (a shorthand or a config dict); it must use densities."""
        allowed = tuple(k for k, v in SCALE_FUSIONS.items() if MODELS.get(v).needs_density)
        error = ValueError(f'SSRTTAModel: fusion must be one of {allowed} or None, got '
                           f'{fusion!r} (or a dict(type=...) of a scale fusion that uses '
                           'densities)')
        if isinstance(fusion, str) and fusion not in allowed:
            raise error
        built = build_fusion(fusion_cfg(fusion, SCALE_FUSIONS, 'SSRTTAModel'), 'SSRTTAModel',
                             base=BaseScaleFusion)
        if not built.needs_density:
            raise error
        return built

    def _predict_view(self, data: dict, scale: float = 1.0) -> SampleList:
        if hasattr(self.module, 'predict_view'):
            data = self.module.data_preprocessor(data, False)
            return self.module.predict_view(data['inputs'], data['data_samples'], scale=scale)
        return self.module.test_step(data)

    def _threshold(self) -> float:
        head = getattr(self.module, 'decode_head', None)
        return float(getattr(head, 'threshold', None) or 0.5)

    def _merge(self, views: Iterable[Tuple[SampleList, ViewKey, bool]]) -> SampleList:
        merge = _StreamingMerge(self.fusion)
        for samples, key, last in views:
            merge.add(samples, key, last)
            del samples  # the view is merged: free it before the next one is predicted
        return merge.result(self._threshold())

    @staticmethod
    def _order(keys: Sequence[ViewKey]) -> List[Tuple[int, bool]]:
        """View indices grouped by flip and sorted by scale, with a last-in-group flag."""
        order = sorted(range(len(keys)), key=lambda i: keys[i])
        return [(idx, pos == len(order) - 1 or keys[order[pos + 1]][0] != keys[idx][0])
                for pos, idx in enumerate(order)]

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        """Merge already computed views (the ``BaseTTAModel`` interface).

        Args:
            data_samples_list (list[list[:obj:`SegDataSample`]]): Per image, its views.

        Returns:
            list[:obj:`SegDataSample`]: One merged sample per image.
        """
        out = []
        for views in data_samples_list:
            keys = [view_key(s.metainfo) for s in views]
            out += self._merge(([views[i]], keys[i], last) for i, last in self._order(keys))
        return out

    def test_step(self, data: Union[dict, tuple, list]) -> SampleList:
        """Predict every view and merge it at once, so at most one view is alive.

        Args:
            data (dict | tuple | list): The TTA batch (``inputs`` and ``data_samples``, each a
                list over views of lists over images).

        Returns:
            list[:obj:`SegDataSample`]: One merged sample per image.
        """
        if isinstance(data, dict):
            num_views = len(data[next(iter(data))])
            views = [{k: v[i] for k, v in data.items()} for i in range(num_views)]
            metas = [v['data_samples'][0].metainfo for v in views]
        elif isinstance(data, (tuple, list)):
            num_views = len(data[0])
            views = [[d[i] for d in data] for i in range(num_views)]
            metas = [v[1][0].metainfo for v in views]
        else:
            raise TypeError(f'SSRTTAModel: data must be a dict, tuple or list, got {type(data)}')
        keys = [view_key(m) for m in metas]

        def stream():
            for idx, last in self._order(keys):
                samples = self._predict_view(views[idx], keys[idx][1])
                views[idx] = None
                yield samples, keys[idx], last
                del samples

        with torch.no_grad():
            return self._merge(stream())
