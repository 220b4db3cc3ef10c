"""Regression tests for the items of issue 14 that were left over: the
callback engine's thread handling, argument messages, the documentation
checks and the convergence figure's title."""
import numpy as np
import pytest

import diffsde as ds
from diffsde import _core, _engine, _threads
from conftest import VP

# ---- 1. a Python score: one call per evaluation, and no thread waits on it ----


class CountingScore:
    """-scale x, recording the shape and time of every call."""

    def __init__(self, scale=1.0):
        self.scale = scale
        self.shapes, self.times = [], []

    def __call__(self, x, t):
        self.shapes.append(x.shape)
        self.times.append(t)
        return -self.scale * x


@pytest.fixture
def threads():
    yield ds.set_num_threads
    ds.set_num_threads(None)


SAMPLERS = [
    # (process, reverse options, score evaluations per step)
    (ds.DDPM.from_sde(ds.VPSDE(), 7, rule="exact"), dict(method="ancestral"), 1),
    (VP, dict(method="em"), 1),
    (VP, dict(method="ode_heun"), None),  # Heun: 2 per step but the last
    (VP, dict(method="em", corrector="langevin", n_corrector_steps=2), 3),
]


@pytest.mark.parametrize("batch", [1, 4_000, 10_000, _engine.CALLBACK_SERIAL_BELOW + 3])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("process, options, per_step", SAMPLERS)
@pytest.mark.parametrize("progress", [False, True])
def test_callback_runs_once_per_score_evaluation_on_the_whole_batch(batch, n_threads, process, options,
                                                                      per_step, progress, threads, capsys):
    threads(n_threads)
    score = CountingScore()
    steps = None if isinstance(process, ds.DDPM) else 7
    x = np.linspace(-2.0, 2.0, batch)
    traj = ds.reverse(process, score, x, steps, rng=3, progress=progress, **options)
    capsys.readouterr()
    n_steps = 7
    expected = 2 * n_steps - 1 if per_step is None else per_step * n_steps
    assert len(score.shapes) == traj.nfe == expected
    assert set(score.shapes) == {(batch,)}
    # in run order: one call per time, never a repeat of an evaluation
    if per_step == 1:
        assert score.times == sorted(score.times, reverse=True)
        assert len(set(score.times)) == n_steps


def _recorded_threads(monkeypatch):
    seen = []
    run = _core.run

    def recording(*args, **kwargs):
        seen.append(args[2]["num_threads"])  # run(x, table, options)
        return run(*args, **kwargs)

    monkeypatch.setattr(_core, "run", recording)
    return seen


@pytest.mark.parametrize("batch", [5_000, 10_000, 100_000, _engine.CALLBACK_SERIAL_BELOW - 1])
def test_callback_runs_below_the_callback_threshold_are_serial(batch, threads, monkeypatch):
    """The cliff: with 2 threads, a 1,000-step callback run on 10,000 rows
    took seconds (threads spinning at OpenMP barriers while the callback
    ran); at these sizes a second thread cannot pay for itself."""
    threads(2)
    seen = _recorded_threads(monkeypatch)
    ds.reverse(ds.DDPM.from_sde(ds.VPSDE(), 200), lambda x, t: -x, np.zeros(batch), rng=0)
    assert seen == [1]
    # a built-in score on the same run still uses the threads
    seen.clear()
    ds.reverse(ds.DDPM.from_sde(ds.VPSDE(), 200), ds.LinearScore(0.0, 1.0), np.zeros(batch), rng=0)
    assert seen == [2 if _core.openmp() and batch >= _threads.SERIAL_BELOW else 1]


