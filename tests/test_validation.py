"""The validation module: each constraint kind accepts exactly what it says,
refuses the rest with the argument's name, the value (as a plain number) and
what is allowed; and the package's import structure has no cycle."""
import ast
import math
import pathlib
import re

import numpy as np
import pytest

import diffsde as ds
from diffsde import _validation as v

# ---- real scalars -----------------------------------------------------------------

# kind, bound, accepted values, refused values (finite ones), the allowed text
REAL_KINDS = [
    ("finite", None, [-1e300, 0.0, 2.5], [], "finite"),
    ("non_negative", None, [0.0, 1e-300, 7], [-1e-300, -1.0], "finite and >= 0"),
    ("positive", None, [1e-300, 3.0], [0.0, -0.0, -2.0], "finite and > 0"),
    ("in_unit_interval", None, [1e-12, 0.5, 1 - 1e-12], [0.0, 1.0, -0.1, 1.5], r"in \(0, 1\)"),
    ("probability", None, [0.0, 0.5, 1.0], [-1e-12, 1 + 1e-12], r"in \[0, 1\]"),
    ("at_least", 1, [1.0, 1.5, 100], [1 - 1e-12, 0.0], "finite and >= 1"),
    ("at_least", 0.25, [0.25, 3], [0.2], "finite and >= 0.25"),
    ("greater_than", 2, [2 + 1e-12, 5], [2.0, 1.0], "finite and > 2"),
]


def test_every_real_kind_is_tested():
    assert {k[0] for k in REAL_KINDS} == set(v.REAL_CONSTRAINTS)


@pytest.mark.parametrize("kind, bound, good, bad, allowed", REAL_KINDS, ids=[f"{k[0]}-{k[1]}" for k in REAL_KINDS])
def test_real_kinds_accept_and_refuse_exactly_their_values(kind, bound, good, bad, allowed):
    for value in good:
        integral = value == int(value) and abs(value) < 2**62
        for form in (value, np.float64(value), np.array(value), np.int64(value) if integral else value):
            out = v.real_scalar(form, "a", kind, bound)
            assert type(out) is float and out == value
    for value in bad + [math.nan, math.inf, -math.inf]:
        for form in (value, np.float64(value)):
            with pytest.raises(ValueError, match=f"^a must be {allowed}; got {re.escape(v.shown(float(value)))}$"):
                v.real_scalar(form, "a", kind, bound)
    for value in ("1", None, True, np.bool_(False), 1 + 0j, [1.0], np.ones(2)):
        with pytest.raises(TypeError, match=rf"^a must be a real number \({allowed}\); got "):
            v.real_scalar(value, "a", kind, bound)


def test_real_messages_show_numpy_numbers_plainly():
    with pytest.raises(ValueError) as info:
        v.real_scalar(np.float64(-2.0), "eta", "non_negative")
    assert str(info.value) == "eta must be finite and >= 0; got -2.0"
    with pytest.raises(ValueError) as info:
        v.real_scalar(np.int64(-3), "eta", "non_negative")
    assert str(info.value) == "eta must be finite and >= 0; got -3"


# ---- integers ---------------------------------------------------------------------

@pytest.mark.parametrize("low, high, high_name, good, bad, allowed", [
    (1, None, None, [1, 2, 10**20], [0, -5], "an int >= 1"),
    (0, None, None, [0, 3], [-1], "an int >= 0"),
    (2, None, None, [2], [1], "an int >= 2"),
    (0, 32, None, [0, 32], [-1, 33], r"an int in \[0, 32\]"),
    (1, 5, "N", [1, 5], [0, 6], r"an int in \[1, N\] = \[1, 5\]"),
])
def test_integer_bounds(low, high, high_name, good, bad, allowed):
    for value in good:
        for form in (value, np.int64(value) if abs(value) < 2**63 else value, np.array(value, dtype=object)[()]):
            out = v.integer(form, "k", low, high, high_name)
            assert type(out) is int and out == value
    for value in bad:
        with pytest.raises(ValueError, match=f"^k must be {allowed}; got {value}$"):
            v.integer(np.int32(value), "k", low, high, high_name)
    for value in (2.0, np.float64(3.0), "2", None, True, np.bool_(True), 1 + 0j):
        with pytest.raises(TypeError, match=f"^k must be {allowed}; got {re.escape(v.shown(value))}$"):
            v.integer(value, "k", low, high, high_name)


