"""The documentation is self-contained: every document the code, tests, README
and docs refer to exists in the repository.

Derivations are cited as "derivation NNN" (docs/derivations/NNN-*.md) and the
grid, noise and dtype conventions as docs/conventions.md; references to
design notes or derivation texts kept outside the repository are defects,
because a reader of the package cannot follow them.
"""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Built from pieces so that this file does not match itself.
OUTSIDE = re.compile("|".join([
    r"\b" + "DES" + r"IGN\b",
    r"\.\./shared",
    "seeds" + "/",
    r"\b[Ss]eeds? " + r"\d{3}",
]))


def _sources():
    patterns = ["diffsde/*.py", "csrc/*.c", "csrc/*.h", "tests/**/*.py", "benchmarks/*.py",
                "tools/*", "README.md", "docs/*.md", "docs/derivations/*.md", "docs/conf.py",
                "notebooks/*.ipynb"]
    files = sorted({p for pattern in patterns for p in ROOT.glob(pattern) if p.is_file()})
    assert len(files) > 40, files  # the globs found the tree
    return files


def test_no_reference_to_documents_outside_the_repository():
    hits = []
    for path in _sources():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "references to documents outside the repository:\n" + "\n".join(hits)


def test_every_cited_derivation_and_docs_page_exists():
    pages = {p.name[:3]: p for p in (ROOT / "docs" / "derivations").glob("[0-9][0-9][0-9]-*.md")}
    assert sorted(pages) == ["000", "001", "002", "003", "004"]
    missing = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        for number in re.findall(r"[Dd]erivations? (\d{3})", text):
            if number not in pages:
                missing.append(f"{path.relative_to(ROOT)}: derivation {number}")
        for target in re.findall(r"\bdocs/[\w./-]+\.(?:md|png)", text):
            if not (ROOT / target).exists():
                missing.append(f"{path.relative_to(ROOT)}: {target}")
    assert not missing, "cited but missing:\n" + "\n".join(missing)


@pytest.mark.parametrize("number", ["000", "001", "002", "003", "004"])
def test_each_derivation_page_names_its_slips_tests_and_notebook(number):
    """Each page lists the original's slips with the tests that measure them:
    every test name it cites exists in tests/derivations/test_seed_NNN.py, and
    the notebook it points to exists."""
    page = next((ROOT / "docs" / "derivations").glob(f"{number}-*.md")).read_text(encoding="utf-8")
    assert "## Where the original is loose" in page
    tests = (ROOT / "tests" / "derivations" / f"test_seed_{number}.py").read_text(encoding="utf-8")
    cited = set(re.findall(r"`(test_\w+)`", page))
    assert cited, f"derivation {number} cites no test"
    defined = set(re.findall(r"^def (test_\w+)", tests, flags=re.M))
    assert cited <= defined, sorted(cited - defined)
    notebooks = re.findall(r"\.\./notebooks/(\w+)>", page)
    assert notebooks and all((ROOT / "notebooks" / f"{n}.ipynb").exists() for n in notebooks)


def test_the_notebooks_are_checked_too():
    """The notebooks cite derivation pages: they were left out of the checks."""
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert len(notebooks) >= 6
    assert set(notebooks) <= set(_sources())


#: The README's two commands, run from the root of a clone.
INSTALL_COMMANDS = ['pip install -e ".[examples]" && python -m diffsde',
                    'pip install -e ".[test]" && pytest --durations=20']


def _install_commands(path):
    """The lines of a file's bash blocks that install and then run."""
    text = path.read_text(encoding="utf-8")
    blocks = re.findall(r"^```bash\n(.*?)^```", text, flags=re.M | re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("pip install") and "&&" in line]


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_the_install_commands_are_the_same_everywhere(page):
    """docs/index.md said `pip install ".[examples]"` while the README says
    `pip install -e ...`: from a clone's root only the editable install
    imports the compiled package."""
    assert _install_commands(ROOT / page) == INSTALL_COMMANDS


def test_the_readme_lists_every_extra_and_the_build_tools():
    """Every extra of pyproject.toml (but the umbrella "all") has a row in the
    README's build section, and the section names the clang check (with the
    OpenMP runtime clang needs) and the docs build."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Building from source"):]
    rows = set(re.findall(r"^\| `([\w-]+)` \|", section, flags=re.M))
    assert rows == set(extras) - {"all"}
    for needed in ("tools/clang_check.sh", "libomp-dev", "tools/build_docs.sh"):
        assert needed in section, needed
    for tool in re.findall(r"\btools/[\w.]+\.sh\b", readme):
        assert (ROOT / tool).exists(), tool
