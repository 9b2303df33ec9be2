"""Argument checks and hyperparameter declarations, in one place.

Every public entry point validates its arguments with these few functions, so an error always
names the argument, says what was expected and shows what was given::

    ValueError: nu must be a float in [0, 1), got 1.5

:class:`Param` declares one hyperparameter once (name, type, default, range, doc); the terms
in :data:`aekit.objectives.TERMS` and the corruptions in :data:`aekit.corruption.CORRUPTIONS`
list theirs in ``params``, and surfaces (CLI flags, TOML keys, estimator parameters) can be
derived from those declarations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Param", "check_choice", "check_float", "check_int"]


def _interval(lo, hi, lo_open: bool, hi_open: bool) -> str:
    """``">= 0"``, ``"> 0"``, ``"<= 1"`` for one-sided ranges, else ``"in [0, 1)"``."""
    if hi is None and lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if lo is None and hi is not None:
        return f"{'<' if hi_open else '<='} {hi:g}"
    if lo is None and hi is None:
        return "(any value)"
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    return f"in {left}{lo_s}, {hi_s}{right}"


def check_float(name: str, value: Any, lo: float | None = None, hi: float | None = None, *,
                lo_open: bool = False, hi_open: bool = False) -> float:
    """``float(value)`` if it is a finite real number in the interval, else ``ValueError``.

    The interval is ``[lo, hi]`` with either end open by ``lo_open``/``hi_open`` and ``None``
    for no bound. Booleans are refused (``True`` is not a learning rate).

    Examples
    --------
    >>> check_float("nu", 0.25, 0, 1, hi_open=True)
    0.25
    """
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_)
    v = float(value) if ok else math.nan
    if ok and math.isfinite(v):
        ok = ((lo is None or (v > lo if lo_open else v >= lo))
              and (hi is None or (v < hi if hi_open else v <= hi)))
    else:
        ok = False
    if not ok:
        span = _interval(lo, hi, lo_open, hi_open)
        raise ValueError(f"{name} must be a finite number{'' if lo is None and hi is None else ' '}"
                         f"{'' if lo is None and hi is None else span}, got {value!r}")
    return v


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """``int(value)`` if it is an integer (not a bool, not a float) in ``[lo, hi]``.

    Examples
    --------
    >>> check_int("epochs", 3, 0)
    3
    """
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
    if ok:
        ok = (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        span = "" if lo is None and hi is None else " " + _interval(lo, hi, False, False)
        raise ValueError(f"{name} must be an integer{span}, got {value!r}")
    return int(value)


def check_choice(name: str, value: Any, options: Sequence[Any]) -> Any:
    """``value`` if it is one of ``options``, else ``ValueError`` listing them."""
    if not any(value == o and type(value) is type(o) for o in options):
        raise ValueError(f"unknown {name} {value!r}; expected one of "
                         f"{', '.join(repr(o) for o in options)}")
    return value


@dataclass(frozen=True)
class Param:
    """One hyperparameter, declared once: its name, type, default, range and meaning.

    ``type`` is ``float``, ``int``, ``str`` or ``bool``. A number's range is ``[lo, hi]``
    with ends opened by ``lo_open``/``hi_open``; a string's is ``choices``. ``check(value)``
    validates and converts a value with the messages of :func:`check_float` /
    :func:`check_int` / :func:`check_choice`; ``None`` is accepted when ``optional``.
    """

    name: str
    type: type
    default: Any
    doc: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple = ()
    optional: bool = False

    def check(self, value: Any, where: str = "") -> Any:
        """The validated value (converted to ``type``); ``where`` prefixes the name."""
        name = f"{where}{self.name}"
        if value is None and self.optional:
            return None
        if self.type is float:
            return check_float(name, value, self.lo, self.hi, lo_open=self.lo_open,
                               hi_open=self.hi_open)
        if self.type is int:
            return check_int(name, value, self.lo, self.hi)
        if self.type is bool:
            if not isinstance(value, bool | np.bool_):
                raise ValueError(f"{name} must be True or False, got {value!r}")
            return bool(value)
        if self.choices:
            return check_choice(name, value, self.choices)
        if not isinstance(value, self.type):
            raise ValueError(f"{name} must be a {self.type.__name__}, got {value!r}")
        return value

    def describe(self) -> str:
        """``"nu: float in [0, 1), default 0.25: fraction of inputs set to zero"``."""
        if self.choices:
            rng = "one of " + ", ".join(map(repr, self.choices))
        elif self.type in (int, float):
            span = _interval(self.lo, self.hi, self.lo_open, self.hi_open)
            rng = f"{self.type.__name__} {span}"
        else:
            rng = self.type.__name__
        return f"{self.name}: {rng}, default {self.default!r}: {self.doc}"
