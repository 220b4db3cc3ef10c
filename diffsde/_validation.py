"""Argument validation for the whole package: one routine per kind of value.

Every public function checks its arguments here, before any work (and
before C sees them), so that every refusal reads the same way: the
argument's name, the value it got and what is allowed,

    ``steps must be an int >= 1; got 0``
    ``alpha must be finite and >= 0; got -0.5``
    ``level must be in (0, 1); got 1.5``

with numbers shown as plain Python numbers (never ``np.float64(2.0)``).
A value of the wrong type (a string, None, a bool where a number belongs, a
float where an int belongs) raises TypeError; a value of the right type
outside what is allowed raises ValueError. The idea follows the named
constraints of NumPy's random module: each routine takes the value, the
argument's name and the name of a constraint, so a call says what it
allows in words (``real_scalar(eta, "eta", "non_negative")``).

The module also holds the dtype rules (:func:`resolve_dtype`,
:func:`working_dtype`) and the memory pre-check (:func:`check_fits`), which
refuse runs the same way before anything is allocated.
"""
import math
import numbers
import os

import numpy as np

# ---- how a value is shown -------------------------------------------------------

#: Reprs longer than this are cut (a long list or a lambda's address tells
#: the reader nothing the argument's name does not).
SHOWN_CHARS = 60


def shown(value):
    """A value for an error message.

    Numbers (Python or NumPy, 0-d arrays included) as plain Python numbers,
    never NumPy reprs such as ``np.float64(2.0)``; arrays by shape and
    dtype; anything else by its repr, cut to :data:`SHOWN_CHARS` characters.
    """
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    if isinstance(value, numbers.Integral):
        return repr(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, np.ndarray):
        if value.ndim == 0 and value.dtype.kind in "biuf":
            return shown(value[()])
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."


def _bound(value):
    """A bound in a message: ints as ints, other numbers by %g."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _not_a_number(value):
    """True for what is no real number here: bools, strings, None, complex."""
    return isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)


# ---- real scalars ----------------------------------------------------------------

#: The named constraints of :func:`real_scalar`: kind -> (test(v, bound),
#: what is allowed(bound)). Every kind also requires a finite value.
REAL_CONSTRAINTS = {
    "finite": (lambda v, b: True, lambda b: "finite"),
    "non_negative": (lambda v, b: v >= 0, lambda b: "finite and >= 0"),
    "positive": (lambda v, b: v > 0, lambda b: "finite and > 0"),
    "in_unit_interval": (lambda v, b: 0 < v < 1, lambda b: "in (0, 1)"),
    "probability": (lambda v, b: 0 <= v <= 1, lambda b: "in [0, 1]"),
    "at_least": (lambda v, b: v >= b, lambda b: f"finite and >= {_bound(b)}"),
    "greater_than": (lambda v, b: v > b, lambda b: f"finite and > {_bound(b)}"),
}


def real_scalar(value, name, constraint="finite", bound=None):
    """``value`` as a Python float satisfying a named constraint.

    Parameters
    ----------
    value : real number
        A Python or NumPy real, or a 0-d array of one.
    name : str
        The argument's name, for messages.
    constraint : str
        One of :data:`REAL_CONSTRAINTS`: ``"finite"``, ``"non_negative"``
        (>= 0), ``"positive"`` (> 0), ``"in_unit_interval"`` (the open
        interval (0, 1)), ``"probability"`` ([0, 1]), ``"at_least"``
        (>= bound) or ``"greater_than"`` (> bound). Infinities and NaN
        always fail.
    bound : float, optional
        The bound of ``"at_least"`` and ``"greater_than"``.

    Raises
    ------
    TypeError
        For strings, None, bools, complex numbers and other non-reals.
    ValueError
        For a real number outside the constraint.
    """
    test, allowed = REAL_CONSTRAINTS[constraint]
    allowed = allowed(bound)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if _not_a_number(value):
        raise TypeError(f"{name} must be a real number ({allowed}); got {shown(value)}")
    out = float(value)
    if not math.isfinite(out) or not test(out, bound):
        raise ValueError(f"{name} must be {allowed}; got {shown(value)}")
    return out


def positive_float(value, name):
    """``real_scalar(value, name, "positive")``."""
    return real_scalar(value, name, "positive")


# ---- integers --------------------------------------------------------------------

def integer(value, name, low=1, high=None, high_name=None, *, none=False):
    """``value`` as a Python int in [low, high].

    Parameters
    ----------
    value : int
        A Python or NumPy integer (bools are refused: ``True`` is no count).
    name : str
        The argument's name, for messages.
    low : int
        The smallest allowed value: 1 for counts that must be positive
        (the default), 0 for non-negative ones.
    high : int, optional
        The largest allowed value (None: no upper bound).
    high_name : str, optional
        What ``high`` is called (e.g. ``"N"``), shown next to its value.
    none : bool
        Whether None is allowed (then returned as None).

    Raises
    ------
    TypeError
        For bools, floats (even integral ones), strings and other non-ints.
    ValueError
        For an int outside [low, high].
    """
    if none and value is None:
        return None
    if high is None:
        allowed = f">= {low}"
    else:
        allowed = f"in [{low}, {high}]" if high_name is None else f"in [{low}, {high_name}] = [{low}, {high}]"
    allowed = f"an int {allowed}" + (" or None" if none else "")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {allowed}; got {shown(value)}")
    out = int(value)
    if out < low or (high is not None and out > high):
        raise ValueError(f"{name} must be {allowed}; got {out}")
    return out


# ---- other scalars ---------------------------------------------------------------

def flag(value, name):
    """``value`` as a bool: only True and False (and NumPy bools) pass, so
    that a string such as ``"no"`` is not taken for True."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {shown(value)}")
    return bool(value)


