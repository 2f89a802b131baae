"""SSR: an ``EncoderDecoder`` whose multi-scale predictions are fused by a learned density.

Paper: Yang, Huang, Sun, Rota Bulò, Kontschieder, Yu, "Dense Prediction with Attentive Feature
Aggregation" (Scale-Space Rendering), WACV 2023, https://arxiv.org/abs/2111.00770. Official
code consulted, not copied: https://github.com/SysCV/dla-afa (``afa_dla_seg_ssr.py``). HMA,
Attention to Scale, mean and max are the other scale fusions (:mod:`mmseg_fusion.models.fusions`).

At every scale (coarsest first) the image is resized, the network runs and the logits are
resized to the input size; the features the decode head classifies (the input of its
``cls_seg``, so any mmseg head works) feed a scale-attention head that gives a per-pixel
density. One density path (:meth:`_decode`) and one fusion object (``self.fusion``) serve
:meth:`loss`, :meth:`predict`, :meth:`predict_view` (``SSRTTAModel``) and the ONNX export,
streamed one scale at a time.

Differences from the official code: the loss is the head's ``loss_decode`` (official: RMI/BCE)
of the fused logits (``decode.*``) and, times ``scale_loss_weight``, of each scale
(``scale_<s>.*``); the defaults are the recipe of the seeded benchmark (``benchmarks/README.md``),
not the official values (0.05, (0.5, 1.0), non-terminal; the ``afa-official*`` configs set
those); auxiliary heads see the 1.0 scale only, while the head's extra outputs (OCR's regions)
are fused with the logits' weights, as official; ``slide`` mode stitches the density too.

Shape shorthand: N batch, C classes, H x W input size, h x w head feature size, S scales.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, OptSampleList, SampleList
from torch import Tensor

from mmseg_fusion.utils.tracing import scaled_size

from ..decode_heads.extra_outputs import head_forward, head_loss_by_extras
from ..fusions import SCALE_FUSIONS, BaseScaleFusion, build_fusion, fusion_cfg
from ..utils.check import check_encoder_decoder
from ..utils.scales import RANDOM_PAIRS, check_scales, scale_sets
from ..utils.size_divisor import check_size_divisor, resize_to_multiple
from .density import build_scale_attention, capture_cls_input
from .views import labels, restore, slide, unflip

__all__ = ['SSREncoderDecoder', 'RANDOM_PAIRS', 'check_scales']


@MODELS.register_module()
class SSREncoderDecoder(EncoderDecoder):
    """Encoder-decoder with a learned fusion of multi-scale predictions (SSR, HMA, ...).

    Args:
        backbone, decode_head, neck, auxiliary_head, train_cfg, data_preprocessor, pretrained,
            init_cfg: As in :class:`mmseg.models.EncoderDecoder`; ``train_cfg`` may set
            ``size_divisor_resize`` (the official AFA training: 64).
        test_cfg (dict, optional): ``EncoderDecoder``'s plus ``scales`` (default: every
            training scale), ``flip`` (False), ``return_weights`` (write ``scale_weights``,
            PixelData (S, H, W), into each sample; False) and ``size_divisor_resize`` (resize
            the input up to multiples of it first, as the official AFA inference with 128).
            Defaults to None (whole).
        fusion (str | dict): The scale fusion, a config dict such as
            ``dict(type='SSRScaleFusion', phi='abs', terminal=False)`` or a shorthand:
            ``'ssr'``, ``'hma'``, ``'softmax'``, ``'mean'``, ``'max'``. Defaults to ``'ssr'``.
        train_scales (Sequence[float] | Sequence[Sequence[float]]): Training scales
            (positive, ascending, containing 1.0), or several such sets, one drawn per step
            (``torch.randint``). Defaults to :data:`RANDOM_PAIRS`.
        scale_loss_weight (float): Weight of each scale's own loss. Defaults to 1.0.
        density_input (str): What the scale attention sees: ``'resized'``, each scale's
            features resized to the 1.0-scale feature size (dla-afa), or ``'native'``, each
            scale's own features, the density resized afterwards (NVIDIA's HMA). Defaults to
            ``'resized'``.
        scale_attention (dict, optional): Arguments of the scale-attention head
            (:func:`~mmseg_fusion.models.segmentors.density.build_scale_attention`), built only
            for fusions with densities. Defaults to None.
    """

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 neck: OptConfigType = None,
                 auxiliary_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None,
                 *,
                 fusion: ConfigType = 'ssr',
                 train_scales: Sequence = RANDOM_PAIRS,
                 scale_loss_weight: float = 1.0,
                 density_input: str = 'resized',
                 scale_attention: OptConfigType = None) -> None:
        name = type(self).__name__
        fusion = fusion_cfg(fusion, SCALE_FUSIONS, name)
        if density_input not in ('resized', 'native'):
            raise ValueError(f"{name}: density_input must be 'resized' or 'native', "
                             f'got {density_input!r}')
        if not float(scale_loss_weight) >= 0:
            raise ValueError(f'{name}: scale_loss_weight must be >= 0, got '
                             f'{scale_loss_weight!r}')
        test_cfg = ConfigDict(test_cfg if test_cfg is not None else dict(mode='whole'))
        self.train_scale_sets = scale_sets(train_scales, name)
        # every scale trained on, ascending (the default test scales)
        self.train_scales = tuple(sorted({s for ss in self.train_scale_sets for s in ss}))
        test_cfg['scales'] = check_scales(test_cfg.get('scales', self.train_scales),
                                          'test_cfg.scales', name)
        for cfg_name, cfg in (('train_cfg', train_cfg), ('test_cfg', test_cfg)):
            check_size_divisor((cfg or {}).get('size_divisor_resize'), name,
                               f'{cfg_name}.size_divisor_resize')
        super().__init__(backbone, decode_head, neck=neck, auxiliary_head=auxiliary_head,
                         train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor, pretrained=pretrained,
                         init_cfg=init_cfg)
        # backbone outputs vs neck in_channels vs heads' in_channels / in_index
        check_encoder_decoder(self)
        self.fusion: BaseScaleFusion = build_fusion(fusion, name, base=BaseScaleFusion)
        self.scale_loss_weight = float(scale_loss_weight)
        self.density_input = density_input
        conv_seg = getattr(self.decode_head, 'conv_seg', None)
        if not isinstance(conv_seg, nn.Conv2d):
            raise ValueError(f'{name}: decode_head must classify with a `conv_seg` nn.Conv2d '
                             f'(mmseg BaseDecodeHead), got {type(conv_seg).__name__}')
        self.scale_attention: Optional[nn.Module] = None
        if self.fusion.needs_density:
            channels, source = self._density_source()
            self.scale_attention = build_scale_attention(
                scale_attention, channels, source, self.fusion.density_activation,
                getattr(self.decode_head, 'norm_cfg', None), name)

    # ------------------------------------------------------------------ the density path
    def _density_source(self) -> Tuple[int, str]:
        """Channels of the features the scale attention sees, and their description."""
        return self.decode_head.conv_seg.in_channels, "decode head's conv_seg.in_channels"

    def _density_features(self, feats: List[Tensor], head_feats: Tensor) -> Tensor:
        """What the scale attention sees: the features the head classifies (N, C', h, w)."""
        return head_feats

    def _decode(self, x: Tensor, scale: float, with_extras: bool = False
                ) -> Tuple[Tensor, Optional[Tensor], List[Tensor], dict]:
        """Logits, density, features and head extras of one input at ``scale``.

        The one place where a density is computed.

        Args:
            x (Tensor): The input resized by ``scale``, (N, 3, H_s, W_s).
            scale (float): The scale of ``x`` relative to the 1.0-scale input.
            with_extras (bool): Also return the head's extra outputs (see
                :mod:`~mmseg_fusion.models.decode_heads.extra_outputs`). Defaults to False.

        Returns:
            tuple: logits (N, C, h_s, w_s) straight from the head; density (N, 1, h', w') at
            the 1.0-scale feature size (``'resized'``) or this scale's (``'native'``), None
            without a scale attention; the backbone/neck features; the head's extras.
        """
        feats = self.extract_feat(x)
        with capture_cls_input(self.decode_head) as store:
            logits, extras = head_forward(self.decode_head, feats, with_extras)
        density = None
        if self.scale_attention is not None:
            if not store:
                raise RuntimeError(f'{type(self).__name__}: the decode head never called its '
                                   '`cls_seg`; the scale attention needs its input features')
            feat = self._density_features(feats, store[-1])
            if self.density_input == 'resized' and scale != 1.0:
                # (N, C', h, w): features resized to the 1.0-scale feature size
                size = scaled_size(feat.shape[-2:], scale, inverse=True)
                feat = F.interpolate(feat, size=size, mode='bilinear', align_corners=False)
            density = self.scale_attention(feat)
        return logits, density, feats, extras

    def _to_size(self, x: Tensor, size: Sequence[int]) -> Tensor:
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        return F.interpolate(x, size=tuple(size), mode='bilinear',
                             align_corners=self.align_corners)

    def _resize_input(self, inputs: Tensor, scale: float) -> Tensor:
        """``inputs`` (N, 3, H, W) resized bilinearly by ``scale`` (symbolic when traced)."""
        if scale == 1.0:
            return inputs
        return F.interpolate(inputs, size=scaled_size(inputs.shape[-2:], scale),
                             mode='bilinear', align_corners=False)

    def _network_input(self, inputs: Tensor, scale: float, view_scale: float = 1.0,
                       size_1x: Optional[Sequence[int]] = None) -> Tensor:
        """``inputs`` (at ``view_scale``) after ``test_cfg.size_divisor_resize``, by ``scale``.

        ``size_1x`` is the 1.0-scale image size (default: ``inputs``' size / ``view_scale``).
        """
        inputs = resize_to_multiple(inputs, self.test_cfg.get('size_divisor_resize'),
                                    view_scale, size_1x)
        return self._resize_input(inputs, scale)

    def _scale_prediction(self, inputs: Tensor, scale: float, view_scale: float = 1.0,
                          size_1x: Optional[Sequence[int]] = None
                          ) -> Tuple[Tensor, Optional[Tensor]]:
        """Logits (N, C, H, W) at the input size and density (N, 1, h', w') of one scale.

        ``view_scale`` is the scale ``inputs`` already has (a test-time view). In ``slide``
        mode the density is stitched at the input size (h', w') = (H, W).
        """
        x = self._network_input(inputs, scale, view_scale, size_1x)
        base = tuple(inputs.shape[-2:])
        if self.test_cfg.get('mode', 'whole') == 'slide':
            logits, density = slide(lambda crop: self._decode(crop, scale * view_scale)[:2],
                                    x, self.test_cfg, self.out_channels, self.align_corners)
            if density is not None:
                density = F.interpolate(density, size=base, mode='bilinear', align_corners=False)
        else:
            logits, density, _, _ = self._decode(x, scale * view_scale)
        return self._to_size(logits, base), density

    # ------------------------------------------------------------------ public API
    def multiscale_logits(self, inputs: Tensor, scales: Optional[Sequence[float]] = None,
                          flip: Optional[bool] = None, return_weights: bool = False
                          ) -> Tuple[Tensor, Optional[Tensor]]:
        """Fused logits (N, C, H, W), streamed over the scales, and the per-scale weights.

        Args:
            inputs (Tensor): Images (N, 3, H, W).
            scales (Sequence[float], optional): Defaults to None (``test_cfg.scales``).
            flip (bool, optional): Average with the mirrored image's fused logits.
                Defaults to None (``test_cfg.flip``).
            return_weights (bool): Also return the weights (N, S, H, W) (None for a fusion
                without per-scale weights). Defaults to False.

        Returns:
            tuple[Tensor, Tensor | None]: The fused logits and the weights.
        """
        scales = self.test_cfg.scales if scales is None else scales
        flip = self.test_cfg.get('flip', False) if flip is None else flip
        results = []
        for image in ((inputs, inputs.flip(-1)) if flip else (inputs, )):
            state = self.fusion.init(keep_weights=return_weights)
            for i, scale in enumerate(scales):
                logits, density = self._scale_prediction(image, scale)
                self.fusion.update(state, logits, density, last=i == len(scales) - 1)
                del logits, density
            results.append((self.fusion.finish(state), self.fusion.weights(state)))
        if not flip:
            return results[0]
        (fused, weights), (fused_f, weights_f) = results
        if weights is not None:
            weights = (weights + weights_f.flip(-1)) / 2
        return (fused + fused_f.flip(-1)) / 2, weights

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Losses of the fused logits, of each scale's logits and of the auxiliary heads.

        Args:
            inputs (Tensor): Images (N, 3, H, W).
            data_samples (list[:obj:`SegDataSample`]): With ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: ``decode.*`` (fused logits and the head's fused extras, e.g.
            ``decode.aux_ocr.*``), ``scale_<s>.*`` (per scale, weighted) and ``aux*.*``.
        """
        base = tuple(inputs.shape[-2:])
        inputs = resize_to_multiple(inputs, (self.train_cfg or {}).get('size_divisor_resize'))
        sets = self.train_scale_sets
        scales = sets[int(torch.randint(len(sets), ()))] if len(sets) > 1 else sets[0]
        state, extra_states, losses = self.fusion.init(), {}, {}
        for i, scale in enumerate(scales):
            last = i == len(scales) - 1
            logits, density, feats, extras = self._decode(self._resize_input(inputs, scale),
                                                          scale, with_extras=True)
            logits = self._to_size(logits, base)
            self.fusion.update(state, logits, density, last)
            for key, extra in extras.items():
                # the head's extra maps are fused with the weights of the logits
                extra_state = extra_states.setdefault(key, self.fusion.init())
                self.fusion.update(extra_state, self._to_size(extra, base), density, last)
            if self.scale_loss_weight > 0:
                for key, value in self.decode_head.loss_by_feat(logits, data_samples).items():
                    weight = self.scale_loss_weight if key.startswith('loss') else 1.0
                    losses[f'scale_{scale:g}.{key}'] = value * weight
            if scale == 1.0 and self.with_auxiliary_head:
                losses.update(self._auxiliary_head_forward_train(feats, data_samples))
        decode = self.decode_head.loss_by_feat(self.fusion.finish(state), data_samples)
        decode.update(head_loss_by_extras(
            self.decode_head, {k: self.fusion.finish(s) for k, s in extra_states.items()},
            data_samples))
        losses.update({f'decode.{key}': value for key, value in decode.items()})
        return losses

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Fused logits (N, C, H, W) over ``test_cfg.scales`` (and flips)."""
        return self.multiscale_logits(inputs)[0]

    def predict(self, inputs: Tensor, data_samples: OptSampleList = None,
                return_weights: Optional[bool] = None) -> SampleList:
        """Fused multi-scale prediction.

        Args:
            inputs (Tensor): Images (N, 3, H, W).
            data_samples (list[:obj:`SegDataSample`], optional): Samples with metainfo.
                Defaults to None.
            return_weights (bool, optional): Also write ``scale_weights`` (PixelData
                (S, H_ori, W_ori)) for fusions with per-scale weights (all but max).
                Defaults to None (``test_cfg.return_weights``).

        Returns:
            list[:obj:`SegDataSample`]: With ``seg_logits`` (fused) and ``pred_sem_seg``.
        """
        if return_weights is None:
            return_weights = bool(self.test_cfg.get('return_weights', False))
        fused, weights = self.multiscale_logits(inputs, return_weights=return_weights)
        samples = self.postprocess_result(fused, data_samples)
        if weights is not None:
            for i, sample in enumerate(samples):
                w = weights[i:i + 1]
                if data_samples is not None:
                    w = restore(w, sample.metainfo, self.align_corners)
                sample.set_data({'scale_weights': PixelData(data=w[0])})
        return samples

    def predict_view(self, inputs: Tensor, data_samples: OptSampleList = None,
                     scale: float = 1.0) -> SampleList:
        """Single-scale prediction of one test-time view, for :class:`SSRTTAModel`.

        Args:
            inputs (Tensor): Images of one view (N, 3, H, W).
            data_samples (list[:obj:`SegDataSample`], optional): Samples with metainfo
                (``flip`` is undone). Defaults to None.
            scale (float): The view's scale relative to the original image; the density is
                computed as in :meth:`predict` at that scale. Defaults to 1.0.

        Returns:
            list[:obj:`SegDataSample`]: With ``seg_logits`` (the view's own logits at the
            original size), ``pred_sem_seg`` and, for fusions with densities,
            ``seg_density``: in ``whole`` mode without padding the density as :meth:`predict`
            fuses it (1, h', w'), un-flipped; otherwise at the original size.
        """
        metas = [s.metainfo for s in data_samples or []]
        unpadded = data_samples is not None and not any(
            any(m.get('img_padding_size', m.get('padding_size', [0]))) for m in metas)
        size_1x = metas[0].get('ori_shape') if metas else None
        if self.test_cfg.get('mode', 'whole') == 'whole' and unpadded:
            # the head's logits go straight to ori_shape (a view at scale > 1 is larger)
            logits, density, _, _ = self._decode(
                self._network_input(inputs, 1.0, scale, size_1x), scale)
            for i, sample in enumerate(data_samples):
                # (C, H_ori, W_ori)
                seg_logits, pred = labels(
                    restore(logits[i:i + 1], sample.metainfo, self.align_corners)[0],
                    self.decode_head.threshold)
                sample.set_data({'seg_logits': PixelData(data=seg_logits),
                                 'pred_sem_seg': PixelData(data=pred)})
                if density is not None:
                    sample.seg_density = PixelData(
                        data=unflip(density[i:i + 1], sample.metainfo)[0])
            return data_samples
        logits, density = self._scale_prediction(inputs, 1.0, view_scale=scale, size_1x=size_1x)
        samples = self.postprocess_result(logits, data_samples)
        if density is not None:
            density = F.interpolate(density, size=logits.shape[-2:], mode='bilinear',
                                    align_corners=False)
            for i, sample in enumerate(samples):
                d = density[i:i + 1]
                if data_samples is not None:
                    d = restore(d, sample.metainfo, self.align_corners)
                sample.set_data({'seg_density': PixelData(data=d[0])})
        return samples
