"""Tests of diffsde's random numbers: Philox4x32-10 + Box-Muller (docs/conventions.md).

Exactness is checked against Random123's known answers and against the
independent NumPy twin in reference_rng.py; statistics are checked at fixed
seeds with tolerances of 5 standard errors of the sample size used.
"""
import math
import os

import numpy as np
import pytest
from scipy import stats

import diffsde as ds
from diffsde import _core
from diffsde._rng import key_from_rng

try:  # tests/ may or may not be a package
    from . import reference_rng as ref
except ImportError:
    import reference_rng as ref

DTYPES = [np.float64, np.float32]
F32 = {np.float64: False, np.float32: True}
N = 10**6
SEED = 20240601
#: Largest |z| (normal.h): u1 = 2^-53 (float64) or 2^-32 (float32), u2 = 0.
ZMAX = {np.float64: math.sqrt(-2.0 * math.log(2.0**-53)),
        np.float32: math.sqrt(-2.0 * math.log(2.0**-32))}


def fill(dtype, key, stream, k, j0, n, num_threads=1):
    out = np.empty(n, dtype)
    _core.fill_normal(out, key, stream, k, j0, num_threads)
    return out


def threads():
    return max(2, ds.get_num_threads())


@pytest.fixture(scope="module", params=DTYPES, ids=["f64", "f32"])
def sample(request):
    """10^6 normals of a fixed seed, and their dtype."""
    z = ds.standard_normal(N, rng=SEED, dtype=request.param)
    assert z.dtype == request.param and z.shape == (N,)
    return request.param, z


# ---- 1. Random123 known answers ---------------------------------------------

KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("impl", ["C", "twin"])
@pytest.mark.parametrize("ctr, key, expected", KNOWN_ANSWERS, ids=["zero", "ones", "pi"])
def test_philox_known_answers(impl, ctr, key, expected):
    ctr = np.array([ctr], np.uint32)
    key = np.array(key, np.uint32)
    out = _core.philox(ctr, key) if impl == "C" else ref.philox4x32_10(ctr, key)
    assert out.dtype == np.uint32 and out.shape == (1, 4)
    assert [int(w) for w in out[0]] == list(expected)


# ---- 2. C against the twin --------------------------------------------------

def test_philox_matches_twin():
    rng = np.random.default_rng(1)
    ctrs = rng.integers(0, 2**32, size=(20000, 4), dtype=np.uint32)
    ctrs[:4] = [[0, 0, 0, 0], [2**32 - 1] * 4, [1, 0, 0, 0], [0, 0, 0, 2**31]]
    keys = [[0, 0], [2**32 - 1, 2**32 - 1], [1, 0], [0, 1]]
    keys += rng.integers(0, 2**32, size=(4, 2), dtype=np.uint32).tolist()
    for key in keys:
        key = np.array(key, np.uint32)
        np.testing.assert_array_equal(_core.philox(ctrs, key), ref.philox4x32_10(ctrs, key))


EDGE_WORDS = np.array([0, 1, 0x7FF, 0x800, 0x7FFFFFFF, 0x80000000, 0xFFFFF7FF,
                       0xFFFFF800, 0xFFFFFFFE, 0xFFFFFFFF], np.uint32)