def choice(value, name, options):
    """``value`` if it is one of ``options`` (strings), else ValueError
    listing them."""
    if isinstance(value, str) and value in options:
        return value
    listed = ", ".join(repr(o) for o in options[:-1]) + f" or {options[-1]!r}" if len(options) > 1 \
        else repr(options[0])
    raise ValueError(f"{name} must be {listed}; got {shown(value)}")


def callable_of(value, name, signature):
    """``value`` if callable, else TypeError saying how it is called."""
    if not callable(value):
        raise TypeError(f"{name} must be callable as {signature}; got {shown(value)}")
    return value


def shape_tuple(value, name="shape"):
    """An int or a sequence of ints, each >= 0, as a tuple of Python ints
    (a float entry is refused, not truncated)."""
    allowed = "an int or a tuple of ints, each >= 0"
    try:
        entries = (value,) if np.ndim(value) == 0 else tuple(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {allowed}; got {shown(value)}") from None
    if any(isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) for n in entries):
        raise TypeError(f"{name} must be {allowed}; got {shown(value)}")
    out = tuple(int(n) for n in entries)
    if any(n < 0 for n in out):
        raise ValueError(f"{name} must be {allowed}; got {out}")
    return out


# ---- arrays ----------------------------------------------------------------------

def real_array(value, name, ndim=None):
    """``value`` as a finite float64 array (bools and ints converted)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers; got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; got {shown(value)}")
    return arr


def float_copy(value, name):
    """A private float64 copy of ``value``: owned, aligned and C-contiguous.

    The caller's array is never kept (a later change to it, or to a writable
    view of it, cannot reach the copy) and never changed (flags included);
    unaligned or strided inputs are as good as any.
    """
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of real numbers; got {shown(value)}") from None
    if arr.dtype.kind == "O":
        if any(v is None for v in arr.flat):
            raise TypeError(f"{name} must be real numbers; got {shown(value)}")
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be real numbers; got {shown(value)}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers; got {shown(value)} (dtype {arr.dtype})")
    return np.array(arr, dtype=np.float64, order="C", copy=True)


def all_finite(arr, name):
    """ValueError naming the first non-finite entry of ``arr`` and its index."""
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size:
        index = tuple(bad[0].tolist())
        raise ValueError(f"{name} must be finite; got {float(arr[index])} at index {index}")


def times(t, T, name="t"):
    """t as float64 (scalar or array) inside [0, T] (a relative 1e-12 of
    slack above T, where rounding of T itself lands)."""
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


# ---- dtypes ----------------------------------------------------------------------
# float32 and float64 are kept; bool and integers become float64; float16,
# longdouble, complex, object and everything else raise TypeError, because the
# kernels exist for float32 and float64 only and silently changing precision
# or dropping an imaginary part would surprise.

SUPPORTED = (np.dtype(np.float32), np.dtype(np.float64))


def resolve_dtype(dtype, name="dtype"):
    """Return float32 or float64 for a requested ``dtype``, else TypeError."""
    try:
        dtype = np.dtype(dtype)
    except (TypeError, ValueError):
        # NumPy's own message ("data type 'x' not understood") names no argument
        raise TypeError(f"{name} must be float32 or float64 (np.float32, np.float64, 'float32' "
                        f"or 'float64'); got {dtype!r}") from None
    if dtype.kind == "f" and dtype.itemsize in (4, 8):
        return dtype.newbyteorder("=")
    raise TypeError(f"{name} must be float32 or float64; got {dtype}")


def working_dtype(array_dtype, dtype=None, name="x"):
    """The dtype a computation on an array of ``array_dtype`` runs in.

    With ``dtype=None``: float32 and float64 are kept (byte order made
    native), bool and integers become float64, anything else is a TypeError.
    """
    if dtype is not None:
        return resolve_dtype(dtype, "dtype")
    array_dtype = np.dtype(array_dtype)
    if array_dtype.kind in "biu":
        return np.dtype(np.float64)
    if array_dtype.kind == "f" and array_dtype.itemsize in (4, 8):
        return array_dtype.newbyteorder("=")
    raise TypeError(
        f"{name} has dtype {array_dtype}; diffsde computes in float32 or float64 "
        f"(bool and integer inputs become float64). Convert it explicitly, e.g. "
        f"{name}.astype(np.float64)"
    )


# ---- memory ----------------------------------------------------------------------

def physical_memory_bytes():
    """Installed physical memory, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(n_bytes, what):
    """Raise MemoryError when ``n_bytes`` exceed physical memory, before
    anything is allocated."""
    limit = physical_memory_bytes()
    if limit is not None and n_bytes > limit:
        raise MemoryError(
            f"{what} would need {n_bytes:,} bytes ({n_bytes / 2**30:.1f} GiB) but this "
            f"machine has {limit:,} bytes of physical memory; save fewer states "
            f"(save_every/save_at) or use a smaller batch"
        )
