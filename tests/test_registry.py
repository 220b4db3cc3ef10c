"""The method registry (issue 16): one record per method, looked up by
capability; the docs, README, CLI and docstrings agree with the records;
``ds.methods.table`` is the table ``reverse`` runs; a user's own method."""
import re
from pathlib import Path

import numpy as np
import pytest

import diffsde as ds
from diffsde.__main__ import PROCESSES as CLI_PROCESSES, SAMPLERS, _parser

from conftest import GAUSS_SCORE as SCORE, VE, VP
from diffsde._steptable import STREAM_EXTRA

ROOT = Path(__file__).resolve().parents[1]
SUB = ds.SubVPSDE()
#: VP by hand: VPSDE's own m and s, no chain capability.
VP_BY_HAND = ds.AffineSDE(lambda t: np.exp(-0.5 * VP.integrated_beta(t)),
                          lambda t: np.sqrt(-np.expm1(-VP.integrated_beta(t))), name="vp-by-hand")
PROCESSES = {"VPSDE": VP, "VESDE": VE, "SubVPSDE": SUB, "EDM": ds.EDM(), "RectifiedFlow": ds.RectifiedFlow(),
             "AffineSDE": VP_BY_HAND, "DDPM": ds.DDPM.from_sde(VP, 12, rule="exact"),
             "SMLD": ds.SMLD.from_sde(VE, 12)}
#: Options with a value other than "not given", for every option a record has.
#: Adaptive methods choose their steps while they run: no fixed table
#: (tests/test_rk45.py covers them).
ADAPTIVE = {"rk45"}
GIVEN = {"alpha": 0.5, "variance": "posterior", "eta": 0.5, "last_step_noise": True, "snr": 0.2,
         "n_corrector_steps": 2, "corrector_at_start": False, "s_churn": 0.5, "s_tmin": 0.1, "s_tmax": 10.0,
         "s_noise": 0.9, "order": 2, "r": 0.4, "solver_type": "heun", "variant": "bh1", "warmup": "ab"}
#: Options given with another: churn from the top of the grid would need a
#: sigma above the process's sigma(T), so s_churn comes with s_tmax.
TOGETHER = {"s_churn": {"s_churn": 0.5, "s_tmax": 10.0}}
#: The k-diffusion samplers, on every process after the SDE methods.
K_SAMPLERS = ("euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2s_ancestral",
              "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde")


def steps_of(process):
    return None if "chain" in process.capabilities else 12


# ---- capabilities and the lists of methods -----------------------------------------

def test_capabilities_say_what_each_process_offers():
    caps = {name: set(p.capabilities) for name, p in PROCESSES.items()}
    assert caps == {"VPSDE": {"affine", "ddpm_chain"}, "VESDE": {"affine", "smld_chain"}, "SubVPSDE": {"affine"},
                    "EDM": {"affine"}, "RectifiedFlow": {"affine"}, "AffineSDE": {"affine"},
                    "DDPM": {"affine", "chain", "ddpm_chain"}, "SMLD": {"affine", "chain", "smld_chain"}}


def test_available_lists_the_default_first_then_the_processs_own_kind():
    """The lists the package has always shown, now derived from the records."""
    sde = ("em", "ode_heun", "rk45") + K_SAMPLERS + ("dpm_solver", "unipc", "plms")
    want = {"VPSDE": sde + ("reverse_diffusion", "ancestral", "ddim"),
            "VESDE": sde + ("reverse_diffusion", "ancestral", "ddim"),
            "DDPM": ("ancestral", "reverse_diffusion", "ddim") + sde,
            "SMLD": ("ancestral", "reverse_diffusion", "ddim") + sde}
    for name, process in PROCESSES.items():
        assert ds.methods.available(process) == want.get(name, sde + ("ddim",)), name
        chain = "chain" in process.capabilities
        assert ds.methods.available(process, "forward") == (("chain", "exact", "em") if chain else ("em", "exact"))
        assert ds.methods.available(process, "corrector") == ("langevin",)


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_a_method_is_available_exactly_where_a_capability_it_needs_is(name):
    process = PROCESSES[name]
    for rec in ds.methods.records("reverse"):
        assert (rec.name in ds.methods.available(process)) == bool(set(rec.requires) & process.capabilities)
        if rec.name not in ds.methods.available(process):
            with pytest.raises(ValueError, match=f"method '{rec.name}' is not available for {type(process).__name__} "
                                                 f"in reverse.*; valid: {', '.join(ds.methods.available(process))}$"):
                ds.reverse(process, SCORE, np.zeros(3), steps_of(process), method=rec.name)


