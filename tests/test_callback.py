"""reverse(..., callback=fn): the per-step hook (step, t, x, denoised), and
progress runs cut by time."""
import pathlib
import re

import numpy as np
import pytest
from scipy.stats import norm

import diffsde as ds
from diffsde import _core, _engine

ROOT = pathlib.Path(__file__).resolve().parent.parent
VP = ds.VPSDE()
MIX = ds.GaussianMixture([0.3, 0.7], [[-1.0, 0.5], [1.5, -0.5]],
                         [[[0.5, 0.3], [0.3, 0.4]], [[0.3, -0.1], [-0.1, 0.2]]])


def _python_score(mix):
    bound = mix.score(VP)
    return lambda x, t: bound(x, t)


@pytest.mark.parametrize("method, options", [("em", {}), ("ode_heun", {}), ("ddim", {}), ("ancestral", {}),
                                             ("reverse_diffusion", {}),
                                             ("em", {"corrector": "langevin"})])
@pytest.mark.parametrize("which", ["builtin", "python"])
def test_a_callback_that_changes_nothing_keeps_every_bit(method, options, which):
    """Issue 19 (callback): the hook is called once per step with the step,
    the grid times and the run's state; a run through it (built-in scores
    take the Python-score path then) gives the bits of a run without it."""
    score = MIX if which == "builtin" else _python_score(MIX)
    x = np.random.default_rng(3).standard_normal((300, 2))
    plain = ds.reverse(VP, score, x, 12, method=method, rng=5, save_every=5, **options)
    seen = []

    def hook(info):
        assert info["x"].flags.writeable and info["x"].shape == x.shape
        seen.append((info["i"], info["t"], info["t_next"]))

    hooked = ds.reverse(VP, score, x, 12, method=method, rng=5, save_every=5, callback=hook, **options)
    np.testing.assert_array_equal(hooked.x, plain.x)
    np.testing.assert_array_equal(hooked.xs, plain.xs)
    grid = np.linspace(0, 1, 13)[::-1]
    assert [k for k, _, _ in seen] == list(range(12))
    np.testing.assert_allclose([(t, u) for _, t, u in seen], np.c_[grid[:-1], grid[1:]], rtol=0, atol=1e-15)


@pytest.mark.parametrize("method, options", [("em", {}), ("ode_heun", {}), ("ddim", {}),
                                             ("em", {"corrector": "langevin"})])
@pytest.mark.parametrize("which", ["builtin", "python"])
def test_denoised_is_the_posterior_mean_at_the_first_evaluation(method, options, which):
    """Issue 19 (callback): for Gaussian data N(mu, v I), Tweedie's
    (x + s^2 score)/m is the posterior mean mu + m v (x - m mu)/(m^2 v + s^2)
    at the state the step's first score evaluation saw: the state the step
    started from (Heun's first stage; the corrector's first sub-step)."""
    mu, v = np.array([0.5, -1.0]), 0.3
    data = ds.GaussianMixture([1.0], [mu], [v])
    score = data if which == "builtin" else _python_score(data)
    x = np.random.default_rng(4).standard_normal((50, 2))
    states, got = [x], []

    def hook(info):
        got.append((info["t"], np.array(info["denoised"])))
        assert not info["denoised"].flags.writeable
        states.append(info["x"].copy())

    ds.reverse(VP, score, x, 8, method=method, rng=1, callback=hook, **options)
    assert len(got) == 8
    for k, (t, denoised) in enumerate(got):
        m, s = VP.marginal_coefficients(t)
        expected = mu + m * v * (states[k] - m * mu) / (m**2 * v + s**2)
        np.testing.assert_allclose(denoised, expected, rtol=1e-12, atol=1e-12)


