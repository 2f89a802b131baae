"""Argument checks that raise the package's one error format.

Every bad argument raises at construction with the component, the argument, the value given
and what was expected, e.g. ``RCCAHead: recurrence must be an int >= 1, got 0``. The checks
here write that message once, so the components do not each spell it out.
"""
from typing import Optional

__all__ = ['check_int', 'is_int']


def is_int(value: object, low: Optional[int] = None, high: Optional[int] = None) -> bool:
    """Whether ``value`` is an int (not a bool) in ``[low, high]`` (each bound optional).

    Args:
        value (object): The value.
        low (int, optional): Smallest accepted value. Defaults to None (no bound).
        high (int, optional): Largest accepted value. Defaults to None (no bound).

    Returns:
        bool: True if it is such an int.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def check_int(owner: str, name: str, value: object, low: Optional[int] = 1,
              high: Optional[int] = None, optional: bool = False,
              why: Optional[str] = None) -> Optional[int]:
    """Return ``value`` if it is an int in ``[low, high]``, else raise a ValueError.

    Args:
        owner (str): The component, first in the message (``'RCCAHead'``).
        name (str): The argument (``'recurrence'``).
        value (object): The value given.
        low (int, optional): Smallest accepted value. Defaults to 1.
        high (int, optional): Largest accepted value. Defaults to None (no bound).
        optional (bool): Also accept None. Defaults to False.
        why (str, optional): Text appended to what is expected, e.g. ``'(one per level)'``.
            Defaults to None.

    Returns:
        int | None: ``value``.

    Raises:
        ValueError: ``'<owner>: <name> must be [None or ]an int >= low[ why], got <value>'``
            (``in [low, high]`` when both bounds are given).
    """
    if (optional and value is None) or is_int(value, low, high):
        return value
    if low is not None and high is not None:
        expected = f'an int in [{low}, {high}]'
    elif low is not None:
        expected = f'an int >= {low}'
    elif high is not None:
        expected = f'an int <= {high}'
    else:
        expected = 'an int'
    prefix = 'None or ' if optional else ''
    reason = f' {why}' if why else ''
    raise ValueError(f'{owner}: {name} must be {prefix}{expected}{reason}, got {value!r}')
