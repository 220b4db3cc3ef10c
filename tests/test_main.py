"""python -m diffsde: the tour and its subcommands."""
import csv
import os

import pytest

from diffsde.__main__ import main


def read_csv(path):
    with open(path) as fh:
        return list(csv.reader(fh))


def test_tour_writes_tables_with_fitted_orders(tmp_path, capsys):
    out = tmp_path / "tour"
    assert main(["tour", "--quick", "--quiet", "--out", str(out), "--steps", "200"]) == 0
    rows = read_csv(out / "chain_convergence.csv")
    assert rows[0][:4] == ["pair", "rms N=32", "rms N=1024", "order"]
    for row in rows[1:]:
        assert 0.85 < float(row[3]) < 1.15  # DDPM -> VP and SMLD -> VE merge at order 1
    strong = read_csv(out / "strong_forward_vp.csv")
    assert strong[-1][0] == "order" and 0.85 < float(strong[-1][1]) < 1.15
    for process in ("vp", "ve"):
        samplers = read_csv(out / f"samplers_{process}.csv")
        assert len(samplers) > 4
        for row in samplers[1:]:  # every method lands within twice the noise floor plus bias
            assert float(row[1]) < 3 * float(row[2])
    summary = (out / "summary.md").read_text()
    assert "order" in summary and "| em |" in summary
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    for name in ("convergence", "samples_vp", "samples_ve"):
        assert os.path.getsize(out / f"{name}.png") > 10_000


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
                   "valid: em, ode_heun, reverse_diffusion, ancestral, ddim"]
    with pytest.raises(SystemExit):
        main(["tour", "--paths", "1"])
    assert "--paths must be at least 2" in capsys.readouterr().err