def test_a_callback_may_edit_the_state_in_place_or_return_a_new_one():
    """Issue 19 (callback): the run continues from the edited state; a
    deterministic run halved after step 5 equals the run to t_5, halved,
    then run on the rest of the grid; saved states come after the hook."""
    x = np.random.default_rng(5).standard_normal((40, 2))
    grid = np.linspace(0, 1, 11)[::-1]

    def in_place(info):
        if info["i"] == 4:
            info["x"] *= 0.5

    def returned(info):
        return info["x"] * 0.5 if info["i"] == 4 else None

    a = ds.reverse(VP, MIX, x, ts=grid, method="ddim", callback=in_place, save_at=[5])
    b = ds.reverse(VP, MIX, x, ts=grid, method="ddim", callback=returned, save_at=[5])
    first = ds.reverse(VP, MIX, x, ts=grid[:6], method="ddim").x * 0.5
    rest = ds.reverse(VP, MIX, first, ts=grid[5:], method="ddim").x
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_allclose(a.x, rest, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(a.xs[0], first)


def test_inpainting_holds_the_observed_coordinate_and_samples_the_exact_conditional():
    """Issue 19 (callback): the inpainting example of docs/methods.md, run as
    written. Observe x_0 = y of a 2-D mixture. Given y, x_t's coordinates
    are independent: the observed one N(m y, s^2), the other the 1-D mixture
    p(x_1 | x_0 = y) pushed through the process. The callback replaces the
    observed coordinate by a draw of N(m y, s^2) after every step (y itself
    at t = 0) and the score of the other is that conditional mixture's, so
    the other coordinate follows the exact conditional law: its mean and CDF
    at three points within 5 standard errors (n = 20,000)."""
    text = (ROOT / "docs" / "methods.md").read_text()
    section = text[text.index("### Inpainting a 2-D mixture"):]
    code = re.search(r"^```python\n(.*?)^```", section, flags=re.M | re.S).group(1)
    ns = {}
    exec(compile(code, "docs/methods.md", "exec"), ns)
    x, y, cw, cmean, cvar = (ns[k] for k in ("x", "y", "cw", "cmean", "cvar"))
    # the conditional law, recomputed here from the joint covariances
    w, mu, cov = ns["w"], ns["mu"], ns["cov"]
    joint = w * norm.pdf(y, mu[:, 0], np.sqrt(cov[:, 0, 0]))
    np.testing.assert_allclose(cw, joint / joint.sum(), rtol=1e-12)
    n = len(x)
    assert n == 20_000 and np.all(x[:, 0] == y)
    other = x[:, 1]
    mean = float(np.sum(cw * cmean))
    sd = float(np.sqrt(np.sum(cw * (cvar + cmean**2)) - mean**2))
    assert abs(other.mean() - mean) < 5 * sd / np.sqrt(n)
    for c in (mean - sd, mean, mean + sd):
        p = float(np.sum(cw * norm.cdf((c - cmean) / np.sqrt(cvar))))
        assert abs(np.mean(other < c) - p) < 5 * np.sqrt(p * (1 - p) / n), c


def test_callback_errors_name_the_argument_and_the_step():
    x = np.zeros((4, 2))
    with pytest.raises(TypeError, match="^callback must be a callable callback\\(info\\) or None; got 3$"):
        ds.reverse(VP, MIX, x, 4, callback=3)
    with pytest.raises(ValueError, match="the callback returned shape \\(4,\\) after step 1; expected \\(4, 2\\)"):
        ds.reverse(VP, MIX, x, 4, callback=lambda info: np.zeros(4))
    with pytest.raises(TypeError, match="the callback returned dtype complex128 after step 2"):
        ds.reverse(VP, MIX, x, 4, callback=lambda info: np.zeros((4, 2), complex) if info["i"] == 1 else None)

    def nan(info):
        info["x"][1, 1] = np.nan

    with pytest.raises(FloatingPointError, match="the callback left a non-finite value nan at index \\(1, 1\\) "
                                                 "after step 1 of 4"):
        ds.reverse(VP, MIX, x, 4, callback=nan)

    def boom(info):
        raise KeyError("mine")

    with pytest.raises(KeyError, match="mine") as err:
        ds.reverse(VP, MIX, x, 4, callback=boom)
    assert "raised by the callback after step 1 of 4" in "".join(err.value.__notes__)
    # a score row where m = 0 (a hand-built table: x_t carries nothing of x_0)
    table = ds.StepTable.affine(a=np.ones(2), b=np.full(2, 0.1), c=0.0, t=np.array([1.0, 0.5]),
                                m=np.array([0.0, 0.5]), sd=np.ones(2))
    with pytest.raises(ValueError, match="callback: the denoised estimate .* undefined at step 0 of 2 "
                                         "\\(t = 1\\), where m\\(t\\) = 0"):
        _engine.prepare(x, table, score=lambda x, t: -x, callback=print, times=[1.0, 0.5, 0.0])


def test_a_callback_does_not_touch_the_inputs():
    x = np.random.default_rng(2).standard_normal((20, 2))
    before = x.copy()
    ds.reverse(VP, MIX, x, 5, callback=lambda info: info["x"].fill(0.25))
    np.testing.assert_array_equal(x, before)


# ---- progress: chunks sized by time ------------------------------------------

def _counting(monkeypatch):
    calls = []
    run = _core.run

    def counted(x, rows, options):
        calls.append((len(rows["kind"]), options["num_threads"]))
        return run(x, rows, options)

    monkeypatch.setattr(_core, "run", counted)
    return calls


def test_a_progress_run_calls_c_once_per_chunk_of_time(monkeypatch, capsys):
    """Issue 21 (progress overhead): each call of C starts and joins the
    threads, and 100 fixed chunks cost a half-second run 70%. A progress run
    is one step on one thread (the rate), then chunks of PROGRESS_SECONDS:
    two calls for a run shorter than that, with the bits of the run without
    a bar."""
    table = ds.StepTable.affine(np.full(300, 0.99), 0.0, 0.1)
    x = np.random.default_rng(1).standard_normal((3000, 2))
    plain = ds.run_steps(x, table, rng=3, save=[0, 1, 150, 300])
    calls = _counting(monkeypatch)
    monkeypatch.setattr(_engine, "PROGRESS_SECONDS", 1e9)
    with_bar = ds.run_steps(x, table, rng=3, save=[0, 1, 150, 300], progress=True)
    assert [c[0] for c in calls] == [2, 598] and calls[0][1] == 1
    np.testing.assert_array_equal(with_bar.x, plain.x)
    np.testing.assert_array_equal(with_bar.xs, plain.xs)
    calls.clear()
    monkeypatch.setattr(_engine, "PROGRESS_SECONDS", 0.0)  # one step per call
    one_by_one = ds.run_steps(x, table, rng=3, save=[0, 1, 150, 300], progress=True)
    assert len(calls) == 300
    np.testing.assert_array_equal(one_by_one.xs, plain.xs)


def test_a_torch_network_runs_with_a_callback_that_edits_through_a_tensor():
    """Issue 19 (callback with torch scores): an x0-predicting torch module
    through ds.network_score; the callback's denoised is Tweedie's formula of
    the converted score, so it equals the network's own x0 prediction (the
    mixture's posterior mean, tests/networks.py) at the step's start; a
    no-op callback keeps the bits, and torch.from_numpy(info["x"]) edits the
    state in place (the arrays the callback gets are NumPy: the chosen
    convention)."""
    torch = pytest.importorskip("torch", reason="torch is not installed: pip install 'diffsde[torch]'")
    import networks
    torch.set_num_threads(1)

    class X0Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = torch.nn.Parameter(torch.ones((), dtype=torch.float64))

        def forward(self, x, t):
            m, s = networks.coefficients(VP, float(t[0]))
            return networks.mixture(x.double(), m, s, "torch", what="x0") * self.gain

    score = ds.network_score(X0Net(), VP, prediction="x0")
    x = np.random.default_rng(6).standard_normal((64, 2))
    plain = ds.reverse(VP, score, x, 10, rng=3, t_end=1e-3)
    states, got = [x], []

    def hook(info):
        assert type(info["x"]) is np.ndarray and type(info["denoised"]) is np.ndarray
        got.append((info["t"], info["denoised"].copy()))
        states.append(info["x"].copy())

    hooked = ds.reverse(VP, score, x, 10, rng=3, t_end=1e-3, callback=hook)
    np.testing.assert_array_equal(hooked.x, plain.x)
    for k, (t, denoised) in enumerate(got):
        m, s = networks.coefficients(VP, t)
        np.testing.assert_allclose(denoised, networks.mixture(states[k], m, s, what="x0"), rtol=1e-9, atol=1e-9)

    def hold(info):
        torch.from_numpy(info["x"])[:, 0] = 0.25

    held = ds.reverse(VP, score, x, 10, rng=3, t_end=1e-3, callback=hold, save_every=1)
    assert np.all(held.xs[1:, :, 0] == 0.25) and not np.any(held.xs[1:, :, 1] == 0.25)


def test_a_callback_on_a_dask_run_raises():
    da = pytest.importorskip("dask.array")
    x = da.zeros((8, 2), chunks=4)
    with pytest.raises(ValueError, match="^callback does not apply to a dask run"):
        ds.reverse(VP, MIX, x, 4, callback=lambda info: None)


def test_a_callback_with_rk45_raises_instead_of_being_ignored():
    # rk45 chooses its own steps; the callback was silently never called before
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"^callback does not apply to method='rk45' \(it chooses its own steps"):
        ds.reverse(VP, MIX, x, method="rk45", callback=lambda info: None)
