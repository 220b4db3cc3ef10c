/* Helpers of the row kernels (step_kernel.h), shared by every file that
 * instantiates them. */
#ifndef DIFFSDE_STEP_COMMON_H
#define DIFFSDE_STEP_COMMON_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#include "step.h"

#define DSDE_STEP_CAT2(a, b) a##_##b
#define DSDE_STEP_CAT(a, b) DSDE_STEP_CAT2(a, b)

/* 1 when v is inf or NaN: its exponent bits are all ones. An integer test
 * the loops fold into an OR, so the check costs no second pass. */
static inline uint64_t
nonfinite_f64(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return (bits & UINT64_C(0x7FF0000000000000)) == UINT64_C(0x7FF0000000000000);
}

static inline uint64_t
nonfinite_f32(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return (bits & UINT32_C(0x7F800000)) == UINT32_C(0x7F800000);
}

#endif
