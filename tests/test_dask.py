"""ds.forward / ds.reverse on dask arrays: bit for bit the in-memory run, on
the threaded scheduler and on a LocalCluster of two worker processes."""
import re
import sys
import threading
import time

import numpy as np
import pytest

import diffsde as ds

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

VP = ds.VPSDE()
N_ROWS, CHUNK = 10_000, 3_001  # uneven: blocks of 3001, 3001, 3001, 997


class RowScore:
    """A picklable callable score, row by row: the score of N(0, 1) under VP
    (exact for a standard normal start)."""

    def __call__(self, x, t):
        return -x


class LockedScore(RowScore):
    """Holds a lock: cannot be pickled, fine on threads."""

    def __init__(self):
        self.lock = threading.Lock()


class Exploding:
    """Finite, but so large where |x| > 50 that the state overflows."""

    def __call__(self, x, t):
        return np.where(np.abs(x) > 50, 1e308, -x)


@pytest.fixture(scope="module")
def client():
    # the workers unpickle this module's callables by value: tests/ is not on
    # their path
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       memory_limit="512MiB", dashboard_address=None)
    with distributed.Client(cluster, set_as_default=False) as c:
        yield c
    cluster.close()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(params=["threads", "cluster"])
def scheduler(request):
    """The scheduler to compute on (active while the graph is built, too)."""
    target = "threads" if request.param == "threads" else request.getfixturevalue("client")
    with dask.config.set(scheduler=target):
        yield target


def _compute(*arrays):
    return dask.compute(*arrays)


def _x0(rows=N_ROWS, d=2, seed=0):
    return np.random.default_rng(seed).standard_normal((rows, d))


def _equal(lazy, ref):
    x, xs = _compute(lazy.x, lazy.xs)
    np.testing.assert_array_equal(x, ref.x)
    np.testing.assert_array_equal(xs, ref.xs)
    np.testing.assert_array_equal(lazy.ts, ref.ts)
    assert lazy.nfe == ref.nfe
    assert x.dtype == ref.x.dtype


def test_forward_on_uneven_chunks_is_the_in_memory_run(scheduler):
    x0 = _x0()
    ref = ds.forward(VP, x0, steps=30, rng=3, save_every=7)
    lazy = ds.forward(VP, da.from_array(x0, chunks=(CHUNK, 2)), steps=30, rng=3, save_every=7)
    assert isinstance(lazy.x, da.Array) and lazy.x.chunks[0] == (3001, 3001, 3001, 997)
    _equal(lazy, ref)
    # streaming reductions of the lazy result: histogram counts are exact
    counts, _ = da.histogram(lazy.x[:, 0], bins=20, range=(-4, 4))
    np.testing.assert_array_equal(counts.compute(), np.histogram(ref.x[:, 0], bins=20, range=(-4, 4))[0])
    np.testing.assert_allclose(lazy.x.var(axis=0).compute(), ref.x.var(axis=0), rtol=1e-12)


def test_reverse_mixture_with_corrector_from_the_prior_is_the_in_memory_run(scheduler):
    mix = ds.datasets.eight_gaussians()
    kw = dict(steps=20, rng=5, corrector="langevin", save_at=[20, 10, 0])
    ref = ds.reverse(VP, mix, shape=(N_ROWS, 2), **kw)
    lazy = ds.reverse(VP, mix, shape=(N_ROWS, 2), chunks=CHUNK, **kw)
    _equal(lazy, ref)
    # the same prior given as a dask state
    start = da.from_array(ref.xs[0], chunks=2_500)
    _equal(ds.reverse(VP, mix, start, **kw), ref)


def test_reverse_heun_with_a_picklable_callable_is_the_in_memory_run(scheduler):
    x0 = _x0(seed=1)
    ref = ds.reverse(VP, RowScore(), x0, steps=15, method="ode_heun", rng=2)
    lazy = ds.reverse(VP, RowScore(), da.from_array(x0, chunks=CHUNK), steps=15, method="ode_heun", rng=2)
    _equal(lazy, ref)


#: The stochastic samplers of k-diffusion (churn makes euler/heun draw too):
#: their extra in-step draws (churn, dpmpp_sde's second normal) are streams
#: of their own, counter-based like the step's.
K_STOCHASTIC = [("euler_ancestral", {}), ("dpm_2_ancestral", {}), ("dpmpp_2s_ancestral", {}), ("dpmpp_sde", {}),
                ("dpmpp_2m_sde", {}), ("dpmpp_3m_sde", {}), ("heun", {"s_churn": 3.0, "s_tmax": 40.0}),
                ("euler", {"s_churn": 3.0, "s_tmax": 40.0})]


