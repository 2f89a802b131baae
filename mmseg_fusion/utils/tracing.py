"""Shape arithmetic that stays symbolic when a model is traced (ONNX export).

The TorchScript tracer behind ``torch.onnx.export(..., dynamo=False)`` hands out the sizes of a
tensor as 0-dim tensors, so arithmetic on them is recorded in the graph; ``int(...)``,
``round(...)`` on a Python float or ``max(...)`` turn them back into constants of the trace, and
the exported graph then only works at the size it was traced with. A branch on a size
comparison (``if a.shape != b.shape: resize``) is frozen the same way.

:func:`scaled_size` computes ``max(1, round(size * scale))`` (or ``/ scale``) with the same
float64 arithmetic and round-half-to-even as Python, from ints or from traced sizes;
:func:`is_tracing` tells a module to record a resize even when the sizes happen to match at
trace time (a bilinear resize to the same size is the identity), so the graph stays valid at
every input size.
"""
from typing import Sequence, Tuple, Union

import torch

__all__ = ['is_tracing', 'scaled_size']

Size = Union[int, torch.Tensor]


def is_tracing() -> bool:
    """Whether a TorchScript trace or an ONNX export is being recorded."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def _scaled(value: Size, scale: float, inverse: bool) -> Size:
    if isinstance(value, torch.Tensor):
        # traced size: float64 like Python, torch.round rounds half to even like round()
        exact = value.to(torch.float64)
        exact = exact / scale if inverse else exact * scale
        return torch.round(exact).clamp(min=1).to(torch.int64)
    return max(1, int(round(value / scale if inverse else value * scale)))


def scaled_size(size: Sequence[Size], scale: float, inverse: bool = False) -> Tuple[Size, ...]:
    """``max(1, round(s * scale))`` (``round(s / scale)`` with ``inverse``) for each size.

    Args:
        size (Sequence[int | Tensor]): Sizes, e.g. ``x.shape[-2:]`` (ints, or 0-dim int64
            tensors while tracing).
        scale (float): The scale factor, > 0.
        inverse (bool): Divide by ``scale`` instead of multiplying. Defaults to False.

    Returns:
        tuple[int | Tensor]: The scaled sizes, of the kind given (ints give ints).
    """
    return tuple(_scaled(s, scale, inverse) for s in size)
