"""Tests of how the C core is built and loaded: per-instruction-set kernels
that really use their instruction set under gcc and clang, the SIMD path
chosen once at import, and ``import diffsde`` with NumPy as the only
dependency (optional features name the extra that installs them)."""
import ast
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import diffsde as ds
from diffsde import _core

ROOT = Path(__file__).resolve().parents[1]
X86_64 = platform.machine().lower() in ("x86_64", "amd64")
#: Where the package the tests import lives, for subprocesses.
PACKAGE_PARENT = os.path.dirname(os.path.dirname(ds.__file__))
OPTIONAL = ("scipy", "matplotlib", "tqdm", "torch", "jax")


def run_python(code, tmp_path, **env):
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": PACKAGE_PARENT, **env})


# ---- the SIMD path is chosen at import -----------------------------------------

def test_the_simd_path_is_resolved_at_import_before_any_run(tmp_path):
    code = ("import diffsde as ds\nfrom diffsde import _core\n"
            "print(_core.simd_default(), ds.get_simd_path(), ds.simd_paths()[-1])")
    env = {k: v for k, v in os.environ.items() if k != "DIFFSDE_SIMD"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={**env, "PYTHONPATH": PACKAGE_PARENT}).stdout.split()
    default, current, best = out
    assert default == current == best


@pytest.mark.parametrize("path", ds.simd_paths())
def test_diffsde_simd_overrides_the_path_chosen_at_import(tmp_path, path):
    code = ("import diffsde as ds\nfrom diffsde import _core\n"
            "print(_core.simd_default(), ds.get_simd_path(), ds.simd_paths()[-1])")
    out = run_python(code, tmp_path, DIFFSDE_SIMD=path)
    assert out.returncode == 0, out.stderr
    default, current, best = out.stdout.split()
    assert (default, current) == (best, path)


# ---- each kernel file really uses its instruction set --------------------------

def isa_flags():
    """setup.py's ISA_FLAGS, read without running setup()."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "ISA_FLAGS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py defines no ISA_FLAGS")


def compilers():
    names = [(sysconfig.get_config_var("CC") or "cc").split()[0], "gcc", "clang"]
    found = {}
    for name in names:
        path = shutil.which(name)
        if path:
            found.setdefault(os.path.realpath(path), name)
    return sorted(found.values())


@pytest.mark.skipif(not X86_64, reason="the AVX kernels exist on x86-64 only")
@pytest.mark.skipif(not (ROOT / "csrc").is_dir() or not (ROOT / "setup.py").is_file(),
                    reason="needs the source tree")
@pytest.mark.parametrize("source", ["isa_avx2.c", "isa_avx512.c"])
@pytest.mark.parametrize("cc", compilers())
def test_a_kernel_file_compiled_without_its_instruction_set_fails_to_build(cc, source):
    # clang ignores "#pragma GCC target": a file relying on it would build
    # silently into baseline code under an AVX name
    base = [cc, "-std=c99", "-O3", "-ffp-contract=off", "-fsyntax-only", "-I", str(ROOT / "csrc"),
            str(ROOT / "csrc" / source)]
    bare = subprocess.run(base, capture_output=True, text=True)
    assert bare.returncode != 0
    assert f"{source} must be compiled with" in bare.stderr
    flagged = subprocess.run(base + isa_flags()[source], capture_output=True, text=True)
    assert flagged.returncode == 0, flagged.stderr


def disassembly_by_function(path):
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], capture_output=True, text=True,
                          check=True).stdout
    functions, name = {}, None
    for line in text.splitlines():
        header = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
        if header:
            name = header.group(1)
            functions[name] = []
        elif name is not None and line.strip():
            functions[name].append(line)
    return functions


@pytest.mark.skipif(not X86_64, reason="the AVX kernels exist on x86-64 only")
@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs objdump (binutils)")
def test_the_loaded_kernels_use_ymm_and_zmm_registers():
    functions = disassembly_by_function(_core.__file__)
    # sanitizer builds (tools/sanitize.sh) are -O1, where no loop is
    # vectorized: only the VEX encoding shows the instruction set there
    sanitized = any(name.startswith(("__asan_", "__ubsan_")) for name in functions)
    for isa, register in (("avx2", "%ymm"), ("avx512", "%zmm")):
        for kernel in ("dsde_normal_blocks_f64", "dsde_normal_blocks_f32", "dsde_mixture_tile"):
            name = f"{kernel}_{isa}"
            assert name in functions, f"{name} is not in {_core.__file__}"
            mnemonics = [line.split("\t")[1].split()[0] for line in functions[name] if line.count("\t") >= 1]
            assert any(m.startswith("v") for m in mnemonics), f"{name} has no AVX instruction"
            used = sum(register in line for line in functions[name])
            assert sanitized or used > 0, f"{name} has no {register} instruction: compiled without {isa}"
    # and the portable part of the module stays portable
    for name in ("dsde_simd_supported", "dsde_simd_init", "PyInit__core"):
        assert not any("%zmm" in line for line in functions.get(name, []))


# ---- import diffsde needs NumPy only -------------------------------------------

BLOCK_OPTIONAL = f"""
import sys
BLOCKED = {OPTIONAL!r}

class Blocker:
    # what an environment without these packages looks like to import
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Blocker())
"""

IMPORT_EVERYTHING = """
import importlib, pkgutil
import diffsde
names = sorted(m.name for m in pkgutil.iter_modules(diffsde.__path__))
for name in names:
    importlib.import_module("diffsde." + name)
print(len(names))
"""


def test_importing_every_module_imports_no_optional_package(tmp_path):
    code = "import sys\n" + IMPORT_EVERYTHING + f"print(sorted(m for m in {OPTIONAL!r} if m in sys.modules))"
    out = run_python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    count, loaded = out.stdout.splitlines()
    assert int(count) >= 15
    assert loaded == "[]"


def test_without_scipy_matplotlib_and_tqdm_optional_features_name_their_extra(tmp_path):
    code = BLOCK_OPTIONAL + IMPORT_EVERYTHING + """
import numpy as np
import diffsde as ds
vp = ds.VPSDE()
x = np.linspace(-3, 3, 61)
try:
    ds.fokker_planck.solve_forward(vp, np.exp(-x**2), x, steps=3)
except ImportError as exc:
    print("fokker_planck:", exc.name, exc)
try:
    ds.plot.marginals(ds.forward(vp, np.zeros((10, 1)), 4, rng=0, save_every=1), [0.5])
except ImportError as exc:
    print("plot:", exc.name, exc)
# the progress bar falls back to text without tqdm
r = ds.forward(vp, np.zeros((10, 1)), 4, rng=0, progress=True)
print("progress:", r.x.shape)
"""
    out = run_python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert int(lines[0]) >= 15
    fp = next(line for line in lines if line.startswith("fokker_planck:"))
    assert fp.startswith("fokker_planck: scipy ") and 'pip install "diffsde[fokker-planck]"' in fp
    pl = next(line for line in lines if line.startswith("plot:"))
    assert pl.startswith("plot: matplotlib ") and 'pip install "diffsde[plot]"' in pl
    assert "progress: (10, 1)" in lines
    assert "4/4 steps" in out.stderr


def test_the_extras_named_in_messages_exist():
    tomllib = pytest.importorskip("tomllib")
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("pyproject.toml is only in a source checkout; this run uses tests without one")
    from diffsde._optional import EXTRAS

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for package, extra in EXTRAS.items():
        assert any(req.startswith(package) for req in extras[extra]), (package, extra)
