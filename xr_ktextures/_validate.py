"""One validation helper for the integer options, used by every entry point.

Dependency-free (numpy and the package's errors only). Every refusal is an
:class:`~xr_ktextures.InputError` (a ``ValueError`` too) that quotes the value received.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._errors import InputError

__all__ = ["check_int", "check_tile", "is_int"]


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or numpy), booleans excluded.

    >>> is_int(3), is_int(np.int64(3)), is_int(True), is_int(3.0)
    (True, True, False, False)
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(
    name: str,
    value: Any,
    minimum: int | None = None,
    maximum: int | None = None,
    *,
    shown_maximum: str | None = None,
    unit: str = "",
) -> int:
    """``value`` as an ``int``; raises :class:`~xr_ktextures.InputError` unless it is an integer in range.

    Parameters
    ----------
    name : str
        The option's name, as the user wrote it.
    value : object
        What was received.
    minimum, maximum : int, optional
        Inclusive bounds.
    shown_maximum : str, optional
        How to write ``maximum`` in the message (e.g. ``"2**32 - 1"``).
    unit : str
        Appended to the bounds in the message (e.g. ``" (pixels)"``).

    Returns
    -------
    int

    Raises
    ------
    InputError
        If ``value`` is not an integer (booleans included) or is out of range.

    Examples
    --------
    >>> check_int("steps", 3, 0)
    3
    >>> check_int("k", 1, 2, 128)
    Traceback (most recent call last):
    ...
    xr_ktextures._errors.InputError: k must be an integer from 2 to 128, got 1.
    """
    ok = is_int(value)
    if ok:
        v = int(value)
        ok = (minimum is None or v >= minimum) and (maximum is None or v <= maximum)
    if not ok:
        if maximum is not None:
            bounds = f" from {minimum} to {shown_maximum or maximum}"
        elif minimum is not None:
            bounds = f" >= {minimum}"
        else:
            bounds = ""
        raise InputError(f"{name} must be an integer{bounds}{unit}, got {value!r}.")
    return int(value)


def check_tile(tile: Any) -> int | None:
    """``tile`` as an int, or None; raises :class:`~xr_ktextures.InputError` unless it is an integer >= 8.

    >>> check_tile(None), check_tile(512)
    (None, 512)
    """
    return None if tile is None else check_int("tile", tile, 8, unit=" (pixels)")
