"""Official AFA checkpoints (SysCV/dla-afa) -> DLA + ``AFANeck`` + ``OCRBlockHead`` + SSR models.

Paper: Yang et al., "Dense Prediction with Attentive Feature Aggregation", WACV 2023,
https://arxiv.org/abs/2111.00770; official code https://github.com/SysCV/dla-afa
(``afa/model/afa_dla_ocr_seg_ssr.py``, ``necks/afa_dla_up.py``, ``necks/ocr.py``,
``utils/attn_utils.py``; read for key names only, nothing copied).

The released segmentation models (``afa_dla_up_ocr_ssr_<dla>.ckpt``) are PyTorch Lightning
checkpoints: ``ckpt['state_dict']`` with every key prefixed ``net.`` and the training arguments in
``ckpt['hyper_parameters']`` (``arch``, ``inplace_abn``, ``dataset``, ...).

Official keys (after ``net.``) -> ours:

- ``backbone.base.*`` (DLA; its ``fc`` classifier is dropped) -> ``backbone.*``
  (:class:`~mmseg_fusion.models.DLA`);
- ``backbone.afa_dla_up.afa_ida_{j}.proj_{i}`` / ``up_{i}`` -> ``neck.ida_nodes.{j}.proj_{i}`` /
  ``up_{i}``; ``afa_ida_{j}.sa_{i}`` / ``ca_{i}`` -> ``neck.ida_nodes.{j}.node_{i}.sa`` / ``.ca``;
- ``backbone.level_sa`` / ``level_ca`` -> ``neck.final_fusion.sa`` / ``.ca``;
  ``backbone.proj_1`` / ``proj_2`` -> ``neck.fuse_projs.0`` / ``.1``;
- ``ocr.conv3x3_ocr`` -> ``decode_head.bottleneck``; ``ocr.aux_head`` -> ``decode_head.aux_head``;
  ``ocr.ocr_distri_head.object_context_block.f_pixel`` / ``f_object`` / ``f_down`` / ``f_up`` ->
  ``decode_head.object_context_block.query_project`` / ``key_project`` / ``value_project`` /
  ``out_project``; ``ocr.ocr_distri_head.conv_bn_dropout`` ->
  ``decode_head.object_context_block.bottleneck``; ``ocr.cls_head`` -> ``decode_head.conv_seg``;
- ``scale_space_attn`` -> ``scale_attention``;
- ``fc_{k}`` (deep supervision, k = 1..4) -> ``auxiliary_head.{k-1}.conv_seg``; ``up_{k}`` (fixed
  bilinear upsampling kernels) are dropped (mmseg resizes logits bilinearly);
- inside every conv-norm pair ``0`` / ``1.0`` -> ``conv`` / ``bn`` (ConvModule).

Norm flavour: the official ``bn_relu`` is ``BatchNorm2d + ReLU`` when the model was trained with
``inplace_abn: false`` (the Cityscapes train-split model) and ``InPlaceABNSync`` (leaky ReLU 0.01,
weights used as ``|w| + eps``) otherwise (the argument defaults to true: the Cityscapes
train+val and the BDD100K models). The DLA backbone always uses plain ``BatchNorm2d``. The flavour
is read from ``hyper_parameters['inplace_abn']`` (or given explicitly); InPlace-ABN weights
outside the backbone are turned into ``|w| + 1e-5`` and the target config must use
``LeakyReLU(0.01)`` there (the ``afa-official-iabn_*`` configs do).

Input normalisation: ImageNet mean/std on RGB for Cityscapes (mmseg's default
``SegDataPreProcessor``), BDD100K's own statistics for BDD100K
(:data:`DLAAFA_INPUT_NORMALISATION`).
"""
import os.path as osp
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

import torch

from .common import (
    ConversionError,
    check_tensors,
    fill_num_batches_tracked,
    inplace_abn_to_bn,
    norm_prefixes,
    rename_by_prefix,
    strip_prefix,
)

__all__ = [
    'DLAAFA_CONFIGS', 'DLAAFA_INPUT_NORMALISATION', 'dlaafa_default_config', 'dlaafa_flavour',
    'dlaafa_rules', 'convert_dlaafa'
]

#: data_preprocessor mean/std (0-255, RGB) of the official data pipelines, per dataset
DLAAFA_INPUT_NORMALISATION = dict(
    cityscapes=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                    bgr_to_rgb=True),
    bdd100k=dict(mean=[71.145, 74.715, 73.95], std=[62.985, 67.575, 70.38], bgr_to_rgb=True),
)