def edge_and_random_words():
    grid = np.stack(np.meshgrid(*[EDGE_WORDS] * 4, indexing="ij"), -1).reshape(-1, 4)
    rand = np.random.default_rng(2).integers(0, 2**32, size=(200000, 4), dtype=np.uint32)
    return np.ascontiguousarray(np.concatenate([grid, rand]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_box_muller_matches_twin(dtype):
    words = edge_and_random_words()
    z = _core.box_muller(words, F32[dtype])
    assert z.dtype == dtype and z.shape == (len(words), ref.PER_BLOCK[np.dtype(dtype)])
    # Same operations in the same order through the same libm: bit for bit.
    np.testing.assert_array_equal(z, ref.box_muller(words, dtype))


FILL_CASES = [
    # key, stream, k, j0, n
    (0, 1, 0, 0, 1000),
    (0x0123456789ABCDEF, 0, 5, 1, 37),
    (0xFEDCBA9876543210, 2**32 - 1, 2**32 - 1, 3, 50),
    (2**64 - 1, 2**32 - 2, 2**32 - 1, 7, 21),
    (12345, 7, 12345, 2**35 + 1, 100),       # block > 2^32 in both dtypes
    (12345, 3, 9, 2**33 - 5, 10),            # float64 block crosses 2^32
    (12345, 3, 9, 2**34 - 7, 14),            # float32 block crosses 2^32
    (99, 2, 1, 2**64 - 200, 150),            # the top of the j range
    (42, 1, 0, 65530, 2 * 65536 + 11),      # across C chunks, j0 unaligned
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key, stream, k, j0, n", FILL_CASES)
def test_fill_normal_matches_twin(dtype, key, stream, k, j0, n):
    z = fill(dtype, key, stream, k, j0, n, num_threads=threads())
    expected = ref.normal(key, stream, k, j0 + np.arange(n, dtype=np.uint64), dtype)
    np.testing.assert_array_equal(z, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_standard_normal_is_stream_1_interval_0(dtype):
    key = key_from_rng(7)
    # SPEC 7: one 64-bit draw from default_rng(rng).
    assert key == int(np.random.default_rng(7).integers(0, 2**64, dtype=np.uint64))
    z = ds.standard_normal((5, 7), rng=7, dtype=dtype)
    np.testing.assert_array_equal(z.ravel(), ref.normal(key, 1, 0, np.arange(35), dtype))


# ---- 3. extreme uniforms ----------------------------------------------------

def test_extremes_float64():
    zmax = ZMAX[np.float64]
    assert zmax == pytest.approx(math.sqrt(106 * math.log(2)), rel=1e-15)
    assert zmax == pytest.approx(8.5716743486529, abs=1e-12)
    # a = 0 (w1 = 0, w0 < 2^11) -> u1 = 2^-53; b = 0 -> u2 = 0, theta = 0.
    words = np.array([[0, 0, 0, 0],
                      [0x7FF, 0, 0x7FF, 0],
                      [0, 0, 0, 0x80000000],        # u2 = 1/2: cos = -1
                      [0, 0, 0, 0x40000000],        # u2 = 1/4: sin = 1
                      [0xFFFFF800, 0xFFFFFFFF, 0, 0],        # a = 2^53 - 1 -> u1 = 1
                      [0xFFFFFFFF, 0xFFFFFFFF, 0x12345678, 0x9ABCDEF0]], np.uint32)
    z = _core.box_muller(words, False)
    assert z[0, 0] == z[1, 0] == zmax and z[0, 1] == z[1, 1] == 0.0
    assert z[2, 0] == -zmax and abs(z[2, 1]) < 1e-14
    assert z[3, 1] == zmax and abs(z[3, 0]) < 1e-14
    assert np.all(z[4:] == 0.0)
    # One more bit of u1 (a = 1, u1 = 2^-52) is already below the maximum.
    z1 = _core.box_muller(np.array([[0x800, 0, 0, 0]], np.uint32), False)
    assert z1[0, 0] == pytest.approx(math.sqrt(104 * math.log(2)), rel=1e-15)


def test_extremes_float32():
    zmax = np.float32(ZMAX[np.float32])
    assert ZMAX[np.float32] == pytest.approx(6.6604368892615815, abs=1e-12)
    words = np.array([[0, 0, 0, 0],                          # u1 = 2^-32, u2 = 0
                      [0, 0x80000000, 0, 0x40000000],        # u2 = 1/2 and 1/4
                      [0xFFFFFFFF, 0, 0xFFFFFFFF, 0xDEADBEEF]], np.uint32)  # u1 = 1
    z = _core.box_muller(words, True)
    np.testing.assert_array_equal(z[0], [zmax, 0, zmax, 0])
    assert z[1, 0] == -zmax and z[1, 3] == zmax
    assert abs(z[1, 1]) < 1e-6 and abs(z[1, 2]) < 1e-6
    np.testing.assert_array_equal(z[2], 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_normals_are_finite_and_bounded(dtype):
    z = _core.box_muller(edge_and_random_words(), F32[dtype])
    assert np.all(np.isfinite(z))
    # The edge words include u1 = 2^-k, u2 = 0, which reaches the maximum.
    assert np.abs(z).max() == np.asarray(ZMAX[dtype], dtype)


def test_samples_are_finite_and_bounded(sample):
    dtype, z = sample
    assert np.all(np.isfinite(z))
    assert np.abs(z).max() <= np.asarray(ZMAX[dtype], dtype)


# ---- 4. golden values (regression guard) ------------------------------------

# The first 8 normals of key 0, stream 1, k 0: checked against reference_rng
# when written, hard-coded here so that any change to the generator, counter
# layout or transform (in C and twin alike) is noticed.
GOLDEN = {
    # (the libm transform before the SIMD one gave the same numbers to 1 ulp:
    # -1.5051760519481703, -1.7047509018105707, ...)
    np.float64: [-1.5051760519481698, -1.7047509018105713, -1.2095546212704258,
                 -0.9150142267611555, -0.36841535455864377, 0.42100407369905285,
                 -0.8316988046957582, -0.43509219972533286],
    np.float32: [1.6511778831481934, 0.845645546913147, -0.10209859162569046,
                 -0.11563608795404434, -0.17499223351478577, 0.3935258686542511,
                 -1.0974653959274292, -0.8302200436592102],
}


@pytest.mark.parametrize("dtype", DTYPES)
def test_golden_values(dtype):
    golden = np.array(GOLDEN[dtype], dtype)
    np.testing.assert_array_equal(fill(dtype, 0, 1, 0, 0, 8), golden)
    np.testing.assert_array_equal(ref.normal(0, 1, 0, np.arange(8), dtype), golden)


# ---- 5. moments and distribution --------------------------------------------

def test_moments(sample):
    _, z = sample
    z = z.astype(np.float64)
    n = len(z)
    mean = z.mean()
    d = z - mean
    var = np.mean(d**2)
    skew = np.mean(d**3) / var**1.5
    kurt = np.mean(d**4) / var**2
    assert abs(mean) < 5 * math.sqrt(1 / n)
    assert abs(var - 1) < 5 * math.sqrt(2 / n)
    assert abs(skew) < 5 * math.sqrt(6 / n)
    assert abs(kurt - 3) < 5 * math.sqrt(24 / n)


def test_kolmogorov_smirnov(sample):
    _, z = sample
    assert stats.kstest(z.astype(np.float64), "norm").pvalue > 1e-4


# ---- 6. tails ---------------------------------------------------------------

def assert_binomial(count, n, c):
    p = 2 * stats.norm.sf(c)
    assert abs(count - n * p) < 5 * math.sqrt(n * p * (1 - p)), (c, count, n * p)


def test_tails_from_array(sample):
    _, z = sample
    a = np.abs(z)
    for c in (3.0, 4.0):
        assert_binomial(int(np.count_nonzero(a > c)), len(z), c)


@pytest.mark.parametrize("dtype", DTYPES)
def test_count_tails_counts_the_same_normals(dtype):
    n, thr = 300007, np.array([0.0, 0.5, 1.0, 2.5, 3.0, 9.0])
    z = np.abs(fill(dtype, 77, 4, 3, 0, n).astype(np.float64))
    expected = [np.count_nonzero(z > t) for t in thr]
    for nt in (1, threads()):
        counts = _core.count_tails(77, 4, 3, n, thr, F32[dtype], nt)
        assert counts.dtype == np.int64
        assert counts.tolist() == expected


@pytest.mark.parametrize("dtype", DTYPES)
def test_tails_1e8(dtype):
    # 10^8 normals per dtype, counted in C without storing them (~1 s each on
    # 2 cores).
    n, thr = 10**8, np.array([3.0, 4.0, 5.0])
    counts = _core.count_tails(key_from_rng(SEED), 1, 0, n, thr, F32[dtype], threads())
    for c, count in zip(thr, counts):
        assert_binomial(int(count), n, c)


# ---- 7. independence --------------------------------------------------------

def assert_uncorrelated(x, y):
    x, y = x.astype(np.float64), y.astype(np.float64)
    assert abs(np.corrcoef(x, y)[0, 1]) < 5 / math.sqrt(len(x))


def test_neighbouring_elements_uncorrelated(sample):
    _, z = sample
    assert_uncorrelated(z[:-1], z[1:])
    # The two normals of one Box-Muller pair share r: their squares must be
    # uncorrelated too (they are independent, not merely uncorrelated).
    assert_uncorrelated(z[0::2] ** 2, z[1::2] ** 2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_neighbouring_intervals_uncorrelated(dtype):
    key = key_from_rng(SEED)
    assert_uncorrelated(fill(dtype, key, 0, 41, 0, N, threads()),
                        fill(dtype, key, 0, 42, 0, N, threads()))


@pytest.mark.parametrize("dtype", DTYPES)
def test_streams_uncorrelated(dtype):
    key = key_from_rng(SEED)
    assert_uncorrelated(fill(dtype, key, 0, 3, 0, N, threads()),
                        fill(dtype, key, 1, 3, 0, N, threads()))


# ---- 8. reproducibility, layout and the public function ---------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_same_rng_same_numbers(dtype):
    a = ds.standard_normal((30, 7), rng=7, dtype=dtype)
    b = ds.standard_normal((30, 7), rng=7, dtype=dtype)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, ds.standard_normal((30, 7), rng=8, dtype=dtype))
    np.testing.assert_array_equal(ds.standard_normal(5, rng=np.random.SeedSequence(7)),
                                  ds.standard_normal(5, rng=7))


@pytest.mark.parametrize("dtype", DTYPES)
def test_prefix_and_shape_do_not_matter(dtype):
    long = ds.standard_normal(200001, rng=11, dtype=dtype)
    for n in (1, 2, 3, 5, 999, 70001):
        np.testing.assert_array_equal(ds.standard_normal(n, rng=11, dtype=dtype), long[:n])
    for shape in [(12,), (3, 4), (2, 2, 3), (12, 1)]:
        z = ds.standard_normal(shape, rng=11, dtype=dtype)
        assert z.shape == shape
        np.testing.assert_array_equal(z.ravel(), long[:12])


def test_generator_is_advanced_once_per_call():
    gen = np.random.default_rng(3)
    a = ds.standard_normal(6, rng=gen)
    b = ds.standard_normal(6, rng=gen)
    assert not np.array_equal(a, b)
    keys = np.random.default_rng(3).integers(0, 2**64, size=2, dtype=np.uint64)
    np.testing.assert_array_equal(a, ref.normal(int(keys[0]), 1, 0, np.arange(6)))
    np.testing.assert_array_equal(b, ref.normal(int(keys[1]), 1, 0, np.arange(6)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("j0", [0, 3])
def test_thread_count_does_not_change_bits(dtype, j0):
    key = key_from_rng(SEED)
    one = fill(dtype, key, 1, 0, j0, N, num_threads=1)
    for nt in (2, 3):
        np.testing.assert_array_equal(fill(dtype, key, 1, 0, j0, N, num_threads=nt), one)


def test_float32_and_float64_differ():
    a = ds.standard_normal(1000, rng=7, dtype=np.float32).astype(np.float64)
    b = ds.standard_normal(1000, rng=7, dtype=np.float64)
    # Different transforms of the same words: unrelated numbers, not roundings.
    assert np.mean(np.abs(a - b)) > 0.5


# longdouble is float64 on some platforms (then it is a supported dtype)
@pytest.mark.parametrize("dtype", [np.float16, np.complex64, np.complex128, np.int64, object] + (
    [np.longdouble] if np.dtype(np.longdouble) != np.dtype(np.float64) else []))
def test_rejects_other_dtypes(dtype):
    with pytest.raises(TypeError):
        ds.standard_normal(3, rng=0, dtype=dtype)


def test_out_wrong_shape_or_dtype():
    with pytest.raises(ValueError):
        ds.standard_normal((2, 3), rng=0, out=np.empty((3, 2)))
    with pytest.raises(ValueError):
        ds.standard_normal((2, 3), rng=0, out=np.empty(6))
    with pytest.raises((TypeError, ValueError)):
        ds.standard_normal((2, 3), rng=0, out=np.empty((2, 3), np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_is_filled(dtype):
    expected = ds.standard_normal((4, 5), rng=9, dtype=dtype)
    out = np.full((4, 5), np.nan, dtype)
    assert ds.standard_normal((4, 5), rng=9, dtype=dtype, out=out) is out
    np.testing.assert_array_equal(out, expected)
    out2 = np.full((4, 5), np.nan, dtype)
    assert ds.standard_normal(rng=9, dtype=dtype, out=out2) is out2  # shape from out
    np.testing.assert_array_equal(out2, expected)
    # A non-contiguous out is filled in C order of its own indices.
    base = np.full((4, 10), np.nan, dtype)
    view = base[:, ::2]
    ds.standard_normal((4, 5), rng=9, dtype=dtype, out=view)
    np.testing.assert_array_equal(view, expected)
    assert np.all(np.isnan(base[:, 1::2]))


def test_a_failed_call_does_not_advance_the_generator():
    gen = np.random.default_rng(3)
    with pytest.raises(ValueError):
        ds.standard_normal((2, 3), rng=gen, out=np.empty(6))
    np.testing.assert_array_equal(ds.standard_normal(3, rng=gen), ds.standard_normal(3, rng=3))


def test_fill_normal_refuses_to_run_past_the_counter_space():
    with pytest.raises(ValueError, match="2\\*\\*64"):
        _core.fill_normal(np.empty(10), 0, 1, 0, 2**64 - 5, 1)



# ---- 9. the libm-free transform: accuracy and SIMD paths ---------------------

def ulps(x, ref_value):
    """|x - ref| in units of the last place of ref."""
    return np.abs(x - ref_value) / np.spacing(np.abs(ref_value))


@pytest.mark.parametrize("B", [53, 32])
def test_log_is_within_two_ulp_of_libm_over_the_whole_range(B):
    rng = np.random.default_rng(31)
    # every binade of A in [1, 2^B], plus both ends and the fold at sqrt(2)
    exponents = rng.integers(0, B, 200_000)
    A = (np.uint64(1) << exponents.astype(np.uint64)) + rng.integers(0, 2**62, 200_000, dtype=np.uint64) % (
        np.uint64(1) << exponents.astype(np.uint64))
    fold = np.floor(np.sqrt(2.0) * 2.0 ** np.arange(1, B - 1)).astype(np.uint64)
    A = np.concatenate([A, fold, fold + np.uint64(1), [1, 2, 3, 2**B - 1, 2**B]]).astype(np.uint64)
    ours = ref.log_scaled(A, B)
    libm = np.array([math.log(float(a) * 2.0**-B) for a in A])
    exact_zero = libm == 0
    assert np.all(ours[exact_zero] == 0)
    assert ulps(ours[~exact_zero], libm[~exact_zero]).max() <= 2


def test_sin_and_cos_are_within_two_ulp_of_libm():
    x = np.concatenate([np.linspace(0, np.pi / 4, 100_001), np.random.default_rng(32).uniform(0, np.pi / 4, 100_000)])
    sin_x, cos_x = ref.sin_cos_polynomials(x)
    libm_sin = np.array([math.sin(v) for v in x])
    libm_cos = np.array([math.cos(v) for v in x])
    nonzero = libm_sin != 0
    assert ulps(sin_x[nonzero], libm_sin[nonzero]).max() <= 2
    assert np.all(sin_x[~nonzero] == 0)
    assert ulps(cos_x, libm_cos).max() <= 2
    # and the whole turn, against libm's sin(2 pi u): within rounding of 2 pi u
    b = np.random.default_rng(33).integers(0, 2**53, 100_000, dtype=np.uint64)
    s, c = ref.sincos_turns(b, 53)
    theta = 2 * np.pi * (b.astype(np.float64) * 2.0**-53)
    assert np.max(np.abs(s - np.sin(theta))) < 2e-15 and np.max(np.abs(c - np.cos(theta))) < 2e-15


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_simd_path_gives_the_same_bits(dtype):
    paths = _core.simd_paths()
    assert paths[0] == "baseline"
    before = _core.simd_path()
    key = key_from_rng(34)
    results = {}
    try:
        for path in paths:
            _core.set_simd(path)
            # odd offsets and lengths exercise the partial first and last blocks
            results[path] = fill(dtype, key, 0, 7, 3, 100_003, num_threads=1)
    finally:
        _core.set_simd(before)
    for path in paths:
        np.testing.assert_array_equal(results[path], results["baseline"])
    np.testing.assert_array_equal(results["baseline"], ref.normal(key, 0, 7, 3 + np.arange(100_003, dtype=np.uint64), dtype))
    with pytest.raises(ValueError, match="not supported"):
        _core.set_simd("sse9")


def test_the_environment_variable_forces_a_path(tmp_path):
    import subprocess
    import sys

    code = "import diffsde as ds; print(ds.get_simd_path())"
    # the package the tests import, wherever it is installed or built
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(ds.__file__))}
    for path in ds.simd_paths():
        out = subprocess.run([sys.executable, "-c", code], env={**env, "DIFFSDE_SIMD": path}, cwd=tmp_path,
                             capture_output=True, text=True, check=True).stdout.strip()
        assert out == path
    bad = subprocess.run([sys.executable, "-c", code], env={**env, "DIFFSDE_SIMD": "sse9"}, cwd=tmp_path,
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "DIFFSDE_SIMD='sse9'" in bad.stderr
    with pytest.raises(ValueError, match="not available"):
        ds.set_simd_path("neon9")
