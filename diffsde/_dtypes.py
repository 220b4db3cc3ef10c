"""The dtype rules shared by every public function.

float32 and float64 are kept; bool and integers become float64; float16,
longdouble, complex, object and everything else raise TypeError, because the
kernels exist for float32 and float64 only and silently changing precision or
dropping an imaginary part would surprise.
"""
import numpy as np

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
