#!/usr/bin/env bash
# The same bits on x86-64 and aarch64: build the pure-C known-answer driver
# (tools/arm64/kat.c) against the C core's sources, with setup.py's flags,
#   - natively, with and without OpenMP, and run it on every SIMD path this
#     CPU has (x86-64: baseline, avx2, avx512);
#   - for aarch64 with Debian's cross compiler, with and without OpenMP, and
#     run it under qemu-user (the baseline path: NEON);
# and require every output to equal tools/arm64/expected.txt bit for bit.
#
#   tools/arm64_check.sh                compare every build with the fixtures
#   tools/arm64_check.sh --regenerate   first rewrite expected.txt from the
#                                       native build (x86-64 only; after a
#                                       deliberate change of the kernels'
#                                       numbers), then compare as above
# The inputs, tools/arm64/cases.txt, are rewritten by
#   PYTHONPATH=. python tools/arm64/make_cases.py
# (then --regenerate). Installs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross
# and qemu-user with apt-get when missing (as root, or with sudo); fails
# when it cannot. Nothing in the working tree changes but expected.txt on
# --regenerate.
set -euo pipefail
start=$SECONDS
here="$(cd "$(dirname "$0")/.." && pwd)"
kat="$here/tools/arm64"
say() { echo "arm64_check.sh: $*"; }
die() { say "$*" >&2; exit 1; }

regenerate=0
case "${1:-}" in
  "") ;;
  --regenerate) regenerate=1 ;;
  *) die "unknown argument '$1'; usage: tools/arm64_check.sh [--regenerate]" ;;
esac
[ "$(uname -m)" = x86_64 ] || die "the fixtures are made and checked from x86-64; this is $(uname -m)"

# ---- tools ------------------------------------------------------------------
need=()
command -v gcc >/dev/null || need+=(gcc)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo)
  else
    die "missing ${need[*]}, and I can install them only as root or with sudo"
  fi
  command -v apt-get >/dev/null || die "missing ${need[*]}, and there is no apt-get to install them"
  say "installing ${need[*]}"
  apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
  log="$(mktemp)"
  "${apt[@]}" update -qq >"$log" 2>&1 || { cat "$log" >&2; die "apt-get update failed"; }
  "${apt[@]}" install -y -qq --no-install-recommends "${need[@]}" >"$log" 2>&1 \
    || { cat "$log" >&2; die "apt-get install ${need[*]} failed"; }
  rm -f "$log"
  say "installed in $((SECONDS - start)) s"
fi

# ---- flags: setup.py's, read from it ---------------------------------------
python="${PYTHON:-$(command -v python || command -v python3)}"
read_flags() {
  "$python" - "$here/setup.py" "$1" <<'PY'
import ast, sys
tree = ast.parse(open(sys.argv[1]).read())
for node in tree.body:
    if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == sys.argv[2] for t in node.targets):
        value = ast.literal_eval(node.value)
        if isinstance(value, dict):
            for name, flags in value.items():
                print(name, " ".join(flags))
        else:
            print(" ".join(value))
        break
else:
    sys.exit(f"setup.py defines no {sys.argv[2]}")
PY
}
read -r -a base_flags <<<"$(read_flags BASE_FLAGS)"
declare -A isa_flags=()
while read -r name flags; do isa_flags[$name]="$flags"; done < <(read_flags ISA_FLAGS)
say "setup.py's flags: ${base_flags[*]}"