#: target config (under ``configs/afa/``) per (DLA architecture, InPlace-ABN)
DLAAFA_CONFIGS = {
    ('dla102x', False): 'afa-official_dla102x-ocr-ssr_8xb1-140k_cityscapes-1024x2048.py',
    ('dla102x', True): 'afa-official-iabn_dla102x-ocr-ssr_8xb2-60k_cityscapes-1024x1024.py',
    ('dla169', True): 'afa-official-iabn_dla169-ocr-ssr_8xb2-90k_bdd100k-720x1280.py',
}

# upper bounds of the node and input indices the rules are generated for (DLA has 4 nodes of
# at most 5 inputs)
_MAX_NODES = 8
_MAX_INPUTS = 10


def _conv_bn(src: str, dst: str) -> List[Tuple[str, str]]:
    """``Sequential(conv, bn_relu)`` (``src.0``, ``src.1.0``) -> a ConvModule ``dst``."""
    return [(f'{src}.0', f'{dst}.conv'), (f'{src}.1.0', f'{dst}.bn')]


def _spatial_attention(src: str, dst: str) -> List[Tuple[str, str]]:
    """Official ``SpatialAttentionModule`` -> :class:`~mmseg_fusion.layers.SpatialAttention`."""
    return (_conv_bn(f'{src}.conv', f'{dst}.conv')
            + _conv_bn(f'{src}.conv_inner', f'{dst}.conv_inner')
            + [(f'{src}.final.0', f'{dst}.final')])


def _channel_attention(src: str, dst: str) -> List[Tuple[str, str]]:
    """Official ``ChannelAttentionModule`` -> :class:`~mmseg_fusion.layers.ChannelAttention`."""
    return _conv_bn(f'{src}.conv1', f'{dst}.conv1') + [(f'{src}.conv2.0', f'{dst}.conv2')]


def dlaafa_rules() -> Tuple[Tuple[str, str], ...]:
    """(official prefix, mmseg_fusion prefix) pairs of the AFA-DLA-Up + OCR + SSR model.

    Returns:
        tuple[tuple[str, str]]: The rules for
        :func:`~mmseg_fusion.converters.rename_by_prefix` (after ``net.`` is stripped).
    """
    rules: List[Tuple[str, str]] = [('backbone.base', 'backbone')]
    for j in range(_MAX_NODES):
        src, dst = f'backbone.afa_dla_up.afa_ida_{j}', f'neck.ida_nodes.{j}'
        for i in range(_MAX_INPUTS):
            rules += _conv_bn(f'{src}.proj_{i}', f'{dst}.proj_{i}')
            rules.append((f'{src}.up_{i}', f'{dst}.up_{i}'))
            rules += _spatial_attention(f'{src}.sa_{i}', f'{dst}.node_{i}.sa')
            rules += _channel_attention(f'{src}.ca_{i}', f'{dst}.node_{i}.ca')
    rules += _spatial_attention('backbone.level_sa', 'neck.final_fusion.sa')
    rules += _channel_attention('backbone.level_ca', 'neck.final_fusion.ca')
    rules += _conv_bn('backbone.proj_1', 'neck.fuse_projs.0')
    rules += _conv_bn('backbone.proj_2', 'neck.fuse_projs.1')
    rules += _spatial_attention('scale_space_attn', 'scale_attention')
    ocr, head = 'ocr.ocr_distri_head', 'decode_head.object_context_block'
    rules += _conv_bn('ocr.conv3x3_ocr', 'decode_head.bottleneck')
    rules += [('ocr.aux_head.0', 'decode_head.aux_head.0.conv'),
              ('ocr.aux_head.1.0', 'decode_head.aux_head.0.bn'),
              ('ocr.aux_head.2', 'decode_head.aux_head.1')]
    for src, dst in (('f_pixel', 'query_project'), ('f_object', 'key_project')):
        block = f'{ocr}.object_context_block.{src}'
        rules += (_conv_bn(block, f'{head}.{dst}.0')
                  + [(f'{block}.2', f'{head}.{dst}.1.conv'),
                     (f'{block}.3.0', f'{head}.{dst}.1.bn')])
    rules += _conv_bn(f'{ocr}.object_context_block.f_down', f'{head}.value_project')
    rules += _conv_bn(f'{ocr}.object_context_block.f_up', f'{head}.out_project')
    rules += _conv_bn(f'{ocr}.conv_bn_dropout', f'{head}.bottleneck')
    rules.append(('ocr.cls_head', 'decode_head.conv_seg'))
    rules += [(f'fc_{k}.0', f'auxiliary_head.{k - 1}.conv_seg') for k in range(1, 5)]
    return tuple(rules)


def _dropped(key: str) -> bool:
    """Official keys with no counterpart: the DLA classifier and the fixed upsamplers."""
    return (key.startswith('backbone.base.fc.')
            or any(key == f'up_{k}.weight' for k in range(1, 5)))


