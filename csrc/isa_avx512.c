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
#include "isa_kernels.h"
#endif
typedef int dsde_avx512_translation_unit_is_not_empty;
