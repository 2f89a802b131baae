"""Official CCNet checkpoints (speedinghzl/CCNet) -> ``RCCAHead`` models.

Paper: Huang et al., "CCNet: Criss-Cross Attention for Semantic Segmentation", ICCV 2019 /
TPAMI 2020, https://arxiv.org/abs/1811.11721; official code https://github.com/speedinghzl/CCNet
(``networks/ccnet.py``; read for key names only, nothing copied).

The released Cityscapes models are bare ``state_dict()`` s of the official ``ResNet``: a deep
stem ``conv1/bn1, conv2/bn2, conv3/bn3`` (64-64-128), ``layer1..4`` (layer 3 dilation 2 and
layer 4 dilation 4 in *every* block), the head ``head.{conva, cca, convb, bottleneck}`` and the
auxiliary head ``dsn`` on layer 3, whose 3x3 conv has a bias.

Every normalisation layer is InPlace-ABN: it computes ``(|w| + eps) / sqrt(var + eps)``, so a
BatchNorm needs the weight ``|w| + eps`` (:func:`~mmseg_fusion.converters.inplace_abn_to_bn`).
The backbone's layers use ``activation='none'`` followed by a ReLU; the head's and ``dsn``'s use
InPlace-ABN's default LeakyReLU(0.01) — the target config sets
``act_cfg=dict(type='LeakyReLU', negative_slope=0.01)`` on both heads. The bias of ``dsn.0`` is
folded into the following BN: ``BN(conv(x) + b)`` uses ``running_mean - b``. The official ``gamma``
(shape [1]) becomes mmcv's ``gamma.scale`` (0-dim).

Target: ``configs/ccnet/ccnet-official_r101-d8_4xb2-60k_cityscapes-769x769.py``. Input
normalisation of the official release (the exact values of its ``train.py`` and ``evaluate.py``):
BGR (cv2) on 0-255, minus (104.00698793, 116.66876762, 122.67891434), no division by a std:
``SegDataPreProcessor(mean=[104.00698793, 116.66876762, 122.67891434], std=[1.0, 1.0, 1.0],
bgr_to_rgb=False)``, set in that config.
"""
from collections import OrderedDict
from typing import Any, Dict, List, Tuple

import torch

from .common import (
    INPLACE_ABN_EPS,
    ConversionError,
    check_tensors,
    fill_num_batches_tracked,
    inplace_abn_to_bn,
    norm_prefixes,
    rename_by_prefix,
    strip_prefix,
)

__all__ = ['CCNET_INPUT_NORMALISATION', 'CCNET_RULES', 'convert_ccnet']

#: data_preprocessor settings equivalent to the official input normalisation
CCNET_INPUT_NORMALISATION = dict(mean=[104.00698793, 116.66876762, 122.67891434],
                                 std=[1.0, 1.0, 1.0], bgr_to_rgb=False)

#: (official prefix, mmseg_fusion prefix)
CCNET_RULES: Tuple[Tuple[str, str], ...] = (
    ('conv1', 'backbone.stem.0'),
    ('bn1', 'backbone.stem.1'),
    ('conv2', 'backbone.stem.3'),
    ('bn2', 'backbone.stem.4'),
    ('conv3', 'backbone.stem.6'),
    ('bn3', 'backbone.stem.7'),
    ('layer1', 'backbone.layer1'),
    ('layer2', 'backbone.layer2'),
    ('layer3', 'backbone.layer3'),
    ('layer4', 'backbone.layer4'),
    ('head.conva.0', 'decode_head.convs.0.conv'),
    ('head.conva.1', 'decode_head.convs.0.bn'),
    ('head.cca', 'decode_head.cca'),
    ('head.convb.0', 'decode_head.convs.1.conv'),
    ('head.convb.1', 'decode_head.convs.1.bn'),
    ('head.bottleneck.0', 'decode_head.conv_cat.conv'),
    ('head.bottleneck.1', 'decode_head.conv_cat.bn'),
    ('head.bottleneck.3', 'decode_head.conv_seg'),
    ('dsn.0', 'auxiliary_head.convs.0.conv'),
    ('dsn.1', 'auxiliary_head.convs.0.bn'),
    ('dsn.3', 'auxiliary_head.conv_seg'),
)

_DSN_CONV = 'auxiliary_head.convs.0.conv'
_DSN_BN = 'auxiliary_head.convs.0.bn'


def convert_ccnet(checkpoint: Any, progress: bool = False,
                  eps: float = INPLACE_ABN_EPS) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Map an official CCNet checkpoint onto ``ccnet-official`` (RCCAHead, LeakyReLU 0.01).

    Args:
        checkpoint (dict): The bare state dict of the official release (a ``state_dict``
            wrapper or a ``module.`` prefix is removed).
        progress (bool): Show a progress bar. Defaults to False.
        eps (float): InPlace-ABN epsilon added to ``|w|``. Defaults to 1e-5.

    Returns:
        tuple[OrderedDict[str, Tensor], list[str]]: The converted state dict and the source
        keys no rule matched.

    Raises:
        ConversionError: If the input is not a CCNet state dict.
    """
    state_dict = checkpoint
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get('state_dict'), dict):
        state_dict = checkpoint['state_dict']
    check_tensors(state_dict, 'CCNet')
    state_dict = OrderedDict(strip_prefix(state_dict, 'module.'))
    if 'head.cca.gamma' not in state_dict:
        raise ConversionError('CCNet: no "head.cca.gamma" in the checkpoint; expected the '
                              'official CCNet keys (conv1, bn1, ..., layer1..4, head.*, dsn.*), '
                              f'got {sorted(state_dict)[:8]}...')
    # every norm layer of the release is InPlace-ABN(Sync)
    inplace_abn_to_bn(state_dict, norm_prefixes(state_dict), eps=eps)
    converted, unmapped = rename_by_prefix(state_dict, CCNET_RULES, progress=progress)
    gamma = converted.get('decode_head.cca.gamma')
    if gamma is not None:
        if gamma.numel() != 1:
            raise ConversionError(f'CCNet: head.cca.gamma must hold one value, got shape '
                                  f'{tuple(gamma.shape)}')
        del converted['decode_head.cca.gamma']
        converted['decode_head.cca.gamma.scale'] = gamma.reshape(())
    bias = converted.pop(f'{_DSN_CONV}.bias', None)
    if bias is not None:
        mean_key = f'{_DSN_BN}.running_mean'
        if mean_key not in converted or converted[mean_key].shape != bias.shape:
            raise ConversionError(f'CCNet: dsn.0.bias {tuple(bias.shape)} cannot be folded into '
                                  f'dsn.1.running_mean (missing or of another shape)')
        # BN(conv(x) + b) == BN'(conv(x)) with running_mean' = running_mean - b
        converted[mean_key] = converted[mean_key] - bias
    fill_num_batches_tracked(converted)
    return OrderedDict(converted), unmapped