def _hyper_parameters(checkpoint: Any) -> dict:
    """``checkpoint['hyper_parameters']`` as a dict ({} when absent)."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get('hyper_parameters'), dict):
        return checkpoint['hyper_parameters']
    return {}


def dlaafa_flavour(checkpoint: Any, inplace_abn: Optional[bool] = None) -> Tuple[str, bool]:
    """DLA architecture and norm flavour of an official AFA checkpoint.

    Args:
        checkpoint (dict): The Lightning checkpoint.
        inplace_abn (bool, optional): Override of ``hyper_parameters['inplace_abn']``.
            Defaults to None (read it).

    Returns:
        tuple[str, bool]: E.g. ``('dla102x', False)``; the architecture is ``'unknown'`` when
        ``hyper_parameters['arch']`` is absent.

    Raises:
        ConversionError: If the flavour is neither given nor recorded.
    """
    hparams = _hyper_parameters(checkpoint)
    arch = str(hparams.get('arch', 'unknown')).rsplit('.', 1)[-1]
    if inplace_abn is None:
        if 'inplace_abn' not in hparams:
            raise ConversionError(
                'AFA: the checkpoint does not record hyper_parameters["inplace_abn"]; pass '
                '--inplace-abn true (InPlace-ABN, the official default: Cityscapes train+val '
                'and BDD100K models) or --inplace-abn false (BatchNorm + ReLU: the Cityscapes '
                'train-split model)')
        value = hparams['inplace_abn']
        if isinstance(value, str):
            value = value.strip().lower() in ('1', 'true', 'yes')
        inplace_abn = bool(value)
    return arch, bool(inplace_abn)


def dlaafa_default_config(checkpoint: Any, inplace_abn: Optional[bool] = None) -> str:
    """The shipped target config of an official AFA checkpoint.

    Args:
        checkpoint (dict): The Lightning checkpoint.
        inplace_abn (bool, optional): Override of the recorded norm flavour. Defaults to None.

    Returns:
        str: Path of the config under ``configs/afa/``.

    Raises:
        ConversionError: If no shipped config matches (pass ``--config``).
    """
    arch, iabn = dlaafa_flavour(checkpoint, inplace_abn)
    name = DLAAFA_CONFIGS.get((arch, iabn))
    if name is None:
        raise ConversionError(
            f'AFA: no shipped config for arch {arch!r} with inplace_abn={iabn}; shipped: '
            f'{sorted(DLAAFA_CONFIGS)}. Pass --config with a config of the same network '
            '(DLA backbone, AFANeck, OCRBlockHead, 4 FCNHead deep-supervision heads, '
            'SSREncoderDecoder) and --cfg-options for its sizes')
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    return osp.join(root, 'configs', 'afa', name)


def convert_dlaafa(checkpoint: Any, progress: bool = False,
                   inplace_abn: Optional[bool] = None) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Map an official AFA-DLA-Up + OCR + SSR checkpoint onto our model.

    Args:
        checkpoint (dict): The Lightning checkpoint (``state_dict`` with ``net.`` keys and
            ``hyper_parameters``), or a bare state dict (then ``inplace_abn`` must be given).
        progress (bool): Show a progress bar. Defaults to False.
        inplace_abn (bool, optional): Override of ``hyper_parameters['inplace_abn']``.
            Defaults to None.

    Returns:
        tuple[OrderedDict[str, Tensor], list[str]]: The converted state dict and the source
        keys no rule matched.

    Raises:
        ConversionError: If the input is not an AFA segmentation checkpoint or its norm
            flavour is unknown.
    """
    state_dict = checkpoint
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get('state_dict'), dict):
        state_dict = checkpoint['state_dict']
    check_tensors(state_dict, 'AFA')
    state_dict = OrderedDict(strip_prefix(state_dict, 'net.'))
    if not any(key.startswith('backbone.afa_dla_up.') for key in state_dict):
        raise ConversionError('AFA: no "net.backbone.afa_dla_up.*" keys; expected an official '
                              'dla-afa Lightning checkpoint, got '
                              f'{sorted(state_dict)[:8]}...')
    if not any(key.startswith('ocr.') for key in state_dict):
        raise ConversionError('AFA: no "net.ocr.*" keys: only the released segmentation models '
                              '(AFA-DLA-Up + OCR + SSR) are supported, not the edge-detection '
                              'or plain DLA-Up ones')
    _, iabn = dlaafa_flavour(checkpoint, inplace_abn)
    state_dict = OrderedDict((k, v) for k, v in state_dict.items() if not _dropped(k))
    if iabn:
        inplace_abn_to_bn(state_dict, [p for p in norm_prefixes(state_dict)
                                       if not p.startswith('backbone.base.')])
    converted, unmapped = rename_by_prefix(state_dict, dlaafa_rules(), progress=progress)
    fill_num_batches_tracked(converted)
    return OrderedDict(converted), unmapped
