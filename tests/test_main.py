"""python -m diffsde: the tour and its subcommands."""
import csv
import os
import re

import pytest

import diffsde as ds
from conftest import TOUR_STEPS
from diffsde.__main__ import main

#: The k-diffusion samplers, listed after the SDE methods.
K_SAMPLERS = ("euler, euler_ancestral, heun, dpm_2, dpm_2_ancestral, lms, dpmpp_2s_ancestral, dpmpp_sde, "
              "dpmpp_2m, dpmpp_2m_sde, dpmpp_3m_sde")


def read_csv(path):
    with open(path) as fh:
        return list(csv.reader(fh))


def test_tour_writes_tables_with_fitted_orders(tour_run):
    out = tour_run.out
    assert tour_run.code == 0
    rows = read_csv(out / "chain_convergence.csv")
    assert rows[0][:4] == ["pair", "rms N=32", "rms N=1024", "order"]
    for row in rows[1:]:
        assert 0.85 < float(row[3]) < 1.15  # DDPM -> VP and SMLD -> VE merge at order 1
    strong = read_csv(out / "strong_forward_vp.csv")
    assert strong[-1][0] == "order" and 0.85 < float(strong[-1][1]) < 1.15
    for process in ("vp", "ve"):
        samplers = read_csv(out / f"samplers_{process}.csv")
        assert len(samplers) > 8
        for row in samplers[1:]:
            if row[1] == str(TOUR_STEPS):
                # at the fine step count every method is (up to a small bias) one more draw of the
                # same-law distances: within 5 of their standard deviations above their median, the
                # standard deviation read off the 90% band as (high - low) / (2 * 1.645)
                low, high = (float(v) for v in row[4].strip("[]").split(","))
                assert float(row[2]) < float(row[3]) + 5 * (high - low) / (2 * 1.645)
    summary = (out / "summary.md").read_text()
    assert "order" in summary and "| em | 15 |" in summary
    # error against score evaluations: every registered sampler, exact on Gaussian data
    exact = read_csv(out / "error_vs_nfe_gaussian.csv")
    assert exact[0] == ["sampler", "kind", "steps", "nfe", "exact W2"]
    from diffsde import VPSDE, methods
    assert {row[0] for row in exact[1:]} >= {m for m in methods.available(VPSDE()) if not methods.get(m).adaptive}
    assert len(read_csv(out / "error_vs_nfe_mixture.csv")) > 1
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    for name in ("convergence", "samples_vp", "samples_ve", "error_vs_nfe"):
        assert os.path.getsize(out / f"{name}.png") > 10_000
    assert os.path.getsize(out / "flow.gif") > 10_000


def test_tour_sampler_tables_label_sliced_w2_and_state_a_test(tour_run):
    out, printed = tour_run.out, tour_run.printed
    assert tour_run.code == 0
    summary = (out / "summary.md").read_text()
    for process in ("vp", "ve"):
        rows = read_csv(out / f"samplers_{process}.csv")
        assert rows[0] == ["method", "steps", "sliced W2 to data (64 projections)", "same-law median",
                           "same-law 90% band", "p-value", "at the 95% level", "max abs mean error", "nfe", "seconds"]
        fixed = [row for row in rows[1:] if not row[0].startswith("rk45")]
        assert {row[1] for row in fixed} == {"15", str(TOUR_STEPS)}  # the coarse and the fine step counts
        assert len(rows) - 1 - len(fixed) == 1  # rk45 once: it ignores the step count
        for row in rows[1:]:
            if row[0].startswith("rk45"):  # adaptive: the steps it took, not the requested count
                accepted = int(re.fullmatch(r"adaptive, (\d+) accepted", row[1]).group(1))
                assert int(row[8]) >= 2 + 6 * accepted
        for row in rows[1:]:
            p = float(row[5])
            assert 1 / 40 <= p <= 1 and row[6] == ("consistent" if p > 0.05 else "distinguishable")
            low, high = (float(v) for v in row[4].strip("[]").split(","))
            assert low < float(row[3]) < high
    vp = {(row[0], row[1]): row for row in read_csv(out / "samplers_vp.csv")[1:]}
    # EM with alpha = 2 at 15 steps is far off (sliced W2 ~ 1.3 against a band below 0.3): beyond every same-law draw
    assert vp[("em, alpha=2.0", "15")][5] == "0.025" and vp[("em, alpha=2.0", "15")][6] == "distinguishable"
    for text in (printed, summary):
        assert "| sliced W2 to data (64 projections) |" in text and "| W2 to data |" not in text
        assert "39 further samples of the exact data law" in text
        assert "Each row is its own test at the 95% level" in text
        assert "not the W2 distance of the 2-D laws" in text


