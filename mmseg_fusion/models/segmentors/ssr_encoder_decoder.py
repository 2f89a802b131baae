"""SSR: an ``EncoderDecoder`` whose multi-scale predictions are fused by a learned density.

Paper: Yang, Huang, Sun, Rota Bulò, Kontschieder, Yu, "Dense Prediction with Attentive Feature
Aggregation" (Scale-Space Rendering, SSR), WACV 2023, https://arxiv.org/abs/2111.00770.
Official code consulted as reference (not copied): https://github.com/SysCV/dla-afa
(``afa_dla_seg_ssr.py``, ``attn_utils.scale_space_rendering``). HMA (Tao et al.,
https://arxiv.org/abs/2005.10821) and Attention to Scale (Chen et al., CVPR 2016) are options.

Shape shorthand: N batch, C classes, H x W input (1.0-scale) size, h x w size of the decode
head's features at the 1.0 scale, h_s x w_s their size at scale s, S scales.

How it works. At every scale ``s`` (coarsest first) the image is resized bilinearly, the whole
network runs, and the decode head's logits are resized to the input size. The input of the
head's ``cls_seg`` (the features it classifies, before the classifier dropout; captured with
a forward pre-hook on ``dropout`` or ``conv_seg``, so any mmseg decode head that ends in
``cls_seg`` works) is fed to a scale-attention head
(:class:`~mmseg_fusion.layers.SpatialAttention`, one shared by all scales, ``activation='abs'``
for SSR) that gives a per-pixel density ``y_s``. With ``density_input='resized'`` (dla-afa) the
features are first resized to the 1.0-scale feature size (h_s / s, w_s / s); with ``'native'``
(NVIDIA's HMA) the attention runs on each scale's own features and only the map is resized.
The logits (or, with ``fuse_log_probs``, their log-softmax) are fused with
:mod:`mmseg_fusion.functional.scale_fusion` one scale at a time, so only one scale's working
set plus the running fusion is alive during inference.

One density path: :meth:`loss`, :meth:`predict` (``whole`` and ``slide``) and
:meth:`predict_view` (hence :class:`~mmseg_fusion.models.SSRTTAModel`) compute a scale's density
with the same function (:meth:`_decode` given the scale), so ``--tta`` over the same scales
without flips fuses the same maps as ``predict``.

Differences from the official code:

- the official loss is NVIDIA's RMI/BCE criterion; here the decode head's own ``loss_decode``
  is used for the fused logits (prefix ``decode``) and, times ``scale_loss_weight``, for each
  scale's logits (prefix ``scale_<s>``);
- defaults chosen by the seeded benchmark of ``configs/ssr/README.md``, not the official
  values: ``scale_loss_weight=1.0`` (official 0.05), ``train_scales`` a random pair of
  scales per step out of :data:`RANDOM_PAIRS` (official (0.5, 1.0)) and ``terminal=True``
  (official False); the ``configs/afa/afa-official*`` configs set the official values;
- the official code fuses its auxiliary heads' outputs with the same attention; here the
  auxiliary heads (``auxiliary_head``, e.g. DLA's deep supervision) see the 1.0-scale features
  only (as in a plain ``EncoderDecoder``); the decode head's own auxiliary logits (the soft
  object regions of :class:`~mmseg_fusion.models.OCRBlockHead`) are fused with the same
  weights, as official;
- in ``slide`` test mode the density is stitched over windows like the logits and the weights
  are computed at the input size (the official code has no sliding window).
"""
import inspect
from contextlib import contextmanager
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, OptSampleList, SampleList
from torch import Tensor

from mmseg_fusion.functional import scale_fusion as sf
from mmseg_fusion.layers import SpatialAttention
from mmseg_fusion.models.utils.check import check_encoder_decoder
from mmseg_fusion.models.utils.size_divisor import multiple_size, resize_to_multiple
from mmseg_fusion.utils.tracing import scaled_size

__all__ = ['SSREncoderDecoder', 'check_scales', 'RANDOM_PAIRS']