def test_integer_none_allowed_only_when_asked():
    assert v.integer(None, "n", 1, none=True) is None
    assert v.integer(np.array(4), "n", 1, none=True) == 4
    with pytest.raises(TypeError, match="^n must be an int >= 1; got None$"):
        v.integer(None, "n", 1)
    with pytest.raises(ValueError, match="^n must be an int >= 1 or None; got 0$"):
        v.integer(0, "n", 1, none=True)


# ---- other value types -----------------------------------------------------------

def test_flag_takes_only_bools():
    assert v.flag(True, "progress") is True and v.flag(np.bool_(False), "progress") is False
    for value in (1, 0, "yes", None, np.array([True])):
        with pytest.raises(TypeError, match=f"^progress must be True or False; got {re.escape(v.shown(value))}$"):
            v.flag(value, "progress")


def test_choice_lists_the_options():
    assert v.choice("law", "null", ("permutation", "law")) == "law"
    with pytest.raises(ValueError, match="^null must be 'permutation' or 'law'; got 'perm'$"):
        v.choice("perm", "null", ("permutation", "law"))
    with pytest.raises(ValueError, match="^rule must be 'a', 'b' or 'c'; got 3$"):
        v.choice(np.int64(3), "rule", ("a", "b", "c"))
    with pytest.raises(ValueError, match="^kind must be 'only'; got None$"):
        v.choice(None, "kind", ("only",))


def test_callable_of_names_the_call():
    fn = v.callable_of(len, "f", "f(x)")
    assert fn is len
    with pytest.raises(TypeError, match=r"^score must be callable as score\(x, t\); got 3.0$"):
        v.callable_of(np.float64(3.0), "score", "score(x, t)")


def test_shape_tuple_refuses_floats_instead_of_truncating():
    assert v.shape_tuple(3) == (3,)
    assert v.shape_tuple((np.int64(2), 0)) == (2, 0)
    assert v.shape_tuple(np.array([4, 5])) == (4, 5)
    assert v.shape_tuple(()) == ()
    for value in (2.5, (2, 3.0), (True, 2), "ab", None, [[1, 2]]):
        with pytest.raises(TypeError, match="^shape must be an int or a tuple of ints, each >= 0; got "):
            v.shape_tuple(value)
    with pytest.raises(ValueError, match=r"^shape must be an int or a tuple of ints, each >= 0; got \(2, -1\)$"):
        v.shape_tuple((2, np.int64(-1)))


def test_shown_never_gives_numpy_reprs():
    assert v.shown(np.float64(2.0)) == "2.0"
    assert v.shown(np.float32(0.5)) == "0.5"
    assert v.shown(np.int8(-3)) == "-3"
    assert v.shown(np.bool_(True)) == "True"
    assert v.shown(np.array(7)) == "7"
    assert v.shown(np.zeros((2, 3), np.float32)) == "an array of shape (2, 3) and dtype float32"
    assert v.shown("abc") == "'abc'"
    long = v.shown(list(range(100)))
    assert len(long) == v.SHOWN_CHARS and long.endswith("...")


# ---- arrays and times ------------------------------------------------------------

def test_real_array_and_float_copy():
    a = np.array([1, 2], dtype=np.int32)
    out = v.real_array(a, "x", ndim=1)
    assert out.dtype == np.float64 and out.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match=r"^x must have 1 dimension\(s\); got shape \(1, 2\)$"):
        v.real_array([[1, 2]], "x", ndim=1)
    with pytest.raises(ValueError, match=r"^x must be finite; got \[1.0, nan\]$"):
        v.real_array([1.0, np.nan], "x")
    with pytest.raises(TypeError, match="^x must be real numbers; got dtype complex128$"):
        v.real_array([1j], "x")
    src = np.arange(6.0)[::2]
    src.flags.writeable = False
    copy = v.float_copy(src, "points")
    assert copy.flags.c_contiguous and copy.flags.owndata and copy.flags.writeable
    assert not src.flags.writeable and not np.shares_memory(copy, src)
    with pytest.raises(ValueError, match=r"^w must be finite; got inf at index \(1,\)$"):
        v.all_finite(np.array([0.0, np.inf]), "w")


