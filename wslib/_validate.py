"""Argument checks shared by the public functions: each names the argument it refuses.

A wrong type raises ``TypeError``, a wrong value (range, shape, dtype) ``ValueError``; the
message is one short line, ``<name> must be <what>; got <value>``.
"""
from __future__ import annotations

import argparse
import math
import numbers

import torch
from torch import Tensor


def _shown(value) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    text = repr(value)
    return text if len(text) <= 60 else f"a {type(value).__name__}"


def integer(name: str, value, minimum: int | None = None) -> int:
    """``value`` as an int; refuses bools, floats (2.5 and 2.0 alike) and values below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {_shown(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def number(name: str, value, minimum: float | None = None, inclusive: bool = True) -> float:
    """``value`` as a finite float; refuses bools, strings, NaN, infinities and values below
    ``minimum`` (or equal to it, with ``inclusive=False``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number; got {_shown(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    if minimum is not None and (value < minimum or (value == minimum and not inclusive)):
        raise ValueError(f"{name} must be {'>=' if inclusive else '>'} {minimum:g}; got {value:g}")
    return value


def flag(name: str, value) -> bool:
    """``value`` as a bool; refuses anything that is not True or False."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; got {_shown(value)}")
    return value


def tensor(name: str, value, dims: int | tuple[int, ...] | None = None,
           floating: bool = False) -> Tensor:
    """``value`` itself, after checking that it is a tensor (not a numpy array or a list) with
    one of the given numbers of dimensions and, with ``floating``, a floating-point dtype."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(value).__name__} "
                        "(convert with torch.as_tensor)")
    allowed = (dims,) if isinstance(dims, int) else dims
    if allowed is not None and value.dim() not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(f"{name} must be {want}; got shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor; got {value.dtype}")
    return value


def pair(name: str, value) -> tuple[float, float]:
    """``value`` as a pair (low, high) of finite numbers with low <= high."""
    if isinstance(value, (str, bytes, Tensor)) or not hasattr(value, "__len__") \
            or len(value) != 2:
        raise ValueError(f"{name} must be a pair (low, high); got {_shown(value)}")
    low, high = (number(f"{name}[{i}]", v) for i, v in enumerate(value))
    if not low <= high:
        raise ValueError(f"{name} must be (low, high) with low <= high; got {tuple(value)}")
    return low, high


def all_finite(name: str, value: Tensor) -> Tensor:
    """``value`` itself, after checking that it holds no NaN or infinity."""
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return value


class BadArgument(ValueError):
    """A command-line argument that cannot be used; its message is the one line printed."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise :class:`BadArgument` instead of printing the usage
    block and exiting, so that a command line prints one line and returns status 2."""

    def error(self, message: str):
        raise BadArgument(f"{message} (see --help)")