def test_converge_states_its_setting_and_why_reverse_em_on_two_modes_is_below_order_one(tmp_path, capsys):
    assert main(["converge", "--kind", "strong", "--direction", "reverse", "--process", "ve", "--paths", "1000",
                 "--quiet", "--no-plots", "--out", str(tmp_path / "b")]) == 0
    text = capsys.readouterr().out
    assert ("reverse VE, data bimodal_1d (1-D modes at -2 and +2 of std 0.5, equal weights), 1,000 paths with the "
            "exact score, from the exact marginal at T = 1 down to t_end = 0.01; N = 32..512 steps against 8192 "
            "steps on the same Brownian path") in text
    rows = read_csv(tmp_path / "b" / "strong_reverse_ve.csv")
    assert rows[0][3] == "paths in another mode than the reference"
    swapped = [float(r[3].rstrip("%")) for r in rows[1:-1]]
    assert swapped[0] > 2 and swapped == sorted(swapped, reverse=True)  # ~6.6% at N = 32, falling like 1/N
    assert float(rows[-1][1]) < 0.85 and "Why the order is below 1" in text
    # the same study with one Gaussian (a linear score): order 1, no note
    assert main(["converge", "--kind", "strong", "--direction", "reverse", "--process", "ve", "--paths", "1000",
                 "--data", "gaussian_1d", "--quiet", "--no-plots", "--out", str(tmp_path / "g")]) == 0
    text = capsys.readouterr().out
    rows = read_csv(tmp_path / "g" / "strong_reverse_ve.csv")
    assert rows[0] == ["N", "strong error", "std err"] and 0.9 < float(rows[-1][1]) < 1.1
    assert "data gaussian_1d (1-D N(0, 0.5^2), a linear score)" in text and "Why the order" not in text


def test_cli_tables_say_when_an_order_has_a_wide_interval_or_none(tmp_path, capsys):
    from diffsde.__main__ import _fit_notes
    from diffsde import analysis

    assert _fit_notes(analysis.OrderFit(1.0, (-0.69, 3.17), 1.0, 5), "x") == [
        "Warning (x): the 95% CI of the order, [-0.690, 3.170], is wide (half-width above 0.25): the errors do "
        "not follow one power law over these step counts."]
    assert _fit_notes(analysis.OrderFit(1.0, None, 1.0, 2), "x") == [
        "Note (x): two step counts, so no confidence interval for the order."]
    assert _fit_notes(analysis.OrderFit(1.0, (0.9, 1.1), 1.0, 5), "x") == []
    # 20 paths of a weak error: noisy levels, a wide interval, flagged in the table and in a note
    assert main(["converge", "--kind", "weak", "--direction", "reverse", "--paths", "20", "--quiet", "--no-plots",
                 "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert read_csv(tmp_path / "weak_reverse_vp.csv")[-1][2].endswith("(wide)")
    assert "Warning (weak order): the 95% CI of the order" in text


def test_sample_and_converge_subcommands(tmp_path):
    assert main(["sample", "--process", "ve", "--method", "ancestral", "--paths", "5000", "--steps", "100",
                 "--quiet", "--no-plots", "--out", str(tmp_path / "s")]) == 0
    assert read_csv(tmp_path / "s" / "samplers_ve.csv")[1][0] == "ancestral"
    assert main(["converge", "--kind", "weak", "--paths", "2000", "--quiet", "--no-plots",
                 "--out", str(tmp_path / "c")]) == 0
    assert read_csv(tmp_path / "c" / "weak_forward_vp.csv")[-1][0] == "order"


def test_bad_options_give_one_clear_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["sample", "--method", "bogus", "--quiet", "--out", str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["python -m diffsde sample: error: method 'bogus' is not available for VPSDE in reverse; "
                   f"valid: {', '.join(ds.methods.available(ds.VPSDE()))}"]
    with pytest.raises(SystemExit):
        main(["tour", "--paths", "1"])
    assert "--paths must be at least 2" in capsys.readouterr().err
