"""Argument checks shared by the public classes: each error names the
argument, its value and what is allowed."""
import math
import numbers

import numpy as np


def shown(value):
    """A value for an error message: numbers as plain Python numbers (never
    NumPy reprs such as np.float64(2.0)), anything else by its repr."""
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    if isinstance(value, numbers.Integral):
        return repr(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        return shown(value[()])
    return repr(value)


#: The named constraints of :func:`real_scalar`: kind -> (test, what is allowed).
CONSTRAINTS = {
    "finite": (lambda v: True, "finite"),
    "non_negative": (lambda v: v >= 0, "finite and >= 0"),
    "positive": (lambda v: v > 0, "finite and > 0"),
}


def real_scalar(value, name, constraint="finite"):
    """``value`` as a Python float satisfying a named constraint.

    One check for every real keyword of the public API, in the style of
    NumPy's random module: ``constraint`` names the kind ("finite",
    "non_negative", "positive"); infinities and NaN always fail. Strings,
    None, bools and complex numbers raise TypeError naming the argument;
    a real number outside the constraint raises ValueError with the value
    as a plain float.
    """
    test, allowed = CONSTRAINTS[constraint]
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number ({allowed}); got {shown(value)}")
    out = float(value)
    if not math.isfinite(out) or not test(out):
        raise ValueError(f"{name} must be {allowed}; got {shown(value)}")
    return out


def positive_float(value, name):
    return real_scalar(value, name, "positive")


def integer(value, name, low=1, high=None, high_name=None):
    """``value`` as a Python int in [low, high] (high None: no upper bound;
    ``high_name`` names the bound in messages); bools and non-integral
    numbers raise TypeError naming the argument."""
    if high is None:
        allowed = f">= {low}"
    else:
        allowed = f"in [{low}, {high}]" if high_name is None else f"in [{low}, {high_name}] = [{low}, {high}]"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int {allowed}; got {shown(value)}")
    out = int(value)
    if out < low or (high is not None and out > high):
        raise ValueError(f"{name} must be an int {allowed}; got {out}")
    return out


def real_array(value, name, ndim=None):
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers; got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; got {value!r}")
    return arr


def times(t, T, name="t"):
    """t as float64 (scalar or array) inside [0, T]."""
    arr = real_array(t, name)
    if np.any((arr < 0) | (arr > T * (1 + 1e-12))):
        bad = arr[(arr < 0) | (arr > T * (1 + 1e-12))]
        raise ValueError(f"{name} must lie in [0, T] = [0, {T:g}]; got {float(bad.ravel()[0])!r}")
    return np.minimum(arr, T) if arr.ndim else min(float(arr), T)


def along_batch(coef, x):
    """Broadcast a per-time coefficient (scalar or (batch,)) against x."""
    coef = np.asarray(coef)
    if coef.ndim == 0:
        return coef
    if coef.ndim != 1 or coef.shape[0] != x.shape[0]:
        raise ValueError(
            f"t must be a scalar or have shape (batch,) = ({x.shape[0]},); got shape {coef.shape}"
        )
    return coef.reshape((-1,) + (1,) * (x.ndim - 1))
