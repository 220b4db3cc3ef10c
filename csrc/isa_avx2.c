/*
 * The vector kernels compiled for AVX2 (x86-64 only; chosen at run time).
 * setup.py compiles this file alone with -mavx2. The instruction set comes
 * from the command line rather than from a pragma or an attribute because
 * every compiler honours -m flags for a whole file, including the static
 * inline helpers of fastmath.h, whereas clang ignores "#pragma GCC target".
 */
#if defined(__x86_64__) && defined(__GNUC__)
#ifndef __AVX2__
#error "isa_avx2.c must be compiled with -mavx2 (setup.py adds it); without it the avx2 path would run baseline code"
#endif
#include <math.h>
#define DSDE_ISA avx2
#include "isa_kernels.h"
#endif
typedef int dsde_avx2_translation_unit_is_not_empty;
