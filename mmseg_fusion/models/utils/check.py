"""Build-time check of a segmentor's wiring: backbone outputs -> neck -> decode/auxiliary heads.

An mmseg ``EncoderDecoder`` builds its backbone, neck and heads independently, so a neck whose
``in_channels`` do not match the backbone's outputs, or a head whose ``in_index`` points past
the last feature map, only fails inside the first forward, with a conv shape error or an
``IndexError`` that names neither the component nor the argument.
:func:`check_encoder_decoder` finds these mistakes when the model is built: it runs the built
backbone (and neck) once on a tiny all-zero input (1 x C_in x 64 x 64, no gradient, every
module in eval mode, the train/eval flags restored afterwards), reads the number and channels
of their outputs and compares them with the neck's ``in_channels`` and with each head's
``in_channels``/``in_index``/``input_transform`` (mmseg ``BaseDecodeHead`` semantics).

It is deliberately conservative: whatever cannot be inferred is not checked. Skipped are a
backbone that cannot run on the tiny input (nor on its ``img_size`` when it has one, tried on a
CPU only up to 224 x 224: BEiT's relative position tables need their own size), one that
returns a single tensor (e.g. DDRNet and PIDNet in eval mode), output entries that are not
(N, C, H, W) tensors, a neck whose ``in_channels`` is not a list of ints (e.g.
``Feature2Pyramid``) and a head without mmseg's ``in_channels``/``in_index``/
``input_transform`` attributes. On two configs of every method shipped
with mmseg 1.2.2 (94 models that build without extra packages) the check raises for none.
"""
from contextlib import contextmanager
from itertools import chain
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.nn.modules.conv import _ConvNd

__all__ = ['check_encoder_decoder', 'check_head_inputs', 'check_neck_in_channels',
           'output_channels']

#: Side of the square dry-run input; the backbone's ``img_size`` is tried when it fails.
DRY_RUN_SIZE = 64
#: Largest ``img_size`` (pixels) tried on a CPU (e.g. BEiT-B at 640x640 takes ~20 s there).
MAX_CPU_DRY_RUN_PIXELS = 224 * 224

Channels = List[Optional[int]]


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode; restore each one's own flag on exit."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def _dry_input(module: nn.Module, size: Tuple[int, int]) -> torch.Tensor:
    """All-zero input (1, C_in, H, W) on the device and in the float dtype of ``module``.

    ``C_in`` is the input channels of the first convolution (3 without one).
    """
    in_channels = next((m.in_channels for m in module.modules() if isinstance(m, _ConvNd)), 3)
    ref = next(chain(module.parameters(), module.buffers()), None)
    device = ref.device if ref is not None else torch.device('cpu')
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    return torch.zeros(1, in_channels, *size, device=device, dtype=dtype)


def output_channels(outputs: object) -> Optional[Channels]:
    """Channels of each entry of a backbone's or neck's outputs.

    Args:
        outputs (object): What the module returned.

    Returns:
        list[int | None] | None: ``C`` of each (N, C, H, W) tensor, None for an entry of
        another kind; None when ``outputs`` is not a list or tuple (layout unknown).
    """
    if not isinstance(outputs, (list, tuple)):
        return None
    return [int(o.shape[1]) if isinstance(o, torch.Tensor) and o.dim() == 4 else None
            for o in outputs]


def _run_backbone(backbone: nn.Module) -> Optional[object]:
    """Outputs of ``backbone`` on a tiny zero input, or None when it cannot run on one."""
    sizes = [(DRY_RUN_SIZE, DRY_RUN_SIZE)]
    img_size = getattr(backbone, 'img_size', None)
    if isinstance(img_size, int):
        img_size = (img_size, img_size)
    if (isinstance(img_size, (tuple, list)) and len(img_size) == 2
            and tuple(img_size) != sizes[0]):
        sizes.append(tuple(int(s) for s in img_size))
    for size in sizes:
        x = _dry_input(backbone, size)
        if size != sizes[0] and x.device.type == 'cpu' \
                and size[0] * size[1] > MAX_CPU_DRY_RUN_PIXELS:
            break
        try:
            return backbone(x)
        except Exception:  # any failure only means "cannot infer"
            continue
    return None


def _show(channels: Sequence[Optional[int]]) -> str:
    return '[' + ', '.join('?' if c is None else str(c) for c in channels) + ']'