def test_times_allow_rounding_above_T_only():
    assert v.times(1.0 + 1e-13, 1.0) == 1.0
    assert v.times(np.array([0.0, 0.5]), 1.0).tolist() == [0.0, 0.5]
    with pytest.raises(ValueError, match=r"^t must lie in \[0, T\] = \[0, 1\]; got 1.001$"):
        v.times(1.001, 1.0)
    with pytest.raises(ValueError, match=r"^t must lie in \[0, T\] = \[0, 2\]; got -0.5$"):
        v.times([0.0, -0.5], 2.0)


def test_check_fits_refuses_beyond_physical_memory(monkeypatch):
    monkeypatch.setattr(v, "physical_memory_bytes", lambda: 1000)
    v.check_fits(1000, "a run")
    with pytest.raises(MemoryError, match="^a run would need 1,001 bytes"):
        v.check_fits(1001, "a run")
    monkeypatch.setattr(v, "physical_memory_bytes", lambda: None)
    v.check_fits(10**30, "a run")


def test_dtype_rules():
    assert v.resolve_dtype("float32") == np.float32
    assert v.working_dtype(np.dtype(">f8")) == np.float64 and v.working_dtype(np.dtype(">f8")).isnative
    assert v.working_dtype(np.int16) == np.float64
    with pytest.raises(TypeError, match="^dtype must be float32 or float64; got float16$"):
        v.resolve_dtype(np.float16)
    with pytest.raises(TypeError, match="^x0 has dtype complex128"):
        v.working_dtype(np.complex128, None, "x0")


# ---- the import structure ---------------------------------------------------------

PACKAGE = pathlib.Path(ds.__file__).parent


def _package_imports(tree, module):
    """(node, imported module) for every import of a diffsde module in ``tree``."""
    here = module.split(".")[:-1]  # the package the module lives in
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[:len(here) - (node.level - 1)]
            if node.module:
                yield node, ".".join(base + [node.module])
            else:
                yield from ((node, ".".join(base + [a.name])) for a in node.names)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            yield from ((node, n.removeprefix("diffsde.")) for n in names if n and n.startswith("diffsde."))


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        yield ".".join(rel.parts), ast.parse(path.read_text(), str(path))


def _key(name):
    """A module's name as others import it (a package by its own name)."""
    return name.removesuffix(".__init__")


def test_no_module_imports_a_package_module_inside_a_function():
    """A lazy import of a sibling module hides a cycle (scores <-> sde was one);
    imports of optional third-party packages may stay lazy."""
    lazy = []
    for name, tree in _modules():
        top = {id(n) for n in tree.body}
        for node, target in _package_imports(tree, name):
            # _build_check turns a missing extension into an install hint, so
            # its import of _core runs inside a try
            if id(node) not in top and not (name == "_build_check" and target == "_core"):
                lazy.append(f"{name}:{node.lineno} imports {target}")
    assert not lazy, lazy


def test_the_package_import_graph_has_no_cycle():
    graph = {}
    for name, tree in _modules():
        graph[_key(name)] = {t for _, t in _package_imports(tree, name)} - {_key(name)}
    state = {}

    def visit(node, path):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", f"import cycle: {' -> '.join(path + [node])}"
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if nxt in graph:
                visit(nxt, path + [node])
        state[node] = "done"

    for node in sorted(graph):
        visit(node, [])


class _Path:
    """A process by the protocol alone: no diffsde class, just T and (m, s)."""

    T = 2.0

    def marginal_coefficients(self, t):
        return np.exp(-t), np.sqrt(-np.expm1(-2 * np.asarray(t)))


