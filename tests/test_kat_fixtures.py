"""The known-answer fixtures of tools/arm64/ against the installed C core.

tools/arm64_check.sh compares a pure-C driver (tools/arm64/kat.c), built for
x86-64 and aarch64, with tools/arm64/expected.txt. These tests run the same
cases through the extension that diffsde imports (``_core.run``, as
``ds.run_steps`` does), on every SIMD path of this CPU, so the fixtures are
known to be what the package computes, here and on any machine that runs the
suite (a native arm64 build included).
"""
import re
from pathlib import Path

import numpy as np
import pytest

import diffsde as ds
from diffsde import _core

KAT = Path(__file__).resolve().parents[1] / "tools" / "arm64"

PARAM_NAMES = {0: (), 1: ("mu", "var0"), 3: ("log_weights", "means", "lambdas", "vectors", "uniform"),
               4: ("points", "points_t", "sq_norms", "center")}


def read_cases():
    """{name: {field: [tokens]}} from cases.txt (make_cases.py's format)."""
    cases, current = {}, None
    for line in (KAT / "cases.txt").read_text().splitlines():
        tokens = line.split()
        if tokens[0] == "case":
            current = cases.setdefault(tokens[1], {})
        elif tokens[0] != "end":
            assert int(tokens[1]) == len(tokens) - 2, f"field {tokens[0]} has a wrong count"
            current[tokens[0]] = tokens[2:]
    return cases


def read_expected():
    """{label: bit patterns as one uint array} from expected.txt."""
    out = {}
    for line in (KAT / "expected.txt").read_text().splitlines():
        match = re.fullmatch(r"(.*)\[(\d+)\]: (.*)", line)
        if match:
            out.setdefault(match.group(1), []).extend(int(v, 16) for v in match.group(3).split())
    return out


HAVE_FIXTURES = (KAT / "cases.txt").is_file() and (KAT / "expected.txt").is_file()
CASES = read_cases() if HAVE_FIXTURES else {}
EXPECTED = read_expected() if HAVE_FIXTURES else {}


pytestmark = pytest.mark.skipif(not HAVE_FIXTURES, reason="needs the source tree (tools/arm64/)")


def floats(tokens):
    return np.array([float.fromhex(v) for v in tokens])


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64).ravel()


def setup_case(name):
    c = CASES[name]
    dtype = np.float32 if c["dtype"] == ["f32"] else np.float64
    batch, dim = (int(v) for v in c["shape"])
    kind = int(c["score_kind"][0])
    params = tuple(floats(c[p]) for p in PARAM_NAMES[kind])
    rows, width, n_registers = (int(v) for v in c["table"])
    table = {"kind": np.array(c["kind"], np.int32), "dst": np.array(c["dst"], np.int32),
             "src": np.array(c["src"], np.int32).reshape(rows, width),
             "w": floats(c["w"]).reshape(rows, width), "t": floats(c["t"]), "m": floats(c["m"]),
             "sd": floats(c["sd"]), "interval": np.array(c["interval"], np.int64),
             "stream": np.array(c["stream"], np.int64), "n_registers": n_registers}
    options = {"key": int(c["key"][0], 16), "noise": None, "score_kind": kind, "score_params": params,
               "callback": None, "registers": (None,) * n_registers, "check_finite": True,
               "stop_on_nonfinite": True, "num_threads": 1, "block_rows": batch, "row_offset": 0,
               "save_rows": np.empty(0, np.int64), "snapshots": np.empty((0, batch, dim), dtype)}
    x = floats(c["x"]).astype(dtype).reshape(batch, dim)
    return c, x, table, options


@pytest.fixture(params=ds.simd_paths())
def simd_path(request):
    before = ds.get_simd_path()
    ds.set_simd_path(request.param)
    yield request.param
    ds.set_simd_path(before)


def test_the_fixtures_cover_every_case():
    assert len(CASES) >= 10
    for name in CASES:
        assert f"{name} x" in EXPECTED


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_run_gives_the_fixture_bits(simd_path, name):
    c, x, table, options = setup_case(name)
    options["num_threads"] = 2
    options["block_rows"] = 7
    assert _core.run(x, table, options) == -1
    np.testing.assert_array_equal(bits(x), EXPECTED[f"{name} x"])


@pytest.mark.parametrize("name", sorted(n for n in CASES if CASES[n]["evals"]))
def test_a_score_gives_the_fixture_bits(simd_path, name):
    c, x, table, options = setup_case(name)
    evals = floats(c["evals"]).reshape(-1, 2)
    width = table["src"].shape[1]
    src = np.full((1, width), -1, np.int32)
    src[0, 0] = 0
    w = np.zeros((1, width))
    w[0, 1] = 1.0  # a score row storing the raw score into the state
    options["registers"] = (None,)
    for i, (m, s) in enumerate(evals):
        row = {"kind": np.zeros(1, np.int32), "dst": np.zeros(1, np.int32), "src": src, "w": w,
               "t": np.zeros(1), "m": np.array([m]), "sd": np.array([s]),
               "interval": np.zeros(1, np.int64), "stream": np.zeros(1, np.int64), "n_registers": 1}
        g = x.copy()
        _core.run(g, row, options)
        [label] = [k for k in EXPECTED if k.startswith(f"{name} score {i} (")]
        np.testing.assert_array_equal(bits(g), EXPECTED[label])


def test_philox_box_muller_and_normals_give_the_fixture_bits(simd_path):
    lines = (KAT / "expected.txt").read_text().splitlines()
    philox = [[int(v, 16) for v in line.split(": ")[1].split()] for line in lines if line.startswith("philox[")]
    ctrs = np.array([[0] * 4, [0xFFFFFFFF] * 4, [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344]], np.uint32)
    keys = [(0, 0), (0xFFFFFFFF,) * 2, (0xA4093822, 0x299F31D0)]
    got = [list(map(int, _core.philox(ctrs[i:i + 1], np.array(keys[i], np.uint32))[0])) for i in range(3)]
    assert got == philox
    edge = np.array([0, 1, 0x7FF, 0x800, 0x7FFFFFFF, 0x80000000, 0xFFFFF7FF, 0xFFFFF800, 0xFFFFFFFE,
                     0xFFFFFFFF], np.uint32)
    a, b = np.meshgrid(edge, edge, indexing="ij")
    words = np.stack([a.ravel(), b.ravel(), b.ravel(), a.ravel()], axis=1)
    z64, z32 = _core.box_muller(words, False), _core.box_muller(words, True)
    want = [line.split(": ")[1].replace("|", "").split() for line in lines if line.startswith("box_muller[")]
    want = np.array([[int(v, 16) for v in row] for row in want], np.uint64)
    np.testing.assert_array_equal(bits(z64).reshape(-1, 2), want[:, :2])
    np.testing.assert_array_equal(bits(z32).reshape(-1, 4), want[:, 2:])
    for label, values in EXPECTED.items():
        match = re.fullmatch(r"normal_(f64|f32)\((\w+),(\d+),(\d+),(\d+)\)", label)
        if match:
            dtype = np.float32 if match.group(1) == "f32" else np.float64
            out = np.empty(len(values), dtype)
            _core.fill_normal(out, int(match.group(2), 16), int(match.group(3)), int(match.group(4)),
                              int(match.group(5)), 1)
            np.testing.assert_array_equal(bits(out), values)