# ---- the table is the run --------------------------------------------------------------

def _cases():
    for name, process in PROCESSES.items():
        for method in ds.methods.available(process):
            if method in ADAPTIVE:
                continue
            rec = ds.methods.get(method)
            for opt in (None,) + tuple(o.name for o in rec.options
                                       if not o.requires or set(o.requires) & process.capabilities):
                yield pytest.param(name, method, {} if opt is None else TOGETHER.get(opt, {opt: GIVEN[opt]}),
                                   id=f"{name}-{method}-{opt or 'defaults'}")
        yield pytest.param(name, ds.methods.available(process)[0], {"corrector": "langevin", "n_corrector_steps": 2},
                           id=f"{name}-langevin")


@pytest.mark.parametrize("name,method,options", list(_cases()))
def test_methods_table_is_the_table_reverse_runs(name, method, options):
    """run_steps on ds.methods.table gives reverse's output bit for bit, for
    every method available on every kind of process, with each option."""
    process = PROCESSES[name]
    score = SCORE if name != "RectifiedFlow" else (lambda x, t: -x)
    x = np.linspace(-1.0, 1.0, 8)
    steps = steps_of(process)
    table = ds.methods.table(process, method, steps, **options)
    run = ds.reverse(process, score, x, steps, method=method, rng=3, **options)
    again = ds.run_steps(x, table, score=score, rng=3)
    np.testing.assert_array_equal(again.x, run.x)
    assert table.nfe == run.nfe


@pytest.mark.parametrize("rec", ds.methods.records("reverse"), ids=lambda r: r.name)
def test_records_state_their_nfe_noise_and_streams(rec):
    """nfe_per_step is the most score rows of a step; a method deterministic
    by its record draws no noise with its default options; noise rows use
    the record's streams."""
    for name, process in PROCESSES.items():
        if rec.name not in ds.methods.available(process) or rec.name in ADAPTIVE:
            continue
        table = ds.methods.table(process, rec.name, steps_of(process))
        per_step = np.bincount(table.step, weights=table.needs_score)
        assert per_step.max() == rec.nfe_per_step, name
        assert (table.n_noise_intervals == 0) == rec.deterministic, name
        assert set(table.stream[table.needs_noise]) <= set(rec.streams), name


def test_the_corrector_record_draws_sub_step_m_from_stream_2_plus_m():
    rec = ds.methods.get("langevin", "corrector")
    table = ds.methods.table(VP, "em", 6, corrector="langevin", n_corrector_steps=3)
    lang = table.kind == ds.StepTable.ROW_KINDS["langevin"]
    noise = np.flatnonzero(lang) - 1  # each langevin row follows its noise row
    assert rec.streams == (2,) and set(table.stream[noise]) == {2, 3, 4}
    assert np.bincount(table.step, weights=table.needs_score).max() == rec.nfe_per_step * 3 + 1


# ---- options -------------------------------------------------------------------------

def _misplaced():
    for rec in ds.methods.records("reverse"):
        process = VP if "ddpm_chain" in rec.requires else SUB
        taken = {o.name for o in rec.options}
        for opt in ("alpha", "variance", "eta", "last_step_noise"):
            if opt not in taken:
                yield pytest.param(rec.name, process, opt, id=f"{rec.name}-{opt}")


@pytest.mark.parametrize("method,process,option", list(_misplaced()))
def test_an_option_a_method_does_not_take_raises_naming_method_and_process(method, process, option):
    takers = " or ".join(repr(r.name) for r in ds.methods.records("reverse") if r.option(option))
    value = GIVEN[option]
    pattern = (rf"^{option}={re.escape(repr(value))} applies to method={re.escape(takers)}( on DDPM or VPSDE)? "
               rf"only.*; got method='{method}' on {type(process).__name__}$")
    with pytest.raises(ValueError, match=pattern):
        ds.reverse(process, SCORE, np.zeros(3), 4, method=method, **{option: value})
    with pytest.raises(ValueError, match=f"got method='{method}'"):
        ds.methods.table(process, method, 4, **{option: value})