#: The default training scales: one of these pairs per step, drawn at random.
RANDOM_PAIRS = ((0.5, 1.0), (0.75, 1.0), (1.0, 1.5), (1.0, 2.0))


def check_scales(scales: Sequence[float], name: str, owner: str = 'SSREncoderDecoder') -> tuple:
    """Validate a tuple of scales: positive, strictly ascending, containing 1.0.

    Args:
        scales (Sequence[float]): The scales.
        name (str): The argument name, for the error message.
        owner (str): The component name, for the error message. Defaults to
            ``'SSREncoderDecoder'``.

    Returns:
        tuple[float]: The scales as floats.
    """
    try:
        values = tuple(float(s) for s in scales)
    except (TypeError, ValueError):
        raise ValueError(f'{owner}: {name} must be a sequence of positive numbers sorted '
                         f'ascending and containing 1.0, got {scales!r}') from None
    ok = (len(values) > 0 and all(s > 0 for s in values) and 1.0 in values
          and all(a < b for a, b in zip(values, values[1:])))
    if not ok:
        raise ValueError(f'{owner}: {name} must be a sequence of positive numbers sorted '
                         f'ascending and containing 1.0, got {scales!r}')
    return values


def _scale_sets(train_scales: Sequence) -> Tuple[Tuple[float, ...], ...]:
    """``train_scales`` as a tuple of checked scale sets (one set, or several)."""
    if (isinstance(train_scales, (list, tuple)) and len(train_scales) > 0
            and all(isinstance(s, (list, tuple)) for s in train_scales)):
        return tuple(check_scales(s, f'train_scales[{i}]') for i, s in enumerate(train_scales))
    return (check_scales(train_scales, 'train_scales'), )