# ---- builds -----------------------------------------------------------------
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sources=()
for src in "$here"/csrc/*.c; do
  [ "$(basename "$src")" = module.c ] || sources+=("$src")  # module.c is the CPython glue
done
sources+=("$kat/nopython/nopython.c" "$kat/kat.c")

# build NAME CC OPENMP(0/1): $work/NAME/kat, each file with its own flags
# (the per-ISA files get setup.py's ISA_FLAGS on x86-64 only, as there).
build() {
  local name=$1 cc=$2 openmp=$3 dir="$work/$1" pids=() flags
  mkdir -p "$dir"
  local omp=(-Wno-unknown-pragmas); [ "$openmp" = 1 ] && omp=(-fopenmp)
  local x86=0; "$cc" -dM -E -x c /dev/null >"$dir/macros.h"
  grep -q '__x86_64__' "$dir/macros.h" && x86=1
  for src in "${sources[@]}"; do
    local base; base="$(basename "$src" .c)"
    flags=(); [ "$x86" = 1 ] && [ -n "${isa_flags[$base.c]:-}" ] && read -r -a flags <<<"${isa_flags[$base.c]}"
    "$cc" "${base_flags[@]}" "${omp[@]}" "${flags[@]}" -Wall -I"$kat/nopython" -I"$here/csrc" \
      -c "$src" -o "$dir/$base.o" 2>"$dir/$base.log" &
    pids+=($!)
    if [ "${#pids[@]}" -ge 2 ]; then wait "${pids[0]}" || { cat "$dir"/*.log; die "$name: compiling failed"; }; pids=("${pids[@]:1}"); fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || { cat "$dir"/*.log; die "$name: compiling failed"; }; done
  "$cc" "${omp[@]}" "$dir"/*.o -lm -o "$dir/kat" || die "$name: linking failed"
}

# check NAME RUNNER... : run the driver on every path it lists, compare.
failed=0
check() {
  local name=$1; shift
  local paths; paths="$("$@" "$work/$name/kat" --paths)"
  for path in $paths; do
    local out="$work/$name.$path.txt"
    if ! "$@" "$work/$name/kat" "$kat/cases.txt" "$path" >"$out" 2>"$out.err"; then
      cat "$out.err" >&2
      say "FAIL $name ($path): the driver's own checks failed" >&2
      failed=1
    fi
    if cmp -s "$out" "$kat/expected.txt"; then
      say "ok   $name ($path): $(wc -l <"$out") lines identical to expected.txt"
    else
      diff "$kat/expected.txt" "$out" >"$out.diff" || true
      say "FAIL $name ($path) differs from expected.txt in $(grep -c '^>' "$out.diff") lines; the first:" >&2
      { grep -m 3 '^<' "$out.diff" | sed 's/^</  expected:/'
        grep -m 3 '^>' "$out.diff" | sed 's/^>/  got:     /'; } >&2 || true
      failed=1
    fi
  done
}

t0=$SECONDS
build x86_64-openmp gcc 1
if [ "$regenerate" = 1 ]; then
  "$work/x86_64-openmp/kat" "$kat/cases.txt" baseline >"$kat/expected.txt.new" \
    || { rm -f "$kat/expected.txt.new"; die "the driver's own checks failed: expected.txt not rewritten"; }
  mv "$kat/expected.txt.new" "$kat/expected.txt"
  say "rewrote tools/arm64/expected.txt ($(wc -l <"$kat/expected.txt") lines)"
fi
[ -s "$kat/expected.txt" ] || die "no tools/arm64/expected.txt: run tools/arm64_check.sh --regenerate"
build x86_64-serial gcc 0
say "native builds in $((SECONDS - t0)) s"
check x86_64-openmp
check x86_64-serial

t0=$SECONDS
build aarch64-openmp aarch64-linux-gnu-gcc 1
build aarch64-serial aarch64-linux-gnu-gcc 0
say "aarch64 builds in $((SECONDS - t0)) s"
# ELF e_machine 0xb7: AArch64 (so qemu, not the host, runs what follows)
[ "$(od -An -tx1 -j18 -N1 "$work/aarch64-openmp/kat" | tr -d ' ')" = b7 ] \
  || die "the cross build is not an aarch64 executable"
# Every object, not only the paths the cases reach: no fused multiply-add
# (fmla, fmadd, ...: what -ffp-contract=fast would emit), and NEON vector
# code (.2d lanes) in the baseline kernels.
objdump=aarch64-linux-gnu-objdump
command -v "$objdump" >/dev/null || die "$objdump not found (binutils-aarch64-linux-gnu)"
for build in aarch64-openmp aarch64-serial; do
  fused=$("$objdump" -d "$work/$build"/*.o | grep -cE '\s(fml[as]|fn?m(add|sub))\s' || true)
  neon=$("$objdump" -d "$work/$build/isa_baseline.o" | grep -c '\.2d' || true)
  if [ "$fused" -gt 0 ] || [ "$neon" -eq 0 ]; then
    say "FAIL $build: $fused fused multiply-add instructions (must be 0: is -ffp-contract=off gone?)," \
        "$neon NEON instructions on .2d lanes in isa_baseline.o (must be > 0)" >&2
    failed=1
  else
    say "ok   $build: no fused multiply-add; $neon NEON instructions on .2d lanes in isa_baseline.o"
  fi
done
t0=$SECONDS
check aarch64-openmp qemu-aarch64 -L /usr/aarch64-linux-gnu
check aarch64-serial qemu-aarch64 -L /usr/aarch64-linux-gnu
say "aarch64 runs under qemu-user in $((SECONDS - t0)) s"

[ "$failed" = 0 ] || die "some builds give other bits than tools/arm64/expected.txt (after $((SECONDS - start)) s)"
say "every build gives the bits of tools/arm64/expected.txt ($((SECONDS - start)) s in all)"
