"""Scale sets of multi-scale training and inference: defaults and checks.

The training scales of :class:`~mmseg_fusion.models.SSREncoderDecoder` are one scale set, or
several of which one is drawn per step; each set, like the test scales, is positive, strictly
ascending and contains 1.0 (the scale every other is fused with).
"""
from typing import Sequence, Tuple

__all__ = ['RANDOM_PAIRS', 'check_scales', 'scale_sets']

#: The default training scales of SSREncoderDecoder: one of these pairs per step, at random.
RANDOM_PAIRS = ((0.5, 1.0), (0.75, 1.0), (1.0, 1.5), (1.0, 2.0))


def check_scales(scales: Sequence[float], name: str,
                 owner: str = 'SSREncoderDecoder') -> Tuple[float, ...]:
    """Validate a tuple of scales: positive, strictly ascending, containing 1.0.

    Args:
        scales (Sequence[float]): The scales.
        name (str): The argument name, for the error message.
        owner (str): The component name, for the error message. Defaults to
            ``'SSREncoderDecoder'``.

    Returns:
        tuple[float]: The scales as floats.
    """
    message = (f'{owner}: {name} must be a sequence of positive numbers sorted ascending and '
               f'containing 1.0, got {scales!r}')
    try:
        values = tuple(float(s) for s in scales)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if not (len(values) > 0 and all(s > 0 for s in values) and 1.0 in values
            and all(a < b for a, b in zip(values, values[1:]))):
        raise ValueError(message)
    return values


def scale_sets(train_scales: Sequence, owner: str = 'SSREncoderDecoder'
               ) -> Tuple[Tuple[float, ...], ...]:
    """``train_scales`` as a tuple of checked scale sets (one set, or several).

    Args:
        train_scales (Sequence[float] | Sequence[Sequence[float]]): One scale set or several.
        owner (str): The component name, for the error message. Defaults to
            ``'SSREncoderDecoder'``.

    Returns:
        tuple[tuple[float]]: The scale sets.
    """
    if (isinstance(train_scales, (list, tuple)) and len(train_scales) > 0
            and all(isinstance(s, (list, tuple)) for s in train_scales)):
        return tuple(check_scales(s, f'train_scales[{i}]', owner)
                     for i, s in enumerate(train_scales))
    return (check_scales(train_scales, 'train_scales', owner), )
