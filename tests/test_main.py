"""The python -m diffsde tour runs and reports sensible numbers."""
import re

from diffsde.__main__ import main


def test_tour_prints_the_merge_rate_and_every_sampler(capsys):
    assert main(["--n", "3000", "--steps", "100", "--no-plots"]) == 0
    out = capsys.readouterr().out
    slope = float(re.search(r"fitted slope (-?\d+\.\d+)", out).group(1))
    assert -1.3 < slope < -0.8
    for method in ("em", "ode_heun", "reverse_diffusion", "ancestral", "ddim"):
        assert f"\n   {method}" in out
    rows = re.findall(r"^   (\S.*?)\s+(\d\.\d{4})\s+(\d\.\d{4})\s+\d\.\d{4}\s+(\d+)", out, flags=re.M)
    assert len(rows) == 9
    for _, mean, var, _ in rows:
        assert abs(float(mean) - 2.0) < 0.1 and abs(float(var) - 0.25) < 0.08  # 5 SE at n = 3000 plus the 100-step bias
