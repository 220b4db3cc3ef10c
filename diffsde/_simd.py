"""Which instruction set the normal generator uses.

The generator's loops are compiled for several instruction sets (baseline,
AVX2, AVX-512 on x86-64) and the best one the CPU supports is chosen at
import. Every path computes the same bits (tests/test_rng.py checks), so this
only changes speed. ``DIFFSDE_SIMD=baseline|avx2|avx512`` forces a path.
"""
import os

from . import _core


def simd_paths():
    """The instruction-set paths this CPU supports, baseline first."""
    return list(_core.simd_paths())


def get_simd_path():
    """The path in use."""
    return _core.simd_path()


def set_simd_path(name):
    """Use the path ``name`` (one of :func:`simd_paths`); returns the previous one."""
    previous = _core.simd_path()
    if name not in simd_paths():
        raise ValueError(f"SIMD path {name!r} is not available here; choose one of {simd_paths()}")
    _core.set_simd(name)
    return previous


def _apply_environment():
    name = os.environ.get("DIFFSDE_SIMD", "").strip()
    if name:
        if name not in simd_paths():
            raise ValueError(f"DIFFSDE_SIMD={name!r} is not available on this CPU; "
                             f"choose one of {simd_paths()} or unset it")
        _core.set_simd(name)


_apply_environment()
