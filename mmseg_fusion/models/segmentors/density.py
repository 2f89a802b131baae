"""The scale-attention ("density") head of the multi-scale segmentors, and its input.

The head is a :class:`~mmseg_fusion.layers.SpatialAttention` with one output map (SSR's
official ``scale_space_attn``: two 3x3 conv-norm-act and a 1x1 conv, ``|.|`` for SSR). It sees
the features a decode head classifies: the input of its ``cls_seg`` (of its dropout, else of
``conv_seg``), captured with a forward pre-hook so that any mmseg decode head works.

Shape shorthand: N batch, C' channels of the classified features, h x w their size.
"""
import inspect
from contextlib import contextmanager
from typing import Iterator, List, Optional

import torch.nn as nn
from torch import Tensor

from mmseg_fusion.layers import SpatialAttention

__all__ = ['build_scale_attention', 'capture_cls_input']


def build_scale_attention(cfg: Optional[dict], channels: int, source: str,
                          activation: Optional[str], norm_cfg: Optional[dict],
                          owner: str) -> SpatialAttention:
    """The scale-attention head of a ``scale_attention`` config, checked.

    Args:
        cfg (dict, optional): Arguments of :class:`~mmseg_fusion.layers.SpatialAttention`;
            ``in_channels`` (if given) must equal ``channels``, ``out_channels`` 1.
        channels (int): Channels C' of the features the head sees.
        source (str): What those features are, for the error message.
        activation (str, optional): Default output activation (the fusion's).
        norm_cfg (dict, optional): Default norm (the decode head's; BN if None).
        owner (str): The component, for error messages.

    Returns:
        SpatialAttention: Maps (N, C', h, w) to densities (N, 1, h, w).
    """
    kwargs = dict(cfg or {})
    in_channels = kwargs.pop('in_channels', channels)
    if in_channels != channels:
        raise ValueError(f'{owner}: scale_attention.in_channels must equal the {source} '
                         f'({channels}, the channels of the features it sees), '
                         f'got {in_channels!r}')
    out_channels = kwargs.pop('out_channels', 1)
    if out_channels != 1:
        raise ValueError(f'{owner}: scale_attention.out_channels must be 1 (one density per '
                         f'pixel), got {out_channels!r}')
    accepted = set(inspect.signature(SpatialAttention).parameters) - {
        'in_channels', 'out_channels'}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise TypeError(f'{owner}: scale_attention has unknown keys {unknown}, expected some '
                        f'of {sorted(accepted)}')
    kwargs.setdefault('activation', activation)
    kwargs.setdefault('norm_cfg', norm_cfg or dict(type='BN'))
    return SpatialAttention(in_channels, 1, **kwargs)


@contextmanager
def capture_cls_input(decode_head: nn.Module) -> Iterator[List[Tensor]]:
    """Collect the inputs (N, C', h, w) of a decode head's ``cls_seg`` while in the block.

    Hooks the head's ``dropout`` if it has one, else its ``conv_seg``.

    Args:
        decode_head (nn.Module): An mmseg decode head.

    Yields:
        list[Tensor]: The captured inputs, one per call of ``cls_seg``.
    """
    store: List[Tensor] = []
    dropout = getattr(decode_head, 'dropout', None)
    target = dropout if isinstance(dropout, nn.Module) else decode_head.conv_seg
    handle = target.register_forward_pre_hook(lambda module, args: store.append(args[0]))
    try:
        yield store
    finally:
        handle.remove()
