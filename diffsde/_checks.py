"""Argument checks shared by the public classes: each error names the
argument, its value and what is allowed."""
import numpy as np


def positive_float(value, name):
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number; got {value!r}") from None
    if not np.isfinite(out) or out <= 0:
        raise ValueError(f"{name} must be finite and > 0; got {value!r}")
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