@pytest.mark.parametrize("method,options", K_STOCHASTIC, ids=[m for m, _ in K_STOCHASTIC])
def test_reverse_k_diffusion_samplers_on_chunks_are_the_in_memory_run(scheduler, method, options):
    edm = ds.EDM()
    kw = dict(ts=ds.grids.karras(edm, 12, t_end=0.0), method=method, rng=6, save_at=[12, 5, 0], **options)
    ref = ds.reverse(edm, ds.datasets.eight_gaussians(), shape=(N_ROWS, 2), **kw)
    _equal(ds.reverse(edm, ds.datasets.eight_gaussians(), shape=(N_ROWS, 2), chunks=CHUNK, **kw), ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_empirical_score_event_axes_and_user_noise_on_threads(dtype):
    data = ds.EmpiricalData(np.random.default_rng(4).standard_normal((50, 6)))
    x0 = _x0(997, 6, seed=2).astype(dtype)
    ref = ds.reverse(VP, data, x0, steps=8, method="reverse_diffusion", rng=9)
    # a state chunked along its event axis too is merged into whole rows
    lazy = ds.reverse(VP, data, da.from_array(x0, chunks=(100, 3)), steps=8, method="reverse_diffusion", rng=9)
    assert lazy.x.chunks[1] == (6,)
    _equal(lazy, ref)
    noise = np.random.default_rng(8).standard_normal((8, 997, 6)).astype(dtype)
    ref = ds.forward(VP, x0, steps=8, noise=noise)
    _equal(ds.forward(VP, da.from_array(x0, chunks=300), steps=8, noise=noise), ref)
    _equal(ds.forward(VP, da.from_array(x0, chunks=300), steps=8, noise=da.from_array(noise, chunks=50)), ref)


def test_prior_draws_match_any_chunking_and_stay_lazy():
    ref = ds.reverse(VP, ds.LinearScore(), shape=(1000, 3), steps=4, rng=1)
    for chunks in (1000, 1, 333, (10, 0, 990)):
        lazy = ds.reverse(VP, ds.LinearScore(), shape=(1000, 3), chunks=chunks, steps=4, rng=1)
        _equal(lazy, ref)


def test_a_block_that_becomes_non_finite_names_its_block_step_and_time(scheduler):
    x0 = _x0(seed=3)
    x0[7000, 1] = 100.0  # block 2: rows 6002:9003
    with pytest.raises(FloatingPointError) as memory:
        ds.reverse(VP, Exploding(), x0, steps=10, rng=1)
    lazy = ds.reverse(VP, Exploding(), da.from_array(x0, chunks=CHUNK), steps=10, rng=1)
    with pytest.raises(FloatingPointError, match=r"^in block 2 \(rows 6002:9003 of the batch\): ") as dist:
        lazy.x.compute()
    assert str(dist.value).endswith(str(memory.value))
    assert "the state became non-finite at step 0 of 10 (t = 1)" in str(dist.value)
    # a non-finite start is reported with its block before any step runs
    x0[7000, 1] = np.inf
    with pytest.raises(ValueError, match=r"^in block 2 \(rows 6002:9003 of the batch\): x0 contains a non-finite"):
        ds.forward(VP, da.from_array(x0, chunks=CHUNK), steps=3).x.compute()


def test_nonfinite_warn_and_ignore_run_every_block_as_in_memory():
    x0 = _x0(seed=3)
    x0[7000, 1] = 100.0
    with pytest.warns(RuntimeWarning, match="non-finite at step 0 of 10"):
        ref = ds.reverse(VP, Exploding(), x0, steps=10, rng=1, nonfinite="warn")
    with dask.config.set(scheduler="threads"):
        lazy = ds.reverse(VP, Exploding(), da.from_array(x0, chunks=CHUNK), steps=10, rng=1, nonfinite="warn")
        with pytest.warns(RuntimeWarning, match="non-finite at step 0 of 10"):
            _equal(lazy, ref)
        _equal(ds.reverse(VP, Exploding(), da.from_array(x0, chunks=CHUNK), steps=10, rng=1,
                          nonfinite="ignore"), ref)
    assert not np.all(np.isfinite(ref.x[6002:9003])) and np.all(np.isfinite(ref.x[:6002]))


def test_an_unpicklable_score_is_refused_before_the_cluster_sees_it(client):
    x = da.from_array(_x0(100, 2), chunks=40)
    with dask.config.set(scheduler=client):
        with pytest.raises(TypeError, match=r"the score .*LockedScore.* cannot be pickled .*lock"):
            ds.reverse(VP, LockedScore(), x, steps=3, rng=1)


def test_an_unpicklable_score_built_on_threads_and_sent_to_the_cluster_says_why(client):
    x = da.from_array(_x0(100, 2), chunks=40)
    with dask.config.set(scheduler="threads"):
        lazy = ds.reverse(VP, LockedScore(), x, steps=3, rng=1)
    # distributed wraps it in its own "Could not serialize" error: ours is in the chain
    with pytest.raises(Exception) as info:
        dask.compute(lazy.x, scheduler=client)
    chain, exc = [], info.value
    while exc is not None:
        chain.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    assert any(re.match(r"TypeError: the score .*LockedScore.* cannot be pickled", c) for c in chain), chain


def test_an_unpicklable_score_runs_on_threads():
    x0 = _x0(100, 2)
    ref = ds.reverse(VP, LockedScore(), x0, steps=3, rng=1)
    with dask.config.set(scheduler="threads"):
        _equal(ds.reverse(VP, LockedScore(), da.from_array(x0, chunks=40), steps=3, rng=1), ref)


def test_options_that_cannot_apply_to_a_lazy_run_raise():
    x = da.from_array(_x0(100, 2), chunks=40)
    with pytest.raises(ValueError, match="progress=True does not apply to a dask run.*ProgressBar"):
        ds.forward(VP, x, steps=3, progress=True)
    with pytest.raises(TypeError, match="out applies to NumPy runs only"):
        ds.forward(VP, x, steps=3, out=np.empty((100, 2)))
    with pytest.raises(ValueError, match=r"chunks applies to the prior drawn from shape \(x=None\)"):
        ds.reverse(VP, ds.LinearScore(), _x0(100, 2), steps=3, chunks=10)
    with pytest.raises(ValueError, match="chunks applies to the prior drawn from shape; rechunk x"):
        ds.reverse(VP, ds.LinearScore(), x, steps=3, chunks=10)
    with pytest.raises(ValueError, match=r"chunks must be .* summing to the batch 100; got \(10, 10\)"):
        ds.reverse(VP, ds.LinearScore(), shape=(100, 2), steps=3, chunks=(10, 10))
    with pytest.raises(ValueError, match="chunks must be an int >= 1; got 0"):
        ds.reverse(VP, ds.LinearScore(), shape=(100, 2), steps=3, chunks=0)
    with pytest.raises(ValueError, match=r"x0 has unknown chunk sizes; call x0.compute_chunk_sizes\(\) first"):
        ds.forward(VP, x[x[:, 0] > 0], steps=3)
    with pytest.raises(ValueError, match=r"noise must have shape \(intervals, \*x.shape\) = \(3, 100, 2\)"):
        ds.forward(VP, x, steps=3, noise=np.zeros((3, 99, 2)))


def test_without_dask_the_prior_path_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match=r'needs dask, which is not installed; .*pip install "diffsde\[dask\]"'):
        ds.reverse(VP, ds.LinearScore(), shape=(10, 2), chunks=5, steps=3)


