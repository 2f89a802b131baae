"""Official EMANet checkpoints (XiaLiPKU/EMANet) -> ``EMAUHead(official=True)`` models.

Paper: Li et al., "Expectation-Maximization Attention Networks for Semantic Segmentation",
ICCV 2019, https://arxiv.org/abs/1907.13426; official code https://github.com/XiaLiPKU/EMANet
(``network.py``; read for key names only, nothing copied).

The official training script saves ``{'net': EMANet.state_dict()}`` (the DataParallel wrapper
removed): ``extractor`` is ``Sequential(conv1, bn1, relu, maxpool, layer1..4)`` of a ResNet
whose ``conv1`` is itself a deep stem ``Sequential(conv 3->64 s2, BN, ReLU, conv 64->64, BN,
ReLU, conv 64->128)``; the head is ``fc0`` (ConvBNReLU 3x3), ``emau`` (``mu``, ``conv1``,
``conv2``), ``fc1`` (ConvBNReLU 3x3 + Dropout2d) and ``fc2`` (1x1 with bias). Its BN is
vacancy's ``SynchronizedBatchNorm2d`` (a ``_BatchNorm``: standard formula, no InPlace-ABN).

Target: ``configs/emanet/emanet-official_r101-d8_4xb4-30k_voc12aug-512x512.py`` (ResNetV1c-101
with ``stem_channels=128`` and layer-4 dilations (2, 8, 16), ``EMAUHead(official=True)``, no
auxiliary head, ``align_corners=True``).

Input normalisation of the official release: RGB in [0, 1], minus ImageNet mean (0.485, 0.456,
0.406), divided by ImageNet std (0.229, 0.224, 0.225). On mmseg's 0-255 BGR images this is
exactly ``SegDataPreProcessor(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
bgr_to_rgb=True)`` (255 x the official values), which the target config inherits from mmseg's
EMANet base config.
"""
from collections import OrderedDict
from typing import Any, Dict, List, Tuple

import torch

from .common import (
    ConversionError,
    check_tensors,
    fill_num_batches_tracked,
    rename_by_prefix,
    strip_prefix,
)

__all__ = ['EMANET_INPUT_NORMALISATION', 'EMANET_RULES', 'convert_emanet']

#: data_preprocessor settings equivalent to the official input normalisation
EMANET_INPUT_NORMALISATION = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                                  bgr_to_rgb=True)

#: (official prefix, mmseg_fusion prefix)
EMANET_RULES: Tuple[Tuple[str, str], ...] = (
    # deep stem: Sequential(conv, BN, ReLU, conv, BN, ReLU, conv) + the ResNet's bn1
    ('extractor.0.0', 'backbone.stem.0'),
    ('extractor.0.1', 'backbone.stem.1'),
    ('extractor.0.3', 'backbone.stem.3'),
    ('extractor.0.4', 'backbone.stem.4'),
    ('extractor.0.6', 'backbone.stem.6'),
    ('extractor.1', 'backbone.stem.7'),
    # extractor.2 = ReLU, extractor.3 = max-pool: no parameters
    ('extractor.4', 'backbone.layer1'),
    ('extractor.5', 'backbone.layer2'),
    ('extractor.6', 'backbone.layer3'),
    ('extractor.7', 'backbone.layer4'),
    ('fc0.conv', 'decode_head.ema_in_conv.conv'),
    ('fc0.bn', 'decode_head.ema_in_conv.bn'),
    ('emau.mu', 'decode_head.ema_module.bases'),
    ('emau.conv1', 'decode_head.ema_mid_conv.conv'),
    ('emau.conv2.0', 'decode_head.ema_out_conv.conv'),
    ('emau.conv2.1', 'decode_head.ema_out_conv.bn'),
    ('fc1.0.conv', 'decode_head.bottleneck.conv'),
    ('fc1.0.bn', 'decode_head.bottleneck.bn'),
    ('fc2', 'decode_head.conv_seg'),
)


def convert_emanet(checkpoint: Any,
                   progress: bool = False) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Map an official EMANet checkpoint onto the official-mode EMAUHead model.

    Args:
        checkpoint (dict): ``{'net': state_dict}`` as the official ``train.py`` saves it, or
            the bare state dict (a ``module.`` prefix is removed).
        progress (bool): Show a progress bar. Defaults to False.

    Returns:
        tuple[OrderedDict[str, Tensor], list[str]]: The converted state dict (with
        ``num_batches_tracked`` added where the source had none) and the source keys no rule
        matched (an error for :func:`~mmseg_fusion.converters.check_state_dict`).

    Raises:
        ConversionError: If the input is not an EMANet state dict.
    """
    if isinstance(checkpoint, dict) and 'net' in checkpoint:
        state_dict = checkpoint['net']
    elif isinstance(checkpoint, dict) and 'state_dict' in checkpoint:
        raise ConversionError('EMANet: this looks like an mmseg/mmengine checkpoint '
                              '("state_dict"), not the official {"net": ...} format; mmseg '
                              'EMANet checkpoints load into our EMAUHead configs unchanged')
    else:
        state_dict = checkpoint
    check_tensors(state_dict, 'EMANet')
    state_dict = strip_prefix(state_dict, 'module.')
    if 'emau.mu' not in state_dict:
        raise ConversionError('EMANet: no "emau.mu" in the checkpoint; expected the official '
                              f'EMANet keys (extractor.*, fc0.*, emau.*, fc1.*, fc2.*), got '
                              f'{sorted(state_dict)[:8]}...')
    converted, unmapped = rename_by_prefix(state_dict, EMANET_RULES, progress=progress)
    fill_num_batches_tracked(converted)
    return OrderedDict(converted), unmapped