def test_large_callback_runs_use_threads_and_give_the_same_bits(threads, monkeypatch):
    batch = _engine.CALLBACK_SERIAL_BELOW
    x = np.random.default_rng(5).standard_normal((batch // 2, 2))
    chain = ds.DDPM.from_sde(ds.VPSDE(), 6, rule="exact")
    score = CountingScore()
    threads(1)
    one = ds.reverse(chain, score, x, rng=9, save_every=2)
    threads(2)
    seen = _recorded_threads(monkeypatch)
    two = ds.reverse(chain, score, x, rng=9, save_every=2)
    assert seen == [2 if _core.openmp() else 1]
    np.testing.assert_array_equal(two.xs, one.xs)
    assert len(score.times) == 2 * 6


def _score_table(n=5):
    """n affine rows x <- 0.9 x + 0.1 s + 0.3 z, each with a score and noise."""
    return ds.StepTable.affine(np.full(n, 0.9), 0.1, 0.3, t=np.linspace(1.0, 0.2, n), m=1.0, sd=1.0)


@pytest.mark.parametrize("n_threads", [2, 3])
@pytest.mark.parametrize("block_rows", [1_000, 4_096, 50_000])
def test_threaded_callback_table_runs_match_serial_bits_with_many_blocks(n_threads, block_rows, threads, monkeypatch):
    """Blocks go to whichever thread claims them: any split, the same bits."""
    x = np.random.default_rng(1).standard_normal((15_011, 2))
    table = _score_table()
    threads(1)
    serial = ds.run_steps(x, table, score=lambda x, t: -0.5 * x, rng=4, save=np.arange(6))
    monkeypatch.setattr(_engine, "CALLBACK_SERIAL_BELOW", 0)
    threads(n_threads)
    seen = _recorded_threads(monkeypatch)
    score = CountingScore(0.5)
    run = ds.run_steps(x, table, score=score, rng=4,
                       save=np.arange(6), block_rows=block_rows)
    assert seen == [n_threads if _core.openmp() else 1]
    assert len(score.times) == run.nfe == 5
    np.testing.assert_array_equal(run.xs, serial.xs)


def test_threaded_callback_errors_and_nonfinite_values_stop_the_run(threads, monkeypatch):
    monkeypatch.setattr(_engine, "CALLBACK_SERIAL_BELOW", 0)
    threads(2)
    chain = ds.DDPM.from_sde(ds.VPSDE(), 10, rule="exact")
    x = np.zeros(20_000)
    calls = []

    def failing(x, t):
        calls.append(t)
        if len(calls) == 4:
            raise KeyError("boom")
        return -x

    with pytest.raises(KeyError, match="boom"):
        ds.reverse(chain, failing, x, rng=0)
    assert len(calls) == 4

    def blowing_up(x, t):
        return np.full_like(x, np.inf) if t < chain.t[5] else -x

    with pytest.raises(FloatingPointError, match="non-finite value inf"):
        ds.reverse(chain, blowing_up, x, rng=0)
    with pytest.warns(RuntimeWarning, match="non-finite at step"):
        ds.reverse(chain, blowing_up, x, rng=0, nonfinite="warn")


# ---- 2. messages that name the argument, no silently ignored option ----------

X4 = np.linspace(-1.0, 1.0, 4)


@pytest.mark.parametrize("call, error, message", [
    (lambda: ds.forward(VP, X4, 4, save_every=np.float64(-2.0)), TypeError,
     "save_every must be an int >= 1; got -2.0$"),
    (lambda: ds.forward(VP, X4, 4, save_every=np.int64(0)), ValueError, "save_every must be an int >= 1; got 0$"),
    (lambda: ds.forward(VP, X4, 4, dtype="x"), TypeError,
     r"dtype must be float32 or float64 \(np.float32, np.float64, 'float32' or 'float64'\); got 'x'$"),
    (lambda: ds.reverse(VP, lambda x, t: -x, X4, 4, dtype="x"), TypeError, "^dtype must be float32 or float64"),
    (lambda: ds.standard_normal(3, dtype="x"), TypeError, "^dtype must be float32 or float64"),
    (lambda: ds.forward(VP, X4, 4, progress="x"), TypeError, "^progress must be True or False .*; got 'x'$"),
    (lambda: ds.forward(VP, X4, 4, progress=None), TypeError, "^progress must be True or False .*; got None$"),
    (lambda: ds.reverse(VP, lambda x, t: -x, X4, 4, progress=1), TypeError, "^progress must be True or False"),
    (lambda: ds.reverse(VP, lambda x, t: -x, X4, 4, snr=0.2), ValueError,
     r"^snr=0.2 applies to corrector='langevin' only; got corrector=None with method='em' on VPSDE$"),
    (lambda: ds.reverse(VP, lambda x, t: -x, X4, 4, method="ode_heun", n_corrector_steps=np.int64(3)), ValueError,
     r"^n_corrector_steps=3 applies to corrector='langevin' only; got corrector=None with method='ode_heun'"),
    (lambda: ds.reverse(VP, lambda x, t: -x, X4, 4, snr=0.16), ValueError, "snr=0.16 applies to corrector='langevin'"),
    (lambda: ds.forward(VP, X4, 4, save_at=np.array([1, 9])), ValueError,
     r"save_at grid indices must lie in \[0, 4\]; got 9$"),
    (lambda: ds.run_steps(X4, ds.StepTable.affine(0.5, 0.0, 0.1), nonfinite=np.float64(1.0)), ValueError,
     r"nonfinite must be one of .*; got 1.0$"),
])
def test_messages_name_the_argument_without_numpy_reprs(call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert "np.float64(" not in str(info.value) and "np.int64(" not in str(info.value)


def test_corrector_defaults_are_snr_016_and_one_step():
    """None means the documented defaults: the same run as spelling them out."""
    score = ds.LinearScore(0.5, 2.0)
    x = np.linspace(-3.0, 3.0, 64)
    default = ds.reverse(VP, score, x, 6, corrector="langevin", rng=2)
    spelled = ds.reverse(VP, score, x, 6, corrector="langevin", snr=0.16, n_corrector_steps=1, rng=2)
    np.testing.assert_array_equal(default.x, spelled.x)
    assert default.nfe == 2 * 6
    other = ds.reverse(VP, score, x, 6, corrector="langevin", snr=0.3, rng=2)
    assert not np.array_equal(other.x, default.x)


@pytest.mark.parametrize("data", [ds.datasets.bimodal_1d(), ds.datasets.eight_gaussians()])
def test_reverse_sde_drift_of_a_bound_mixture_at_per_row_times(data):
    """ReverseSDE.drift(x, t) with t of shape (batch,) raised ('only
    0-dimensional arrays can be converted', later 't must be a real number');
    row i must get the drift at its own time t_i."""
    rev = ds.ReverseSDE(VP, data.score(VP), alpha=0.5)
    d = data.d
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, d)) if d > 1 else rng.standard_normal(7)
    t = np.array([0.1, 0.5, 0.1, 0.9, 0.3, 0.5, 1.0])
    drift = rev.drift(x, t)
    assert drift.shape == x.shape
    for i in range(len(t)):
        np.testing.assert_allclose(drift[i], rev.drift(x[i:i + 1], t[i])[0], rtol=1e-13, atol=1e-300)
    with pytest.raises(ValueError, match=r"t must be a scalar or have shape \(batch,\) = \(7,\); got shape \(3,\)"):
        rev.drift(x, t[:3])


# ---- 5. the converge figure says which data and t_end it used -----------------

@pytest.mark.parametrize("direction, data, span", [
    ("reverse", "gaussian_1d", "exact score, T = 1 down to t_end = 0.05"),
    ("forward", "bimodal_1d", "t = 0 to T = 1"),
])
def test_converge_figure_title_states_data_and_time_span(direction, data, span, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from diffsde import __main__ as cli

    titles = []

    def keep_title(self, fig, name):
        titles.append((name, fig.axes[0].get_title()))
        import matplotlib.pyplot as plt
        plt.close(fig)

    monkeypatch.setattr(cli.Report, "figure", keep_title)
    assert cli.main(["converge", "--kind", "weak", "--direction", direction, "--data", data, "--t-end", "0.05",
                     "--paths", "200", "--quiet", "--out", str(tmp_path)]) == 0
    assert titles == [(f"weak_{direction}_vp",
                       f"weak error of Euler-Maruyama, {direction} VP, 200 paths\ndata {data}, {span}")]
