#!/usr/bin/env bash
# Build diffsde._core with clang and with gcc in scratch copies of the tree,
# check that each compiler put AVX2 (ymm) and AVX-512 (zmm) instructions in
# the per-ISA kernels, run the C-facing tests against the clang build, and
# require the two builds to give identical bits on every SIMD path.
#   tools/clang_check.sh [pytest args...]
# Installs clang and LLVM's OpenMP (Debian: apt-get, as root) when missing.
# Nothing in the working tree changes: the in-place _core stays as it was.
set -euo pipefail
start=$SECONDS
here="$(cd "$(dirname "$0")/.." && pwd)"
say() { echo "clang_check.sh: $*"; }

has_openmp() { echo '#include <omp.h>' | "$1" -fopenmp -E -x c - >/dev/null 2>&1; }
if ! command -v clang >/dev/null || ! has_openmp clang; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing clang and libomp-dev"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends clang libomp-dev >/dev/null
  else
    say "clang with OpenMP (omp.h) is missing and I cannot install it (not root, or no apt-get)" >&2
    exit 1
  fi
fi
for tool in gcc clang objdump; do
  command -v "$tool" >/dev/null || { say "$tool not found" >&2; exit 1; }
done
# The build requirements of pyproject.toml, which pip's isolated builds do
# not leave behind (Python >= 3.12 has no setuptools by default).
python -c "import setuptools, numpy" 2>/dev/null || python -m pip install -q "setuptools>=64" "numpy>=2"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
cd "$here"
git ls-files -z | xargs -0 -I{} cp -P --parents {} "$work/src"
# Untracked but not ignored files (work in progress) go too.
git ls-files -z --others --exclude-standard | xargs -0 -r -I{} cp -P --parents {} "$work/src"

# count PATTERN OBJECT: instructions in OBJECT's disassembly naming PATTERN.
count() { objdump -d --no-show-raw-insn "$2" | grep -c "$1" || true; }

for cc in gcc clang; do
  cp -a "$work/src" "$work/$cc"
  (cd "$work/$cc" && CC=$cc python setup.py -q build_ext --inplace >build.log 2>&1) \
    || { cat "$work/$cc/build.log"; say "the $cc build failed" >&2; exit 1; }
  objs="$(echo "$work/$cc"/build/temp*/csrc)"
  line="$cc:"
  for isa in baseline avx2 avx512; do
    ymm=$(count '%ymm' "$objs/isa_$isa.o")
    zmm=$(count '%zmm' "$objs/isa_$isa.o")
    line+=" isa_$isa.o ymm=$ymm zmm=$zmm;"
    if { [ "$isa" = avx2 ] && [ "$ymm" -eq 0 ]; } || { [ "$isa" = avx512 ] && [ "$zmm" -eq 0 ]; }; then
      say "$cc compiled isa_$isa.c without $isa instructions" >&2
      exit 1
    fi
  done
  say "$line"
  PYTHONPATH="$work/$cc" python -c "from diffsde import _core; print('clang_check.sh: $cc: OpenMP', _core.openmp(), '| SIMD paths', _core.simd_paths())"
done

# Bits: every path of one build, and the two builds, must agree.
(cd "$work/gcc" && PYTHONPATH="$work/gcc" python tools/simd_digest.py >"$work/gcc.json")
(cd "$work/clang" && PYTHONPATH="$work/clang" python tools/simd_digest.py >"$work/clang.json")
if ! cmp -s "$work/gcc.json" "$work/clang.json"; then
  diff "$work/gcc.json" "$work/clang.json" || true
  say "gcc and clang builds give different bits" >&2
  exit 1
fi
say "gcc and clang builds give identical bits on every SIMD path (tools/simd_digest.py)"

# The C-facing tests (tools/sanitize.sh's selection) against the clang build.
cd "$work/clang"
PYTHONPATH="$work/clang" python -m pytest -q -p no:cacheprovider \
  tests/test_build.py tests/test_engine.py tests/test_rng.py tests/test_interrupt.py tests/test_scores.py "$@"
say "clang build passed in $((SECONDS - start)) s"