@MODELS.register_module()
class SSREncoderDecoder(EncoderDecoder):
    """Encoder-decoder with learned fusion of multi-scale predictions (SSR, HMA, ...).

    Args:
        backbone, decode_head, neck, auxiliary_head, train_cfg, data_preprocessor, pretrained,
            init_cfg: As in :class:`mmseg.models.EncoderDecoder`; ``train_cfg`` may also set
            ``size_divisor_resize`` for :meth:`loss` (the official AFA training: 64).
        test_cfg (dict, optional): As in ``EncoderDecoder`` (``mode='whole'|'slide'``,
            ``crop_size``, ``stride``) plus ``scales`` (tuple of float, positive, ascending,
            containing 1.0; defaults to ``train_scales``), ``flip`` (bool, average the fused
            logits of the image and its horizontal flip; defaults to False) and
            ``return_weights`` (bool, write the per-scale weights into each data sample as
            ``scale_weights``, a PixelData of shape (S, H, W); defaults to False) and
            ``size_divisor_resize`` (int, resize the 1.0-scale input bilinearly up to
            multiples of it before the network, take the other scales from that and resize
            every prediction back to the input size, as the official AFA inference does with
            128; test-time views of :meth:`predict_view` run at the same sizes; defaults to
            None: no resize). Defaults to None (``whole`` mode).
        fusion (str): ``'ssr'``, ``'hma'``, ``'softmax'``, ``'mean'`` or ``'max'``.
            Defaults to ``'ssr'``.
        phi (str): ``phi`` of SSR, ``'abs'`` or ``'softplus'``. Defaults to ``'abs'``.
        terminal (bool): Give SSR's finest scale the remaining transmittance, so the weights
            sum to 1. Defaults to True (official: False; with the default random pairs of
            training scales the non-terminal fusion lost about 5 mIoU over 5 test scales in
            the benchmark of ``configs/ssr/README.md``).
        train_scales (Sequence[float] | Sequence[Sequence[float]]): Scales used in
            training, positive, ascending, containing 1.0; or several such scale sets, one
            of which is drawn at random (``torch.randint``, so seeded runs repeat) for each
            training step, e.g. ``((0.5, 1.0), (1.0, 2.0))`` so that the scale attention
            also sees the scales above 1.0 that inference uses. Defaults to
            :data:`RANDOM_PAIRS` = ((0.5, 1.0), (0.75, 1.0), (1.0, 1.5), (1.0, 2.0)), chosen
            by the benchmark of ``configs/ssr/README.md`` (official: (0.5, 1.0)); a step at
            (1.0, 2.0) costs 5 times a 1.0-scale step in time and activation memory.
        scale_loss_weight (float): Weight of the per-scale extra supervision. Defaults to 1.0
            (the official code: 0.05, which leaves each scale's own prediction
            under-trained; see the benchmark of ``configs/ssr/README.md``).
        density_input (str): What the scale attention sees: ``'resized'``, each scale's
            features resized to the 1.0-scale feature size (the official dla-afa code), or
            ``'native'``, each scale's own features, the density map resized afterwards
            (NVIDIA's HMA). Defaults to ``'resized'``.
        fuse_log_probs (bool): Fuse each scale's log-softmax instead of its logits (the
            official non-OCR SSR model fuses ``LogSoftmax`` outputs). Defaults to False.
        density_features (str): Which features the scale attention sees: ``'head'``, the
            features the decode head classifies (the input of its ``cls_seg``; the official
            OCR model's attention sees its OCR features), or ``'backbone'``, the decode
            head's input (the backbone or neck output at its ``in_index``; the official
            non-OCR model's attention sees the AFA neck output). Defaults to ``'head'``.
        scale_attention (dict, optional): Keyword arguments of the scale-attention head
            :class:`~mmseg_fusion.layers.SpatialAttention` (``mid_channels``, ``activation``,
            ``norm_cfg``, ``bias_init`` (initial density, e.g. ``-log(1 - 0.5)`` for an
            initial SSR opacity of 0.5), ...). ``in_channels`` is that of the decode head's
            ``conv_seg`` (an explicit value must equal it) and ``out_channels`` is 1;
            ``activation`` defaults to ``'abs'`` for SSR with ``phi='abs'`` and to None (raw
            scores) otherwise; ``norm_cfg`` defaults to the decode head's. Unused (no head is
            built) for ``'mean'`` and ``'max'``. Defaults to None.
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
                 fusion: str = 'ssr',
                 phi: str = 'abs',
                 terminal: bool = True,
                 train_scales: Sequence = RANDOM_PAIRS,
                 scale_loss_weight: float = 1.0,
                 density_input: str = 'resized',
                 fuse_log_probs: bool = False,
                 density_features: str = 'head',
                 scale_attention: OptConfigType = None) -> None:
        if fusion not in sf.FUSION_METHODS:
            raise ValueError(f'SSREncoderDecoder: fusion must be one of {sf.FUSION_METHODS}, '
                             f'got {fusion!r}')
        if phi not in ('abs', 'softplus'):
            raise ValueError(f"SSREncoderDecoder: phi must be 'abs' or 'softplus', got {phi!r}")
        if density_input not in ('resized', 'native'):
            raise ValueError("SSREncoderDecoder: density_input must be 'resized' or 'native', "
                             f'got {density_input!r}')
        if density_features not in ('head', 'backbone'):
            raise ValueError("SSREncoderDecoder: density_features must be 'head' or "
                             f"'backbone', got {density_features!r}")
        if not float(scale_loss_weight) >= 0:
            raise ValueError(f'SSREncoderDecoder: scale_loss_weight must be >= 0, got '
                             f'{scale_loss_weight!r}')
        test_cfg = ConfigDict(test_cfg if test_cfg is not None else dict(mode='whole'))
        self.train_scale_sets = _scale_sets(train_scales)
        # every scale trained on, ascending (the default test scales)
        self.train_scales = tuple(sorted({s for ss in self.train_scale_sets for s in ss}))
        test_cfg['scales'] = check_scales(test_cfg.get('scales', self.train_scales),
                                          'test_cfg.scales')
        for name, cfg in (('train_cfg', train_cfg), ('test_cfg', test_cfg)):
            divisor = (cfg or {}).get('size_divisor_resize')
            if divisor is not None:
                try:
                    multiple_size((1, 1), divisor)
                except ValueError:
                    raise ValueError(f'SSREncoderDecoder: {name}.size_divisor_resize must be '
                                     f'a positive int or None, got {divisor!r}') from None
        super().__init__(backbone, decode_head, neck=neck, auxiliary_head=auxiliary_head,
                         train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor, pretrained=pretrained,
                         init_cfg=init_cfg)
        # backbone outputs vs neck in_channels vs heads' in_channels / in_index
        check_encoder_decoder(self)
        self.fusion = fusion
        self.phi = phi
        self.terminal = terminal
        self.scale_loss_weight = float(scale_loss_weight)
        self.density_input = density_input
        self.fuse_log_probs = bool(fuse_log_probs)
        self.density_features = density_features
        conv_seg = getattr(self.decode_head, 'conv_seg', None)
        if not isinstance(conv_seg, nn.Conv2d):
            raise ValueError('SSREncoderDecoder: decode_head must classify with a `conv_seg` '
                             f'nn.Conv2d (mmseg BaseDecodeHead), got {type(conv_seg).__name__}')
        feat_channels, feat_name = (conv_seg.in_channels, "decode head's conv_seg.in_channels")
        if density_features == 'backbone':
            in_index = getattr(self.decode_head, 'in_index', None)
            if not isinstance(in_index, int):
                raise ValueError("SSREncoderDecoder: density_features='backbone' needs a decode "
                                 f'head with one input (an int in_index), got {in_index!r}')
            feat_channels, feat_name = (self.decode_head.in_channels,
                                        "decode head's in_channels")
        self.scale_attention: Optional[nn.Module] = None
        if fusion in sf.DENSITY_METHODS:
            kwargs = dict(scale_attention or {})
            in_channels = kwargs.pop('in_channels', feat_channels)
            if in_channels != feat_channels:
                raise ValueError(
                    'SSREncoderDecoder: scale_attention.in_channels must equal the '
                    f'{feat_name} ({feat_channels}, the channels of the features it sees with '
                    f'density_features={density_features!r}), got {in_channels!r}')
            out_channels = kwargs.pop('out_channels', 1)
            if out_channels != 1:
                raise ValueError('SSREncoderDecoder: scale_attention.out_channels must be 1 '
                                 f'(one density per pixel), got {out_channels!r}')
            accepted = set(inspect.signature(SpatialAttention).parameters) - {
                'in_channels', 'out_channels'}
            unknown = sorted(set(kwargs) - accepted)
            if unknown:
                raise TypeError(f'SSREncoderDecoder: scale_attention has unknown keys {unknown}, '
                                f'expected some of {sorted(accepted)}')
            kwargs.setdefault('activation', 'abs' if fusion == 'ssr' and phi == 'abs' else None)
            kwargs.setdefault('norm_cfg',
                              getattr(self.decode_head, 'norm_cfg', None) or dict(type='BN'))
            self.scale_attention = SpatialAttention(in_channels, 1, **kwargs)

    # ------------------------------------------------------------------ building blocks
    @contextmanager
    def _capture_cls_input(self) -> Iterator[List[Tensor]]:
        """Collect the inputs of ``cls_seg`` (of its dropout, else of ``conv_seg``)."""
        store: List[Tensor] = []
        dropout = getattr(self.decode_head, 'dropout', None)
        target = dropout if isinstance(dropout, nn.Module) else self.decode_head.conv_seg
        handle = target.register_forward_pre_hook(
            lambda module, args: store.append(args[0]))
        try:
            yield store
        finally:
            handle.remove()

    def _resize_input(self, inputs: Tensor, scale: float) -> Tensor:
        """``inputs`` (N, 3, H, W) resized bilinearly by ``scale``."""
        if scale == 1.0:
            return inputs
        # max(1, round(h * scale)), kept symbolic when traced (ONNX export)
        size = scaled_size(inputs.shape[-2:], scale)
        return F.interpolate(inputs, size=size, mode='bilinear', align_corners=False)

    def _network_input(self, inputs: Tensor, scale: float, view_scale: float = 1.0,
                       size_1x: Optional[Sequence[int]] = None) -> Tensor:
        """``inputs`` (at ``view_scale``) after ``test_cfg.size_divisor_resize``, then by ``scale``.

        See :func:`~mmseg_fusion.models.utils.size_divisor.resize_to_multiple`; ``size_1x``
        is the 1.0-scale image size (default: ``inputs``' size / ``view_scale``).
        """
        inputs = resize_to_multiple(inputs, self.test_cfg.get('size_divisor_resize'),
                                    view_scale, size_1x)
        return self._resize_input(inputs, scale)

    def _decode(self, x: Tensor, scale: float, with_aux: bool = False
                ) -> Tuple[Tensor, Optional[Tensor], List[Tensor], Optional[Tensor]]:
        """Logits, density, features and head auxiliary logits of one (resized) input.

        The one place where a density is computed (training, ``predict``, ``slide`` windows
        and test-time views).

        Args:
            x (Tensor): Input at some scale, (N, 3, H_s, W_s).
            scale (float): The scale ``x`` was resized by from the 1.0-scale input.
            with_aux (bool): Also return the head's own auxiliary logits (the soft object
                regions of :class:`~mmseg_fusion.models.OCRBlockHead`), for heads that have
                ``forward_with_aux``. Defaults to False.

        Returns:
            tuple: logits (N, C, H_s', W_s') straight from the head, density (N, 1, h', w')
            (``'resized'``: the 1.0-scale feature size (h_s / s, w_s / s); ``'native'``: this
            scale's feature size (h_s, w_s); None without a scale-attention head), the
            backbone/neck features, and the head's auxiliary logits (N, C, H_s', W_s') (None
            unless ``with_aux`` and the head has them).
        """
        feats = self.extract_feat(x)
        head_aux = None
        with self._capture_cls_input() as store:
            if with_aux and self._head_has_aux:
                logits, head_aux = self.decode_head.forward_with_aux(feats)
            else:
                logits = self.decode_head.forward(feats)
        density = None
        if self.scale_attention is not None:
            if not store:
                raise RuntimeError('SSREncoderDecoder: the decode head never called its '
                                   '`cls_seg`; the scale attention needs its input features')
            feat = (store[-1] if self.density_features == 'head' else
                    feats[self.decode_head.in_index])
            if self.density_input == 'resized' and scale != 1.0:
                # (N, C', h, w): features resized to the 1.0-scale feature size
                size = scaled_size(feat.shape[-2:], scale, inverse=True)
                feat = F.interpolate(feat, size=size, mode='bilinear', align_corners=False)
            density = self.scale_attention(feat)
        return logits, density, feats, head_aux

    @property
    def _head_has_aux(self) -> bool:
        """Whether the decode head has its own auxiliary output (``forward_with_aux``)."""
        return (callable(getattr(self.decode_head, 'forward_with_aux', None))
                and callable(getattr(self.decode_head, 'loss_aux_by_feat', None)))

    def _fusion_input(self, logits: Tensor) -> Tensor:
        """What is fused of a scale's logits (N, C, H, W): the logits or their log-softmax."""
        if self.fuse_log_probs and logits.shape[1] > 1:
            return F.log_softmax(logits, dim=1)
        return logits

    def _to_size(self, x: Tensor, size: Sequence[int]) -> Tensor:
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        return F.interpolate(x, size=tuple(size), mode='bilinear',
                             align_corners=self.align_corners)

    def _slide(self, x: Tensor, scale: float) -> Tuple[Tensor, Optional[Tensor]]:
        """Sliding-window logits and density of one (resized) input, both at its size."""
        h_stride, w_stride = self.test_cfg.stride
        h_crop, w_crop = self.test_cfg.crop_size
        n, _, h_img, w_img = x.shape
        h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
        w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
        extra = 0 if self.scale_attention is None else 1
        # (N, C + 1, H_s, W_s): logits and density summed over windows
        preds = x.new_zeros((n, self.out_channels + extra, h_img, w_img))
        count = x.new_zeros((n, 1, h_img, w_img))
        for h_idx in range(h_grids):
            for w_idx in range(w_grids):
                y2 = min(h_idx * h_stride + h_crop, h_img)
                x2 = min(w_idx * w_stride + w_crop, w_img)
                y1, x1 = max(y2 - h_crop, 0), max(x2 - w_crop, 0)
                crop = x[:, :, y1:y2, x1:x2]
                logits, density, _, _ = self._decode(crop, scale)
                out = self._to_size(logits, crop.shape[-2:])
                if density is not None:
                    density = F.interpolate(density, size=crop.shape[-2:], mode='bilinear',
                                            align_corners=False)
                    out = torch.cat([out, density], dim=1)
                preds[:, :, y1:y2, x1:x2] += out
                count[:, :, y1:y2, x1:x2] += 1
        preds = preds / count
        if extra:
            return preds[:, :-1], preds[:, -1:]
        return preds, None

    def _scale_prediction(self, inputs: Tensor, scale: float, view_scale: float = 1.0,
                          size_1x: Optional[Sequence[int]] = None
                          ) -> Tuple[Tensor, Optional[Tensor]]:
        """Logits (N, C, H, W) at the input size and density (N, 1, h', w') of one scale.

        ``inputs`` is resized by ``scale`` (after ``test_cfg.size_divisor_resize``, see
        :meth:`_network_input`); ``view_scale`` is the scale ``inputs`` already has (a
        test-time view). In ``slide`` mode the density is stitched at the input size
        (h', w') = (H, W); in ``whole`` mode see :meth:`_decode`.
        """
        x = self._network_input(inputs, scale, view_scale, size_1x)
        base = tuple(inputs.shape[-2:])
        if self.test_cfg.get('mode', 'whole') == 'slide':
            logits, density = self._slide(x, scale * view_scale)
            if density is not None:
                density = F.interpolate(density, size=base, mode='bilinear', align_corners=False)
        else:
            logits, density, _, _ = self._decode(x, scale * view_scale)
        return self._to_size(logits, base), density

    def _fuse(self, inputs: Tensor, scales: Sequence[float], return_weights: bool
              ) -> Tuple[Tensor, Optional[Tensor]]:
        """Fused logits (N, C, H, W) of one input, streamed over ``scales``.

        Also returns the weights (N, S, H, W) when ``return_weights`` (else None).
        """
        state = sf.init_fusion(self.fusion, self.phi, self.terminal)
        weights: List[Tensor] = []
        for i, scale in enumerate(scales):
            logits, density = self._scale_prediction(inputs, scale)
            logits = self._fusion_input(logits)
            last = i == len(scales) - 1
            if return_weights and self.fusion in ('ssr', 'hma'):
                weights.append(sf.update_fusion(state, logits, density, last, True))
            else:
                sf.update_fusion(state, logits, density, last)
            if return_weights and self.fusion == 'softmax':
                weights.append(self._to_size(density, logits.shape[-2:]))
            elif return_weights and self.fusion == 'mean':
                weights.append(logits.new_full((logits.shape[0], 1, *logits.shape[-2:]),
                                               1 / len(scales)))
            del logits, density
        fused = sf.finish_fusion(state)
        if not return_weights or not weights:
            return fused, None
        if self.fusion == 'softmax':
            weights = sf.softmax_scale_weights(weights)
        return fused, torch.cat(weights, dim=1)

    def _multiscale(self, inputs: Tensor, scales: Sequence[float], flip: bool,
                    return_weights: bool) -> Tuple[Tensor, Optional[Tensor]]:
        fused, weights = self._fuse(inputs, scales, return_weights)
        if flip:
            fused_f, weights_f = self._fuse(inputs.flip(-1), scales, return_weights)
            fused = (fused + fused_f.flip(-1)) / 2
            if weights is not None:
                weights = (weights + weights_f.flip(-1)) / 2
        return fused, weights

    @staticmethod
    def _unflip(x: Tensor, meta: dict) -> Tensor:
        """Undo the flip of a view on a map (1, K, h, w) of any size."""
        if meta.get('flip', False):
            x = x.flip(-1 if meta.get('flip_direction') == 'horizontal' else -2)
        return x

    def _restore(self, x: Tensor, meta: dict, mode: str = 'bilinear') -> Tensor:
        """Undo padding and flip of one map (1, K, H, W) and resize it to ``ori_shape``."""
        h, w = x.shape[-2:]
        left, right, top, bottom = meta.get('img_padding_size',
                                            meta.get('padding_size', [0] * 4))
        x = self._unflip(x[:, :, top:h - bottom, left:w - right], meta)
        return F.interpolate(x, size=tuple(meta['ori_shape']), mode=mode,
                             align_corners=self.align_corners)

    # ------------------------------------------------------------------ public API
    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Losses of the fused logits, of each scale's logits and of the auxiliary heads.

        Args:
            inputs (Tensor): Images (N, 3, H, W).
            data_samples (list[:obj:`SegDataSample`]): With ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: ``decode.*`` (fused), ``scale_<s>.*`` (per scale, weighted),
            ``decode.aux_ocr.*`` (the head's own auxiliary logits fused with the same weights,
            for heads with ``forward_with_aux`` such as ``OCRBlockHead``) and ``aux*.*``
            losses.
        """
        base = tuple(inputs.shape[-2:])
        inputs = resize_to_multiple(inputs, (self.train_cfg or {}).get('size_divisor_resize'))
        state = sf.init_fusion(self.fusion, self.phi, self.terminal)
        # the head's own auxiliary logits (OCR soft regions) are fused with the same weights
        aux_state = (sf.init_fusion(self.fusion, self.phi, self.terminal)
                     if self._head_has_aux else None)
        losses = dict()
        scales = self.train_scale_sets[0]
        if len(self.train_scale_sets) > 1:
            scales = self.train_scale_sets[int(torch.randint(len(self.train_scale_sets), ()))]
        for i, scale in enumerate(scales):
            x = self._resize_input(inputs, scale)
            last = i == len(scales) - 1
            logits, density, feats, head_aux = self._decode(x, scale,
                                                            with_aux=aux_state is not None)
            logits = self._to_size(logits, base)
            sf.update_fusion(state, self._fusion_input(logits), density, last=last)
            if aux_state is not None:
                sf.update_fusion(aux_state, self._to_size(head_aux, base), density, last=last)
            if self.scale_loss_weight > 0:
                scale_losses = self.decode_head.loss_by_feat(logits, data_samples)
                for key, value in scale_losses.items():
                    if key.startswith('loss'):
                        value = value * self.scale_loss_weight
                    losses[f'scale_{scale:g}.{key}'] = value
            if scale == 1.0 and self.with_auxiliary_head:
                losses.update(self._auxiliary_head_forward_train(feats, data_samples))
        fused = sf.finish_fusion(state)
        for key, value in self.decode_head.loss_by_feat(fused, data_samples).items():
            losses[f'decode.{key}'] = value
        if aux_state is not None:
            aux_losses = self.decode_head.loss_aux_by_feat(sf.finish_fusion(aux_state),
                                                           data_samples)
            losses.update({f'decode.{key}': value for key, value in aux_losses.items()})
        return losses

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Fused logits (N, C, H, W) over ``test_cfg.scales`` (and flips)."""
        return self._multiscale(inputs, self.test_cfg.scales,
                                self.test_cfg.get('flip', False), False)[0]

    def predict(self, inputs: Tensor, data_samples: OptSampleList = None,
                return_weights: Optional[bool] = None) -> SampleList:
        """Fused multi-scale prediction.

        Args:
            inputs (Tensor): Images (N, 3, H, W).
            data_samples (list[:obj:`SegDataSample`], optional): Samples with metainfo.
                Defaults to None.
            return_weights (bool, optional): Also write ``scale_weights`` (PixelData
                (S, H_ori, W_ori)) for ``'ssr'``, ``'hma'``, ``'softmax'`` and ``'mean'``.
                Defaults to None (``test_cfg.return_weights``).

        Returns:
            list[:obj:`SegDataSample`]: With ``seg_logits`` (fused) and ``pred_sem_seg``.
        """
        if return_weights is None:
            return_weights = bool(self.test_cfg.get('return_weights', False))
        fused, weights = self._multiscale(inputs, self.test_cfg.scales,
                                          self.test_cfg.get('flip', False), return_weights)
        samples = self.postprocess_result(fused, data_samples)
        if weights is not None:
            for i, sample in enumerate(samples):
                w = weights[i:i + 1]
                if data_samples is not None:
                    w = self._restore(w, sample.metainfo)
                sample.set_data({'scale_weights': PixelData(data=w[0])})
        return samples

    def predict_view(self, inputs: Tensor, data_samples: OptSampleList = None,
                     scale: float = 1.0) -> SampleList:
        """Single-scale prediction of one test-time view, for :class:`SSRTTAModel`.

        Args:
            inputs (Tensor): Images of one view (N, 3, H, W).
            data_samples (list[:obj:`SegDataSample`], optional): Samples with metainfo
                (``flip`` is undone as in ``postprocess_result``). Defaults to None.
            scale (float): The view's scale relative to the original image; the density is
                computed as in :meth:`predict` at that scale. Defaults to 1.0.

        Returns:
            list[:obj:`SegDataSample`]: With ``seg_logits`` (the view's own logits, not
            weighted; their log-softmax with ``fuse_log_probs``), ``pred_sem_seg`` and, when
            the fusion uses densities, ``seg_density``: in ``whole`` mode without padding
            the density as :meth:`predict` fuses it, at its own size (1, h', w'), un-flipped
            (the weights are computed there and resized to the logits, as official);
            otherwise (``slide`` mode, padded views) at the original size (1, H_ori, W_ori).
        """
        unpadded = data_samples is not None and all(
            not any(s.metainfo.get('img_padding_size', s.metainfo.get('padding_size', [0])))
            for s in data_samples)
        if self.test_cfg.get('mode', 'whole') == 'whole' and unpadded:
            return self._predict_view_direct(inputs, data_samples, scale)
        size_1x = None if data_samples is None else data_samples[0].metainfo.get('ori_shape')
        logits, density = self._scale_prediction(inputs, 1.0, view_scale=scale, size_1x=size_1x)
        logits = self._fusion_input(logits)
        samples = self.postprocess_result(logits, data_samples)
        if density is not None:
            density = F.interpolate(density, size=logits.shape[-2:], mode='bilinear',
                                    align_corners=False)
            for i, sample in enumerate(samples):
                d = density[i:i + 1]
                if data_samples is not None:
                    d = self._restore(d, sample.metainfo)
                sample.set_data({'seg_density': PixelData(data=d[0])})
        return samples

    def _predict_view_direct(self, inputs: Tensor, data_samples: SampleList,
                             scale: float) -> SampleList:
        """:meth:`predict_view` in ``whole`` mode without padding, with less memory.

        The head's logits (N, C, h', w') are resized straight to each image's ``ori_shape``
        (after the flip is undone) instead of first to the view's input size, which for views
        at scales > 1 is larger than the original image; the density keeps its size.
        """
        size_1x = data_samples[0].metainfo.get('ori_shape')
        logits, density, _, _ = self._decode(
            self._network_input(inputs, 1.0, scale, size_1x), scale)
        for i, sample in enumerate(data_samples):
            # (C, H_ori, W_ori)
            seg_logits = self._fusion_input(self._restore(logits[i:i + 1], sample.metainfo))[0]
            if seg_logits.shape[0] > 1:
                pred = seg_logits.argmax(dim=0, keepdim=True)
            else:
                seg_logits = seg_logits.sigmoid()
                pred = (seg_logits > self.decode_head.threshold).to(seg_logits)
            sample.set_data({'seg_logits': PixelData(data=seg_logits),
                             'pred_sem_seg': PixelData(data=pred)})
            if density is not None:
                # (1, h', w'): as predict fuses it
                d = self._unflip(density[i:i + 1], sample.metainfo)[0]
                sample.set_data({'seg_density': PixelData(data=d)})
        return data_samples
