"""torch networks as scores: ds.reverse, ds.network_score and log_likelihood's
divergence by autograd, each checked against the exact score and density of
a known Gaussian mixture (tests/networks.py writes it in torch).
"""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: pip install 'diffsde[torch]' "
                                            "(CPU build, torch==2.13.0) runs these tests")

import diffsde as ds  # noqa: E402
import networks  # noqa: E402

# two cores shared by the whole test run: torch's own thread pool only spins
torch.set_num_threads(1)
VP = ds.VPSDE(0.1, 20.0)
VE = ds.VESDE(0.01, 50.0)
DATA = networks.data()
X = np.random.default_rng(5).normal(size=(64, 2)) * 2.0


class MixtureNet(torch.nn.Module):
    """The exact score (or eps, x0) of the mixture as a torch module, with
    one trainable parameter (requires grad, as in a real network) and a
    record of what it was called with."""

    def __init__(self, process, what="score", dtype=torch.float64):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.ones((), dtype=dtype))
        self.process, self.what, self.calls = process, what, []

    def forward(self, x, t):
        self.calls.append((x.dtype, t.dtype, tuple(t.shape), float(t[0]), bool(torch.all(t == t[0]))))
        m, s = networks.coefficients(self.process, float(t[0]))
        x64 = x.double()
        if self.what == "eps":
            out = (x64 - m * networks.mixture(x64, m, s, "torch", what="x0")) / s
        else:
            out = networks.mixture(x64, m, s, "torch", what=self.what)
        return (out * self.gain).to(x.dtype)


def numpy_score(process):
    return lambda x, t: networks.mixture(x, *networks.coefficients(process, t))


