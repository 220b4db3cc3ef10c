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
#include "normal_kernel.h"
#include "mixture_kernel.h"
#include "empirical_kernel.h"
#define DSDE_T double
#define DSDE_SFX DSDE_CAT(f64, DSDE_ISA)
#define DSDE_NONFINITE nonfinite_f64
#include "step_kernel.h"
#undef DSDE_T
#undef DSDE_SFX
#undef DSDE_NONFINITE
#define DSDE_T float
#define DSDE_SFX DSDE_CAT(f32, DSDE_ISA)
#define DSDE_NONFINITE nonfinite_f32
#include "step_kernel.h"
#undef DSDE_T
#undef DSDE_SFX
#undef DSDE_NONFINITE
#endif
typedef int dsde_avx2_translation_unit_is_not_empty;