class _Grid:
    """A chain by the protocol alone: N steps on t_i = i T / N, marked a chain
    by "chain" in its capabilities."""

    T, N = 1.0, 4
    capabilities = frozenset({"chain"})

    def marginal_coefficients(self, i):
        return np.sqrt(0.5) ** np.asarray(i), np.sqrt(1 - 0.5 ** np.asarray(i))


def test_scores_need_only_the_process_protocol():
    """Scores bind to any object with T and marginal_coefficients; a chain is
    told by "chain" in its capabilities and read at the grid index of the time."""
    gm = ds.GaussianMixture([1.0], [[1.0]], [0.25])
    x = np.array([[0.3], [-1.0]])
    m, s = np.exp(-0.7), np.sqrt(-np.expm1(-1.4))
    expected = (m * 1.0 - x) / (m * m * 0.25 + s * s)
    np.testing.assert_allclose(gm.score(_Path())(x, 0.7), expected, rtol=1e-14)
    m, s = np.sqrt(0.5) ** 3, np.sqrt(1 - 0.5**3)
    np.testing.assert_allclose(gm.score(_Grid())(x, 0.75), (m - x) / (m * m * 0.25 + s * s), rtol=1e-14)
    eps = ds.score_from_eps(lambda x, t: x, _Path())
    np.testing.assert_allclose(eps(x, 0.7), -x / np.sqrt(-np.expm1(-1.4)), rtol=1e-14)
    with pytest.raises(ValueError, match=r"t must lie in \[0, T\] = \[0, 2\]; got 2.5"):
        gm.score(_Path())(x, 2.5)
    with pytest.raises(TypeError, match="process must be an SDE or a chain .*; got float"):
        gm.score(1.0)


class _CountedPath(_Path):
    """A user's continuous process that keeps an int N (say, its number of
    training steps) and a respace helper: attributes a chain also has."""

    N = 1000

    def respace(self, M):
        return M


def test_an_int_N_does_not_make_a_user_process_a_chain():
    """Only the marker "chain" in capabilities makes a chain: a process with an
    int N is read at its time t (a chain would be read at index round(t N / T),
    here 350, where this m and s are exp(-350) and 1), and the same object
    with the marker is read at the index."""
    from diffsde._protocol import coefficients_at_time, is_chain
    counted = _CountedPath()
    assert not is_chain(counted) and not is_chain(ds.VPSDE())
    assert all(is_chain(c) for c in (ds.DDPM.linear(10), ds.SMLD.from_sde(ds.VESDE(), 10),
                                     ds.DDPM.linear(10).respace(3), _Grid()))
    x = np.array([[0.3], [-1.0]])
    m, s = np.exp(-0.7), np.sqrt(-np.expm1(-1.4))
    assert coefficients_at_time(counted, 0.7) == (m, s)
    gm = ds.GaussianMixture([1.0], [[1.0]], [0.25])
    np.testing.assert_allclose(gm.score(counted)(x, 0.7), (m - x) / (m * m * 0.25 + s * s), rtol=1e-14)
    np.testing.assert_allclose(ds.score_from_eps(lambda x, t: x, counted)(x, 0.7), -x / s, rtol=1e-14)
    with pytest.raises(ValueError, match="time='index' needs a DDPM or SMLD chain"):
        ds.network_score(lambda x, t: x, counted, time="index")
    # grids, which refuse chains, take a VP SDE that keeps N and a respace
    class CountedVP(ds.VPSDE):
        N = 1000

        def respace(self, M):
            return ds.DDPM.from_sde(self, M)

    np.testing.assert_array_equal(ds.grids.karras(CountedVP(), 8), ds.grids.karras(ds.VPSDE(), 8))
    with pytest.raises(TypeError, match="is a chain on the integer grid"):
        ds.grids.karras(ds.DDPM.linear(10), 8)
    # the same object marked a chain is read at index round(0.7 * 1000 / 2) = 350
    marked = _CountedPath()
    marked.capabilities = frozenset({"chain"})
    assert is_chain(marked) and coefficients_at_time(marked, 0.7) == (np.exp(-350.0), 1.0)