def test_the_moments_of_a_batch_larger_than_the_workers_stream_on_the_cluster(client):
    """2 GiB of float64 state on two workers of 512 MiB: the forward run from
    0 with the exact transition ends at N(0, s(T)^2), and dask's mean/var
    reduce it block by block."""
    rows, chunk = 2**28, 2**22  # 2 GiB of state, 64 blocks of 32 MiB
    x0 = da.zeros((rows, 1), chunks=(chunk, 1))
    start = time.perf_counter()
    tr = ds.forward(VP, x0, steps=2, method="exact", rng=11, save_at=[2])
    assert tr.x.nbytes == 2**31 == 4 * 512 * 2**20  # four times a worker's limit
    mean, var = dask.compute(tr.x.mean(), tr.x.var(), scheduler=client)
    elapsed = time.perf_counter() - start
    s2 = float(VP.marginal_coefficients(VP.T)[1]) ** 2
    assert abs(mean) < 5 * np.sqrt(s2 / rows)
    assert abs(var - s2) < 5 * s2 * np.sqrt(2 / rows)
    assert elapsed < 60, f"the 2 GiB streaming run took {elapsed:.1f} s"


def _docs_examples():
    import pathlib
    text = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "dask.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("marker", ["chunks=3_001", "def study"])
def test_the_docs_examples_run_as_written(marker):
    """docs/dask.md: the bit-identity example and the sweep (the 2 GiB
    reduction is the cluster test above)."""
    (code,) = [block for block in _docs_examples() if marker in block]
    namespace = {}
    with dask.config.set(scheduler="threads"):
        exec(compile(code, f"docs/dask.md ({marker})", "exec"), namespace)
    if marker == "def study":
        results = namespace["results"]
        assert len(results) == 16 and all(np.isfinite(r[-1]) and r[-1] > 0 for r in results)
        # a sweep's study is the in-memory run: same seed, same distance
        first = namespace["study"](*namespace["grid"][0]).compute(scheduler="sync")
        assert first == results[0]