def torch_score(process):
    def score(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return networks.mixture(x, *networks.coefficients(process, float(t[0])), "torch")
    return score


def test_a_module_runs_in_reverse_without_warnings_one_time_per_sample():
    # item: a torch model (parameters requiring grad) works directly, no warnings, t per sample
    net = MixtureNet(VP)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = ds.reverse(VP, net, X, steps=40, rng=2, method="em")
    want = ds.reverse(VP, numpy_score(VP), X, steps=40, rng=2, method="em")
    np.testing.assert_allclose(got.x, want.x, rtol=1e-12, atol=1e-12)
    assert got.x.dtype == np.float64
    assert len(net.calls) == 40
    for x_dtype, t_dtype, t_shape, _, same in net.calls:
        assert (x_dtype, t_dtype, t_shape, same) == (torch.float64, torch.float64, (64,), True)
    assert [c[3] for c in net.calls] == pytest.approx(list(np.linspace(1, 0, 41)[:-1]), abs=1e-15)


def test_no_autograd_graph_is_recorded_in_sampling():
    seen = []

    class Probe(MixtureNet):
        def forward(self, x, t):
            seen.append(torch.is_inference_mode_enabled() and not torch.is_grad_enabled())
            return super().forward(x, t)

    ds.reverse(VP, Probe(VP), X, steps=3, rng=0)
    assert seen and all(seen)


def test_float32_network_on_float64_states_computes_in_float32_and_returns_float64():
    net = MixtureNet(VP, dtype=torch.float32)
    score = ds.network_score(net, VP, prediction="score")
    out = score(X, 0.3)
    assert out.dtype == np.float64
    assert net.calls[-1][:2] == (torch.float32, torch.float32)
    exact = DATA.score(VP)(X, 0.3)
    # float32 rounding of inputs and outputs: a few ulps of float32 relative to the score's scale
    np.testing.assert_allclose(out, exact, rtol=0, atol=1e-5 * np.abs(exact).max())
    tr = ds.reverse(VP, score, X, steps=20, rng=1)
    ref = ds.reverse(VP, numpy_score(VP), X, steps=20, rng=1)
    assert tr.x.dtype == np.float64 and np.abs(tr.x - ref.x).max() < 1e-4
    # dtype= overrides: a float32 state with a float64 request
    score64 = ds.network_score(MixtureNet(VP), VP, prediction="score", dtype="float64")
    assert score64(X.astype(np.float32), 0.3).dtype == np.float32


def test_inputs_are_shared_zero_copy_and_never_modified():
    seen = {}

    def net(x: torch.Tensor, t):
        seen["ptr"] = x.data_ptr()
        return -x

    x = np.array(X)
    x.flags.writeable = False  # the sampler hands its state to scores read-only
    ds.network_score(net, VP, prediction="score")(x, 0.5)
    assert seen["ptr"] == x.ctypes.data

    def in_place(x: torch.Tensor, t):
        return x.mul_(2)

    mine = np.array(X)
    with pytest.raises(RuntimeError, match="in place"):
        ds.network_score(in_place, VP, prediction="score")(mine, 0.5)
    np.testing.assert_array_equal(mine, X)  # a caller's writable array is copied, never changed
    x = np.array(X)
    before = x.copy()
    with pytest.raises(RuntimeError, match="in place"):
        ds.reverse(VP, in_place, x, steps=2, rng=0)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("prediction", ["eps", "x0"])
def test_network_score_predictions_give_the_exact_score(prediction):
    score = ds.network_score(MixtureNet(VP, what=prediction), VP, prediction=prediction, time="t")
    for t in (0.05, 0.5, 0.95):
        want = DATA.score(VP)(X, t)
        np.testing.assert_allclose(score(X, t), want, rtol=0, atol=1e-10 * np.abs(want).max())


def test_sigma_time_is_k_diffusions_denoiser_on_scaled_states():
    # D(x / m, sigma) with sigma = s / m: the posterior mean of x0 given x~ = x0 + sigma eps
    seen = []

    def denoiser(xs: torch.Tensor, sigma):
        seen.append(float(sigma[0]))
        return networks.mixture(xs, 1.0, float(sigma[0]), "torch", what="x0")

    score = ds.network_score(denoiser, VP, prediction="x0", time="sigma")
    for t in (0.05, 0.5, 0.95):
        m, s = networks.coefficients(VP, t)
        want = DATA.score(VP)(X, t)
        np.testing.assert_allclose(score(X, t), want, rtol=0, atol=1e-10 * np.abs(want).max())
        assert seen[-1] == pytest.approx(s / m, rel=1e-15)


def test_ve_offers_both_sigma_conventions():
    seen = {}

    def ncsn(x: torch.Tensor, sigma):
        # score_sde's VE networks are conditioned on the schedule's sigma(t) = sqrt(s^2 + sigma_min^2)
        seen["schedule"] = float(sigma[0])
        s = float(np.sqrt(float(sigma[0]) ** 2 - VE.sigma(0.0) ** 2))
        return networks.mixture(x, 1.0, s, "torch")

    def edm(x: torch.Tensor, sigma):
        seen["s/m"] = float(sigma[0])
        return networks.mixture(x, 1.0, float(sigma[0]), "torch", what="x0")

    t = 0.4
    want = DATA.score(VE)(X, t)
    a = ds.network_score(ncsn, VE, prediction="score", time="sigma_score_sde")(X, t)
    b = ds.network_score(edm, VE, prediction="x0", time="sigma")(X, t)
    np.testing.assert_allclose(a, want, rtol=1e-9)
    np.testing.assert_allclose(b, want, rtol=1e-9)
    m, s = networks.coefficients(VE, t)
    assert seen["schedule"] == pytest.approx(float(VE.sigma(t)), rel=1e-15)
    assert seen["schedule"] == pytest.approx(np.hypot(s, 0.01), rel=1e-12)
    assert seen["s/m"] == pytest.approx(s, rel=1e-15)
    with pytest.raises(ValueError, match="not a VESDE or SMLD chain"):
        ds.network_score(ncsn, VP, time="sigma_score_sde")


def test_index_time_is_the_diffusers_timestep_on_a_chain():
    chain = ds.DDPM.linear(30)
    net = MixtureNet(chain, what="eps")
    # the mixture helper reads (m, s) at a time: give it the chain's index instead
    steps = []

    def eps_net(x: torch.Tensor, timestep):
        steps.append((timestep.dtype, sorted(set(timestep.tolist()))))
        i = int(timestep[0]) + 1
        m, s = (float(c) for c in chain.marginal_coefficients(i))
        return (x - m * networks.mixture(x, m, s, "torch", what="x0")) / s

    x = X[:8]
    got = ds.reverse(chain, ds.network_score(eps_net, chain, prediction="eps", time="index"), x,
                     method="ancestral", rng=3)
    assert [s[1] for s in steps] == [[i - 1] for i in range(30, 0, -1)]
    assert all(s[0] == torch.int64 for s in steps)

    def eps_np(x, t):
        i = int(round(t * chain.N / chain.T))
        m, s = (float(c) for c in chain.marginal_coefficients(i))
        return (x - m * networks.mixture(x, m, s, what="x0")) / s

    want = ds.reverse(chain, ds.score_from_eps(eps_np, chain), x, method="ancestral", rng=3)
    np.testing.assert_allclose(got.x, want.x, rtol=1e-12, atol=1e-12)
    del net


def test_callable_time_and_velocity_on_rectified_flow():
    rf = ds.RectifiedFlow()

    def u_net(x: torch.Tensor, tau):
        # a flow-matching network in the reversed time tau = 1 - t, predicting dx/dt = x0' ... = eps - x0
        t = 1.0 - float(tau[0])
        m, s = networks.coefficients(rf, t)
        x0 = networks.mixture(x, m, s, "torch", what="x0")
        return (x - m * x0) / s - x0

    score = ds.network_score(u_net, rf, prediction="velocity", time=lambda t: 1.0 - t)
    for t in (0.1, 0.5, 0.9):
        want = DATA.score(rf)(X, t)
        np.testing.assert_allclose(score(X, t), want, rtol=0, atol=1e-10 * np.abs(want).max())


# -- likelihoods --------------------------------------------------------------------

def test_autograd_divergence_matches_the_exact_trace():
    # item: log_likelihood with an exact divergence by autograd for a network score
    x = DATA.sample(16, rng=4)
    exact = ds.log_likelihood(VP, DATA, x, steps=100)
    got = ds.log_likelihood(VP, torch_score(VP), x, steps=100, divergence="autograd")
    default = ds.log_likelihood(VP, torch_score(VP), x, steps=100)  # d = 2: autograd by default
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(default, got)
    # with the true p_T as prior, both are the data's log-density up to Heun's O(h^2) error
    prior = DATA.marginal_law(VP, VP.T).logpdf
    errors = [np.abs(ds.log_likelihood(VP, torch_score(VP), x, steps=n, prior=prior) - DATA.logpdf(x)).max()
              for n in (50, 100)]
    assert errors[1] < 1e-2 and 3.5 < errors[0] / errors[1] < 5.5, errors  # halving h: 4x


def test_autograd_hutchinson_is_the_finite_difference_estimate_without_its_error():
    x = DATA.sample(8, rng=6)
    vjp = ds.log_likelihood(VP, torch_score(VP), x, steps=50, divergence="hutchinson", n_probes=3, rng=9)
    fd = ds.log_likelihood(VP, numpy_score(VP), x, steps=50, divergence="finite_difference", n_probes=3, rng=9)
    # the same Rademacher probes: the two differ by the central differences' O(delta^2) and rounding
    np.testing.assert_allclose(vjp, fd, rtol=0, atol=1e-6)


def test_autograd_hutchinson_is_unbiased():
    x = np.repeat(DATA.sample(1, rng=7), 2000, axis=0)  # one point, independent probes per row
    est = ds.log_likelihood(VP, torch_score(VP), x, steps=40, divergence="hutchinson", rng=11)
    exact = ds.log_likelihood(VP, DATA, x[:1], steps=40)[0]
    se = est.std(ddof=1) / np.sqrt(est.size)
    assert se > 0 and abs(est.mean() - exact) < 5 * se


def test_high_dimension_defaults_to_hutchinson():
    d = 40
    mean, var = 0.5, 0.3

    def gauss(x: torch.Tensor, t):
        m, s = networks.coefficients(VP, float(t[0]))
        return (m * mean - x) / (m * m * var + s * s)

    x = np.full((3, d), 0.2)
    lin = ds.LinearScore(mean, var)
    exact = ds.log_likelihood(VP, lambda v, t: lin.evaluate(v, *networks.coefficients(VP, t)), x, steps=30,
                              n_probes=1, rng=1, delta=1e-3)
    # the trace of a linear score is the same for every probe: Hutchinson is exact here
    est = ds.log_likelihood(VP, gauss, x, steps=30, rng=1)
    np.testing.assert_allclose(est, exact, rtol=0, atol=1e-8)
    with pytest.raises(ValueError, match="n_probes applies"):
        ds.log_likelihood(VP, gauss, x, steps=30, n_probes=2, divergence="autograd")


# -- training --------------------------------------------------------------------------

def test_dsm_training_reaches_the_minimal_loss_of_gaussian_data():
    # For data N(mu, v) the DSM loss's minimum is E_t[Var(eps | x_t)] = E_t[m^2 v / (m^2 v + s^2)]
    # (the posterior variance of eps); a trained network's loss must come down to it.
    mu, v = 1.0, 0.5
    sub = ds.VPSDE(0.1, 20.0)
    t_min = 0.01
    t = np.linspace(t_min, 1.0, 20001)
    m, s = sub.marginal_coefficients(t)
    minimum = np.trapezoid(m * m * v / (m * m * v + s * s), t) / (1.0 - t_min)
    torch.manual_seed(0)
    net = ds.training.mlp(1, hidden=32, frequencies=2)
    net, losses = ds.training.train_dsm(lambda n, rng: mu + np.sqrt(v) * np.random.default_rng(rng).standard_normal(n),
                                        sub, net=net, steps=600, batch=256, lr=5e-3, t_min=t_min, rng=1)
    tail = losses[-200:]
    se = tail.std(ddof=1) / np.sqrt(tail.size)
    assert losses[:10].mean() > 1.5 * minimum
    # at or above the minimum (an estimate of it: 5 standard errors), and within 15 % of it
    assert minimum - 5 * se < tail.mean() < 1.15 * minimum, (tail.mean(), minimum, se)


def test_saved_weights_load_as_numpy_and_torch(tmp_path):
    torch.manual_seed(3)
    net = ds.training.mlp(2, hidden=16, frequencies=3)
    path = tmp_path / "w.npz"
    ds.training.save_mlp(net, path, note="x")
    as_np = ds.training.load_mlp(path)
    as_torch = ds.training.load_mlp(path, framework="torch")
    t = np.linspace(0.1, 0.9, X.shape[0])
    with torch.no_grad():
        ref = net(torch.from_numpy(X).float(), torch.from_numpy(t).float()).double().numpy()
        got_t = as_torch(torch.from_numpy(X), torch.from_numpy(t)).numpy()
    np.testing.assert_allclose(as_np(X, t), got_t, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(as_np(X, t), ref, rtol=0, atol=1e-5)  # the module computed in float32
    assert str(as_np.metadata["note"]) == "x"


# -- states as tensors: a tensor in, a tensor out -----------------------------------
# Issue 19: "a torch tensor passed as the state still comes back as NumPy". The
# run is the NumPy run of the same values (the C loop reads a view of the
# tensor's memory), so every check below is bit for bit against it.

MIX = DATA.score(VP)


def _snapshot(t):
    """Everything about a tensor a run could change."""
    return (t.detach().clone(), t.dtype, t.requires_grad, t.stride(), t.storage_offset(), t._version, t.grad)


def _unchanged(t, snap):
    values, dtype, grad, stride, offset, version, g = snap
    assert torch.equal(t.detach(), values) and t.dtype == dtype and t.requires_grad == grad
    assert (t.stride(), t.storage_offset(), t._version, t.grad) == (stride, offset, version, g)


RUNS = {
    "forward": lambda x, **kw: ds.forward(VP, x, 12, rng=4, save_every=4, **kw),
    "reverse em": lambda x, **kw: ds.reverse(VP, MIX, x, 12, rng=4, save_every=4, **kw),
    "reverse ddim, callable score": lambda x, **kw: ds.reverse(VP, numpy_score(VP), x, 12, method="ddim",
                                                               save_at=[0, 6, 12], **kw),
    "reverse rk45": lambda x, **kw: ds.reverse(VP, MIX, x, method="rk45", save_at=[0.5, 0.1], **kw),
}


@pytest.mark.parametrize("run", list(RUNS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_tensor_state_comes_back_a_tensor_with_the_numpy_runs_bits(run, dtype):
    x = torch.from_numpy(X[:16]).to(dtype).requires_grad_(True)
    snap = _snapshot(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "not writable" or "requires grad" warnings either
        got = RUNS[run](x)
    want = RUNS[run](X[:16].astype(np.float32 if dtype == torch.float32 else np.float64))
    for name in ("x", "xs"):
        a = getattr(got, name)
        assert type(a) is torch.Tensor and a.dtype == dtype and a.device.type == "cpu", name
        assert not a.requires_grad and a.shape == getattr(want, name).shape
        np.testing.assert_array_equal(a.numpy(), getattr(want, name))
    assert isinstance(got.ts, np.ndarray)  # times stay NumPy float64
    np.testing.assert_array_equal(got.ts, want.ts)
    _unchanged(x, snap)


def test_the_run_reads_the_tensor_through_a_read_only_view_of_its_memory():
    from diffsde._frameworks import array_in
    x = torch.from_numpy(np.array(X)).requires_grad_(True)
    view, framework = array_in(x, "x")
    assert framework == "torch" and np.shares_memory(view, x.detach().numpy())  # zero-copy
    assert not view.flags.writeable  # never written into


def test_non_contiguous_integer_and_low_precision_tensors():
    base = torch.from_numpy(np.random.default_rng(1).normal(size=(6, 40)))
    x = base.T[::2]  # (20, 6), strided both ways
    assert not x.is_contiguous()
    snap = _snapshot(base)
    got = ds.forward(VP, x, 8, rng=2)
    want = ds.forward(VP, np.ascontiguousarray(x.numpy()), 8, rng=2)
    np.testing.assert_array_equal(got.x.numpy(), want.x)
    _unchanged(base, snap)
    # integers run in float64, as NumPy integers do
    ints = torch.arange(12).reshape(6, 2)
    got = ds.forward(VP, ints, 5, rng=1)
    assert got.x.dtype == torch.float64
    np.testing.assert_array_equal(got.x.numpy(), ds.forward(VP, np.arange(12).reshape(6, 2), 5, rng=1).x)
    # half precision: an error naming the dtype, or the documented cast with dtype=
    for half in (torch.float16, torch.bfloat16):
        h = torch.from_numpy(X[:8]).to(half)
        with pytest.raises(TypeError, match=rf"x0 is a torch tensor of dtype {half}.*dtype='float32'"):
            ds.forward(VP, h, 5, rng=1)
        for dtype in ("float32", torch.float32):
            got = ds.forward(VP, h, 5, rng=1, dtype=dtype)
            assert got.x.dtype == torch.float32
            np.testing.assert_array_equal(got.x.numpy(), ds.forward(VP, h.float().numpy(), 5, rng=1).x)


def test_out_tensor_is_written_in_place_and_returned():
    x = torch.from_numpy(X[:16].copy())
    out = torch.full((16, 2), np.nan, dtype=torch.float64)
    version, ptr = out._version, out.data_ptr()
    got = ds.reverse(VP, MIX, x, 10, rng=3, out=out)
    want = ds.reverse(VP, MIX, X[:16], 10, rng=3)
    assert got.x is out and out.data_ptr() == ptr
    np.testing.assert_array_equal(out.numpy(), want.x)
    assert out._version > version  # autograd sees the write
    assert isinstance(got.xs, torch.Tensor)
    # out=x samples in place
    got = ds.reverse(VP, MIX, x, 10, rng=3, out=x)
    assert got.x is x
    np.testing.assert_array_equal(x.numpy(), want.x)
    # a NumPy state may be written into a tensor, and the other way round
    out = torch.empty(16, 2, dtype=torch.float64)
    assert ds.forward(VP, X[:16], 4, rng=0, out=out).x is out
    np_out = np.empty((16, 2))
    got = ds.forward(VP, torch.from_numpy(X[:16]), 4, rng=0, out=np_out)
    assert got.x is np_out and isinstance(got.xs, torch.Tensor)
    np.testing.assert_array_equal(out.numpy(), np_out)


def test_bad_tensors_raise_naming_the_argument_and_what_is_allowed():
    x = torch.from_numpy(X[:4])
    with pytest.raises(ValueError, match=r"x is a torch tensor on device 'meta'.*x\.cpu\(\)"):
        ds.reverse(VP, MIX, torch.empty(4, 2, device="meta"), 5)
    with pytest.raises(ValueError, match=r"x0 is a torch tensor on device 'meta'"):
        ds.forward(VP, torch.empty(4, 2, device="meta"), 5)
    with pytest.raises(TypeError, match="x0 is a torch tensor of dtype torch.complex128"):
        ds.forward(VP, x.to(torch.complex128), 5)
    with pytest.raises(TypeError, match="layout torch.sparse_coo.*to_dense"):
        ds.forward(VP, x.to_sparse(), 5)
    with pytest.raises(ValueError, match="out is a torch tensor that requires grad"):
        ds.forward(VP, x, 5, out=torch.empty(4, 2, dtype=torch.float64, requires_grad=True))
    with pytest.raises(ValueError, match="out is a torch tensor on device 'meta'"):
        ds.forward(VP, x, 5, out=torch.empty(4, 2, dtype=torch.float64, device="meta"))
    with pytest.raises(ValueError, match="expanded"):
        ds.forward(VP, x, 5, out=torch.zeros(1, 2, dtype=torch.float64).expand(4, 2))
    with pytest.raises(ValueError, match=r"out must have shape \(4, 2\) and dtype float64; got \(4, 2\) float32"):
        ds.forward(VP, x, 5, out=torch.empty(4, 2))
    with pytest.raises(TypeError, match="out must be a dense float32 or float64"):
        ds.forward(VP, x, 5, out=torch.empty(4, 2, dtype=torch.float16))
    with pytest.raises(TypeError, match="dtype must be float32 or float64; got torch.float16"):
        ds.forward(VP, x, 5, dtype=torch.float16)


def test_callback_sees_tensors_on_the_runs_memory():
    # the inpainting of docs/methods.md: clamp the first coordinate after every step,
    # once by editing a tensor in place, once by returning a new tensor, once in NumPy
    y = 0.4

    def numpy_hook(info):
        info["x"][:, 0] = y * (1 - info["t_next"])

    seen = []

    def in_place(info):
        x, den = info["x"], info["denoised"]
        assert isinstance(x, torch.Tensor) and isinstance(den, torch.Tensor)
        seen.append(den.numpy().copy())
        x[:, 0] = y * (1 - info["t_next"])

    def returning(info):
        x = info["x"].clone()
        x[:, 0] = y * (1 - info["t_next"])
        return x

    den_np = []
    want = ds.reverse(VP, MIX, X[:32], 10, rng=6, save_every=5,
                      callback=lambda info: (den_np.append(info["denoised"].copy()), numpy_hook(info))[1])
    x = torch.from_numpy(X[:32]).requires_grad_(True)
    for hook in (in_place, returning):
        got = ds.reverse(VP, MIX, x, 10, rng=6, save_every=5, callback=hook)
        assert isinstance(got.x, torch.Tensor)
        np.testing.assert_array_equal(got.x.numpy(), want.x)
        np.testing.assert_array_equal(got.xs.numpy(), want.xs)
    np.testing.assert_array_equal(np.array(seen), np.array(den_np))
    # a tensor the callback returns goes through the same checks
    with pytest.raises(ValueError, match="the callback's state is a torch tensor on device 'meta'"):
        ds.reverse(VP, MIX, x, 3, rng=6, callback=lambda info: torch.empty(32, 2, device="meta"))


@pytest.mark.filterwarnings("ignore::diffsde.analysis.OrderFitWarning")  # 8 paths: equality is the point
def test_shape_draws_numpy_and_other_entry_points_follow_the_state():
    # no state given: the prior is drawn by diffsde, in NumPy, whatever the score
    tr = ds.reverse(VP, MixtureNet(VP), shape=(8, 2), steps=4, rng=0)
    assert isinstance(tr.x, np.ndarray)
    # run_steps
    table = ds.methods.table(VP, "em", np.linspace(1, 0, 6))
    x = torch.from_numpy(X[:8]).float()
    got = ds.run_steps(x, table, score=numpy_score(VP), rng=2, save=[0, 5])
    want = ds.run_steps(X[:8].astype(np.float32), table, score=numpy_score(VP), rng=2, save=[0, 5])
    assert isinstance(got.x, torch.Tensor) and got.x.dtype == torch.float32
    np.testing.assert_array_equal(got.xs.numpy(), want.xs)
    # log_likelihood: float64 log-densities, a tensor for a tensor (float32 state computed in float64)
    x = DATA.sample(8, rng=4)
    want = ds.log_likelihood(VP, DATA, x.astype(np.float32), steps=20)
    got = ds.log_likelihood(VP, DATA, torch.from_numpy(x).float().requires_grad_(True), steps=20)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    np.testing.assert_array_equal(got.numpy(), want)
    # perturb: an exact x_t | x_0, one time per row as a tensor too
    t = torch.linspace(0.1, 0.9, 8, dtype=torch.float64, requires_grad=True)
    got = VP.perturb(torch.from_numpy(X[:8]).float().requires_grad_(True), t, rng=3)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32 and not got.requires_grad
    np.testing.assert_array_equal(got.numpy(), VP.perturb(X[:8].astype(np.float32), t.detach().numpy(), rng=3))
    assert repr(ds.forward(VP, torch.from_numpy(X[:8]), 2)).startswith("Trajectory(x.shape=(8, 2), ")
    # a noise array as a tensor
    z = np.random.default_rng(0).standard_normal((5, 8, 2))
    np.testing.assert_array_equal(ds.forward(VP, X[:8], 5, noise=torch.from_numpy(z)).x,
                                  ds.forward(VP, X[:8], 5, noise=z).x)
    np.testing.assert_array_equal(ds.forward(VP, X[:8], 5, noise=torch.from_numpy(z).half()).x,
                                  ds.forward(VP, X[:8], 5, noise=z.astype(np.float16)).x)
    # the analysis helpers take tensors (with grad too) and compute in NumPy
    xt = torch.from_numpy(X[:8]).requires_grad_(True)
    a = ds.analysis.strong_error(VP, xt, [2, 4, 8], rng=1)
    b = ds.analysis.strong_error(VP, X[:8], [2, 4, 8], rng=1)
    np.testing.assert_array_equal(a.errors, b.errors)
    assert ds.analysis.moment_errors(xt, 0.0, 1.0)["mean_error"].tolist() == \
        ds.analysis.moment_errors(X[:8], 0.0, 1.0)["mean_error"].tolist()
    assert (ds.analysis.sliced_wasserstein(xt, xt + 1, rng=0).value
            == ds.analysis.sliced_wasserstein(X[:8], X[:8] + 1, rng=0).value)
    assert ds.analysis.wasserstein_1d(xt[:, 0], xt[:, 1]).value == ds.analysis.wasserstein_1d(X[:8, 0], X[:8, 1]).value