def check_neck_in_channels(owner: str, neck: nn.Module, channels: Channels,
                           source: str) -> None:
    """Raise a ValueError unless ``neck.in_channels`` has one matching entry per input.

    Args:
        owner (str): Component named first in the message (the segmentor).
        neck (nn.Module): The built neck; checked only when its ``in_channels`` is a list or
            tuple of ints.
        channels (list[int | None]): Channels of each backbone output (None: unknown).
        source (str): Name of what gives the inputs (e.g. ``'ResNetV1c'``).
    """
    given = getattr(neck, 'in_channels', None)
    if not (isinstance(given, (list, tuple))
            and all(isinstance(c, int) and not isinstance(c, bool) for c in given)):
        return
    if len(given) != len(channels) or any(
            c is not None and c != g for c, g in zip(channels, given)):
        raise ValueError(
            f'{owner}: neck ({type(neck).__name__}) in_channels must be {_show(channels)} '
            f'(one entry per output of {source}, {len(channels)} outputs), got {list(given)}')


def check_head_inputs(owner: str, role: str, head: nn.Module, channels: Channels,
                      source: str) -> None:
    """Raise a ValueError unless the head's ``in_index``/``in_channels`` fit its inputs.

    Args:
        owner (str): Component named first in the message (the segmentor).
        role (str): The head's place in the segmentor (``'decode_head'``,
            ``'auxiliary_head[1]'``, ...).
        head (nn.Module): The built head; checked only when it has mmseg's ``in_channels``,
            ``in_index`` and ``input_transform`` attributes.
        channels (list[int | None]): Channels of each feature map the head receives
            (None: unknown).
        source (str): Name of what gives the feature maps (the neck, else the backbone).
    """
    if not all(hasattr(head, a) for a in ('in_channels', 'in_index', 'input_transform')):
        return
    name, num = f'{role} ({type(head).__name__})', len(channels)
    transform, in_index = head.input_transform, head.in_index
    indices = list(in_index) if isinstance(in_index, (list, tuple)) else [in_index]
    for idx in indices:
        if isinstance(idx, bool) or not isinstance(idx, int) or not -num <= idx < num:
            raise ValueError(
                f'{owner}: {name} in_index must index one of the {num} outputs of {source} '
                f'(in [{-num}, {num - 1}]), got {in_index!r}')
    selected = [channels[i] for i in indices]
    if any(c is None for c in selected):
        return
    if transform == 'resize_concat':
        # BaseDecodeHead keeps the sum of the listed in_channels
        if head.in_channels != sum(selected):
            raise ValueError(
                f'{owner}: {name} in_channels must sum to {sum(selected)} (resize_concat of '
                f'{source} outputs {indices} with channels {selected}), got a sum of '
                f'{head.in_channels!r}')
        return
    if transform is None:
        expected, given = selected[0], head.in_channels
    else:
        expected = selected
        given = list(head.in_channels) if isinstance(head.in_channels, (list, tuple)) \
            else head.in_channels
    if given != expected:
        raise ValueError(
            f'{owner}: {name} in_channels must be {expected} (the channels of {source} '
            f'output {in_index!r}), got {given!r}')


def _heads(model: nn.Module, attr: str) -> List[Tuple[str, nn.Module]]:
    head = getattr(model, attr, None)
    if head is None:
        return []
    if isinstance(head, nn.ModuleList):
        return [(f'{attr}[{i}]', h) for i, h in enumerate(head)]
    return [(attr, head)]


def check_encoder_decoder(model: nn.Module) -> None:
    """Check that the backbone, neck and heads of a built ``EncoderDecoder`` fit together.

    Runs the backbone (and the neck) once on a tiny zero input (see the module docstring) and
    raises a ValueError naming the segmentor, the sub-component and its argument when:

    - the neck's ``in_channels`` does not have one entry per backbone output, or an entry
      differs from that output's channels;
    - a decode or auxiliary head's ``in_index`` is out of range for the neck's (else the
      backbone's) outputs;
    - a head's ``in_channels`` differs from the channels of the outputs it selects (their sum
      for ``input_transform='resize_concat'``).

    Args:
        model (nn.Module): A built segmentor with ``backbone``, ``decode_head`` and optional
            ``neck`` / ``auxiliary_head`` (mmseg ``EncoderDecoder`` and subclasses, including
            ``CascadeEncoderDecoder``).
    """
    owner = type(model).__name__
    backbone = getattr(model, 'backbone', None)
    if backbone is None:
        return
    neck = getattr(model, 'neck', None) if getattr(model, 'with_neck', False) else None
    with torch.no_grad(), _eval_mode(model):
        feats = _run_backbone(backbone)
        channels = output_channels(feats)
        if channels is None:
            return
        source = type(backbone).__name__
        if neck is not None:
            check_neck_in_channels(owner, neck, channels, source)
            try:
                feats = neck(feats)
            except Exception:  # any failure only means "cannot infer"
                return
            channels = output_channels(feats)
            if channels is None:
                return
            source = type(neck).__name__
    for role, head in _heads(model, 'decode_head') + _heads(model, 'auxiliary_head'):
        check_head_inputs(owner, role, head, channels, source)