def test_options_at_their_unset_value_are_accepted_by_every_method():
    """reverse's own defaults (alpha=1, variance='beta', eta=None (each
    method's own), last_step_noise=False) reach every method."""
    for method in [m for m in ds.methods.available(VP) if m not in ADAPTIVE]:
        np.testing.assert_array_equal(
            ds.reverse(VP, SCORE, np.zeros(3), 4, method=method, alpha=1.0, variance="beta", eta=None,
                       last_step_noise=False, rng=1).x,
            ds.reverse(VP, SCORE, np.zeros(3), 4, method=method, rng=1).x)


# ---- the view the methods see -----------------------------------------------------------

def test_a_vpsde_runs_its_chain_methods_on_the_exact_ddpm_chain_of_the_grid():
    chain = ds.DDPM.from_sde(VP, 16, rule="exact")
    view = ds.methods.view(VP, "ancestral", 16)
    own = chain.grid_view()
    np.testing.assert_allclose(view.log_abar, own.log_abar, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(view.sd, own.sd, rtol=1e-12)
    # the SDE methods see the SDE's own marginals, the chain's log abar from B(t)
    sde_view = ds.methods.view(VP, "em", 16)
    np.testing.assert_array_equal(sde_view.sd, VP.marginal_coefficients(sde_view.t)[1])
    np.testing.assert_array_equal(sde_view.log_abar, -VP.integrated_beta(sde_view.t))


def test_chain_views_carry_the_chains_public_columns():
    ddpm, smld = PROCESSES["DDPM"], PROCESSES["SMLD"]
    view = ddpm.grid_view()
    np.testing.assert_array_equal(view.log_abar, np.r_[0.0, np.cumsum(np.log1p(-ddpm.betas))])
    np.testing.assert_array_equal(view.t, ddpm.t)
    assert view.sigma2 is None and view.sde.T == ddpm.T
    view = smld.grid_view()
    np.testing.assert_array_equal(view.sigma2, np.r_[smld.sigma0, smld.sigmas] ** 2)
    np.testing.assert_allclose(view.sd ** 2, view.sigma2 - smld.sigma0**2, rtol=1e-12)
    assert not ddpm.log_alpha_bar.flags.writeable and not smld.sigma_levels.flags.writeable
    with pytest.raises(ValueError, match="own grid"):
        ddpm.grid_view(np.linspace(0, 1, 5))


def test_forward_em_on_a_chain_lags_one_interval_and_reverse_em_does_not():
    """The documented convention (docs/methods.md): chain.as_sde() has
    beta(t) = N beta_i / T on (t_{i-1}, t_i], so forward EM's step from t_k
    sees beta_k (the interval before; beta_1 at t_0) where the chain's step
    k + 1 uses beta_{k+1}; reverse EM's step from t_k crosses (t_{k-1}, t_k]
    and sees its own beta_k."""
    chain = ds.DDPM.linear(10)
    h = chain.T / chain.N
    fwd = ds.methods.table(chain, "em", direction="forward").affine_coefficients()
    np.testing.assert_allclose(fwd["c"]**2, np.r_[chain.betas[0], chain.betas[:-1]], rtol=1e-12)
    rev = ds.methods.table(chain, "em").affine_coefficients()
    k = np.arange(chain.N, 0, -1)
    np.testing.assert_allclose(rev["c"]**2, chain.betas[k - 1], rtol=1e-12)
    np.testing.assert_allclose(rev["a"], 1 + 0.5 * chain.betas[k - 1], rtol=1e-12)
    assert h == 0.1


def test_a_vp_built_by_hand_gets_the_sde_methods_and_a_corrector_with_r_equal_one():
    """Without the chain capability there is no beta_k: em and ode_heun
    match VPSDE's to the accuracy of the numerical derivatives, the
    corrector's step factor r is 1 instead of VPSDE's 1 - beta_k."""
    assert ds.methods.available(VP_BY_HAND) == ("em", "ode_heun", "rk45") + K_SAMPLERS + ("dpm_solver", "unipc", "plms", "ddim")
    for method in ("em", "ode_heun"):
        mine, theirs = ds.methods.table(VP_BY_HAND, method, 50), ds.methods.table(VP, method, 50)
        np.testing.assert_array_equal(mine.kind, theirs.kind)
        np.testing.assert_allclose(mine.w, theirs.w, rtol=1e-9)
    mine = ds.methods.table(VP_BY_HAND, "em", 50, corrector="langevin")
    theirs = ds.methods.table(VP, "em", 50, corrector="langevin")
    lang = theirs.kind == ds.StepTable.ROW_KINDS["langevin"]
    np.testing.assert_array_equal(mine.w[lang, 0], 1.0)
    k = np.arange(50, 0, -1)
    t = np.linspace(0, 1, 51)
    np.testing.assert_allclose(theirs.w[lang, 0], np.exp(-np.diff(VP.integrated_beta(t)))[k - 1], rtol=1e-12)


# ---- a user's own method ---------------------------------------------------------------

def ode_euler(view, gamma=1.0):
    """Euler on the probability-flow ODE with the score term scaled by gamma."""
    k = view.run_order()
    h = view.t[k] - view.t[k - 1]
    f = view.sde.drift_coefficient(view.t[k])
    g2 = view.sde.diffusion(view.t[k]) ** 2
    return view.affine(k, 1 - h * f, gamma * 0.5 * g2 * h, 0.0)


def _gamma(value):
    if not isinstance(value, float):
        raise TypeError(f"gamma must be a float; got {value!r}")
    return value


@pytest.fixture
def user_method():
    rec = ds.methods.register(ds.methods.Method(
        "ode_euler", "reverse", ode_euler, requires=("affine",), kind="ode", deterministic=True, nfe_per_step=1,
        summary="Euler on the probability-flow ODE", paper="Song et al. 2021", order=1.0, streams=(),
        options=(ds.methods.Option("gamma", 1.0, _gamma, "score weight"),)))
    yield rec
    ds.methods.unregister("ode_euler")


def test_a_registered_method_runs_everywhere_its_capability_exists(user_method):
    for name, process in PROCESSES.items():
        names = ds.methods.available(process)
        # after the ODE/SDE methods on an SDE, last on a chain (registration order within each group)
        kinds = [ds.methods.get(m).kind == "chain" for m in names]
        assert kinds == sorted(kinds, reverse="chain" in process.capabilities), name
        ode = [i for i, m in enumerate(names) if ds.methods.get(m).kind != "chain"]
        assert names[-1] == "ode_euler" if "chain" in process.capabilities else \
            names[names.index("ode_euler") - 1] == "plms", name
    x = np.linspace(-1, 1, 6)
    for process in (VP, ds.EDM(), PROCESSES["DDPM"]):
        steps = steps_of(process)
        mine = ds.reverse(process, SCORE, x, steps, method="ode_euler", rng=1)
        em0 = ds.reverse(process, SCORE, x, steps, method="em", alpha=0.0, rng=1)
        np.testing.assert_array_equal(mine.x, em0.x)
    half = ds.reverse(VP, SCORE, x, 8, method="ode_euler", gamma=0.5)
    np.testing.assert_array_equal(half.x, ds.run_steps(x, ds.methods.table(VP, "ode_euler", 8, gamma=0.5),
                                                         score=SCORE).x)
    with pytest.raises(TypeError, match="gamma must be a float; got 1"):
        ds.reverse(VP, SCORE, x, 8, method="ode_euler", gamma=1)
    with pytest.raises(ValueError, match="^gamma=0.5 applies to method='ode_euler' only; got method='em' on VPSDE$"):
        ds.reverse(VP, SCORE, x, 8, gamma=0.5)
    with pytest.raises(ValueError, match="^alpha=0.5 applies to method='em' only .*got method='ode_euler' on VPSDE$"):
        ds.reverse(VP, SCORE, x, 8, method="ode_euler", alpha=0.5)


def test_unregister_removes_the_method(user_method):
    ds.methods.unregister("ode_euler")
    assert "ode_euler" not in ds.methods.available(VP)
    with pytest.raises(ValueError, match="method 'ode_euler' is not available"):
        ds.reverse(VP, SCORE, np.zeros(2), 4, method="ode_euler")
    ds.methods.register(user_method)  # for the fixture's teardown


# ---- docs, README, CLI and docstrings agree with the records -------------------------------

def records_table():
    """The registry table of docs/methods.md, rendered from the records."""
    def num(value):
        return "—" if value is None else f"{value:g}"

    rows = ["| method | direction | needs | kind | deterministic | order (strong / weak; ODE) | nfe per step "
            "| noise streams | options |", "|---|---|---|---|---|---|---|---|---|"]
    for rec in ds.methods.records():
        order = num(rec.order) if rec.order is not None else f"{num(rec.strong_order)} / {num(rec.weak_order)}"
        order = "exact" if rec.kind == "exact" else "—" if order == "— / —" else order
        streams = ", ".join(str(s) if s < STREAM_EXTRA else f"extra + {s - STREAM_EXTRA}"
                            for s in rec.streams) or "none"
        if rec.direction == "corrector":
            streams = "2 + m (sub-step m)"
        options = ", ".join(f"`{o.name}={o.default!r}`" for o in rec.options) or ""
        rows.append(f"| `{rec.name}` | {rec.direction} | {' or '.join(rec.requires)} | {rec.kind} | "
                    f"{'yes' if rec.deterministic else 'no'} | {order} | {rec.nfe_per_step} | {streams} | {options} |")
    return "\n".join(rows)


def test_docs_methods_holds_the_registry_table():
    """Adding a record without its row in docs/methods.md fails here (the
    table is rendered by records_table(); paste its output)."""
    assert records_table() in (ROOT / "docs" / "methods.md").read_text()


def _doc_rows(doc):
    """{process label: [method names]} from a docstring's method table."""
    rows, current = {}, None
    for line in doc.splitlines():
        m = re.match(r"\s{4}(\S[^`]*?)\s{2,}(``.*)$", line)
        if m:
            current = m.group(1).strip()
            rows[current] = re.findall(r"``(\w+)``", m.group(2))
        elif current and re.match(r"\s{20,}``", line):
            rows[current] += re.findall(r"``(\w+)``", line)
        elif not line.strip() or line.strip().startswith("="):
            current = None
    return rows


def test_reverse_and_forward_docstring_tables_list_what_is_available():
    rows = _doc_rows(ds.reverse.__doc__)
    for label, process in (("VPSDE", VP), ("VESDE", VE), ("SubVPSDE", SUB), ("others", ds.EDM()),
                           ("DDPM", PROCESSES["DDPM"]), ("SMLD", PROCESSES["SMLD"])):
        assert tuple(rows[label]) == ds.methods.available(process), label
    rows = _doc_rows(ds.forward.__doc__)
    assert tuple(rows["any AffineSDE"]) == ds.methods.available(VP, "forward")
    assert tuple(rows["DDPM, SMLD"]) == ds.methods.available(PROCESSES["DDPM"], "forward")


def test_docs_process_table_lists_what_is_available():
    text = (ROOT / "docs" / "methods.md").read_text()
    for label, process in (("VPSDE", VP), ("VESDE", VE), ("SubVPSDE", SUB), ("DDPM", PROCESSES["DDPM"]),
                           ("SMLD", PROCESSES["SMLD"]), ("EDM", ds.EDM())):
        row = re.search(rf"^\| `{label}`[^|]*\| (.*?) \| (.*?) \|$", text, re.M)
        assert row, label
        assert tuple(re.findall(r"`(\w+)`", row.group(1))) == ds.methods.available(process, "forward"), label
        assert tuple(re.findall(r"`(\w+)`", row.group(2))) == ds.methods.available(process), label


def test_readme_table_has_a_row_for_every_record():
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## How the methods map to the derivations"):text.index("## Performance")]
    for rec in ds.methods.records():
        key = "corrector" if rec.direction == "corrector" else "method"
        assert f'{key}="{rec.name}"' in table, rec.name
    assert "diffsde/methods.py" not in text


def test_cli_lists_come_from_the_registry():
    sample = _parser()._subparsers._group_actions[0].choices["sample"]
    help_text = next(a.help for a in sample._actions if "--method" in a.option_strings)
    for name, make in CLI_PROCESSES.items():
        assert f"{name} ({', '.join(ds.methods.available(make()))})" in help_text
    for name, samplers in SAMPLERS.items():
        assert {m for m, _ in samplers} == set(ds.methods.available(CLI_PROCESSES[name]())), name


def test_the_docs_example_of_a_users_method_runs():
    text = (ROOT / "docs" / "methods.md").read_text()
    code = re.search(r"### Your own method.*?```python\n(.*?)```", text, re.S).group(1)
    space = {"score": SCORE, "x": np.linspace(-1, 1, 5)}
    try:
        exec(code, space)
        assert ds.methods.available(ds.EDM()) == ("em", "ode_heun", "rk45") + K_SAMPLERS + ("dpm_solver", "unipc", "plms", "ode_euler", "ddim")
        assert space["tr"].nfe == 100
    finally:
        if "ode_euler" in [r.name for r in ds.methods.records("reverse")]:
            ds.methods.unregister("ode_euler")
