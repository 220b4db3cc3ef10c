/*
 * The vector kernels compiled for AVX-512 (F, DQ, VL, BW, CD: x86-64-v4;
 * chosen at run time). setup.py compiles this file alone with the matching
 * -mavx512* flags; see isa_avx2.c for why flags and not a pragma.
 */
#if defined(__x86_64__) && defined(__GNUC__)
#if !(defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512VL__) &&                \
      defined(__AVX512BW__) && defined(__AVX512CD__))
#error "isa_avx512.c must be compiled with -mavx512f -mavx512dq -mavx512vl -mavx512bw -mavx512cd (setup.py adds them); without them the avx512 path would run baseline code"
#endif
#include <math.h>
#define DSDE_ISA avx512
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
typedef int dsde_avx512_translation_unit_is_not_empty;
