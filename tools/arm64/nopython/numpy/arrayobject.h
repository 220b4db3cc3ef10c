/*
 * A stand-in for NumPy's <numpy/arrayobject.h> used only by the pure-C
 * known-answer driver (see ../Python.h): the engine reads NumPy arrays only
 * on the score kind PYTHON, which the driver never selects, so every array
 * function here stops the program with a message.
 */
#ifndef DSDE_NOPYTHON_ARRAYOBJECT_H
#define DSDE_NOPYTHON_ARRAYOBJECT_H

#include "Python.h"

typedef struct dsde_nopy_array PyArrayObject;
typedef ptrdiff_t npy_intp;
enum { NPY_FLOAT32 = 11, NPY_FLOAT64 = 12 };

#define DSDE_NOPY_ARRAY(a, name) ((void)(a), dsde_nopy_unreachable(name), 0)
#define PyArray_Check(o) DSDE_NOPY_ARRAY(o, "PyArray_Check")
#define PyArray_TYPE(a) DSDE_NOPY_ARRAY(a, "PyArray_TYPE")
#define PyArray_IS_C_CONTIGUOUS(a) DSDE_NOPY_ARRAY(a, "PyArray_IS_C_CONTIGUOUS")
#define PyArray_ISALIGNED(a) DSDE_NOPY_ARRAY(a, "PyArray_ISALIGNED")
#define PyArray_ISNOTSWAPPED(a) DSDE_NOPY_ARRAY(a, "PyArray_ISNOTSWAPPED")
#define PyArray_SIZE(a) ((npy_intp)DSDE_NOPY_ARRAY(a, "PyArray_SIZE"))
#define PyArray_DATA(a) ((void *)(intptr_t)DSDE_NOPY_ARRAY(a, "PyArray_DATA"))

#endif
