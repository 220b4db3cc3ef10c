/*
 * diffsde._core: CPython/NumPy glue only. The public, validating and
 * documented API is in diffsde/_engine.py; the checks here only keep a direct
 * call from crashing the interpreter.
 */
#define PY_ARRAY_UNIQUE_SYMBOL DIFFSDE_ARRAY_API
#define NPY_NO_DEPRECATED_API NPY_2_0_API_VERSION
#include "common.h"
#include <numpy/arrayobject.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "normal.h"
#include "parallel.h"
#include "rng.h"
#include "simd.h"
#include "step.h"

/* A borrowed, C-contiguous, aligned array of `typenum` with `size` elements
 * (size < 0: any), or NULL with ValueError naming `name`. */
static PyArrayObject *
expect_array(PyObject *obj, const char *name, int typenum, npy_intp size,
             int writeable)
{
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "_core: %s must be a NumPy array", name);
        return NULL;
    }
    PyArrayObject *arr = (PyArrayObject *)obj;
    if (PyArray_TYPE(arr) != typenum || !PyArray_ISNOTSWAPPED(arr) ||
        !PyArray_IS_C_CONTIGUOUS(arr) || !PyArray_ISALIGNED(arr) ||
        (writeable && !PyArray_ISWRITEABLE(arr))) {
        PyErr_Format(PyExc_ValueError,
                     "_core: %s must be a native, aligned, C-contiguous%s array "
                     "of type %d", name, writeable ? ", writeable" : "", typenum);
        return NULL;
    }
    if (size >= 0 && PyArray_SIZE(arr) != size) {
        PyErr_Format(PyExc_ValueError, "_core: %s has %zd elements, expected %zd",
                     name, (Py_ssize_t)PyArray_SIZE(arr), (Py_ssize_t)size);
        return NULL;
    }
    return arr;
}

static int
dtype_of(PyArrayObject *x, int *dtype)
{
    if (PyArray_TYPE(x) == NPY_FLOAT64)
        *dtype = DSDE_F64;
    else if (PyArray_TYPE(x) == NPY_FLOAT32)
        *dtype = DSDE_F32;
    else {
        PyErr_SetString(PyExc_TypeError, "_core: x must be float32 or float64");
        return -1;
    }
    return 0;
}

/* Fill the built-in score's arrays from a tuple of float64 arrays:
 *   linear     (mu (d,), var0 (d,))
 *   mixture    (log_weights (K,), means (K d,), lambdas (K d,), vectors (K d d,) or empty)
 *   empirical  (points (n d,))
 * The arrays stay owned by the caller, which keeps them alive for the run. */
static int
unpack_score_params(dsde_builtin_score *sc, PyObject *params)
{
    static const int counts[] = {0, 2, 0, 5, 4};
    const int64_t d = sc->dim;
    PyArrayObject *arr[5] = {NULL, NULL, NULL, NULL, NULL};
    if (!PyTuple_Check(params) || PyTuple_GET_SIZE(params) != counts[sc->kind]) {
        PyErr_Format(PyExc_ValueError, "_core: score_params must be a tuple of %d arrays",
                     counts[sc->kind]);
        return -1;
    }
    for (int i = 0; i < counts[sc->kind]; i++) {
        arr[i] = expect_array(PyTuple_GET_ITEM(params, i), "score_params[i]", NPY_FLOAT64, -1, 0);
        if (arr[i] == NULL)
            return -1;
    }
    if (sc->kind == DSDE_SCORE_LINEAR) {
        if (PyArray_SIZE(arr[0]) != d || PyArray_SIZE(arr[1]) != d)
            goto bad;
        sc->mu = PyArray_DATA(arr[0]);
        sc->var0 = PyArray_DATA(arr[1]);
    }
    else if (sc->kind == DSDE_SCORE_MIXTURE) {
        int64_t K = PyArray_SIZE(arr[0]);
        int64_t nvec = PyArray_SIZE(arr[3]);
        if (K < 1 || PyArray_SIZE(arr[1]) != K * d || PyArray_SIZE(arr[2]) != K * d ||
            (nvec != 0 && nvec != K * d * d))
            goto bad;
        sc->n_components = K;
        sc->log_weights = PyArray_DATA(arr[0]);
        sc->means = PyArray_DATA(arr[1]);
        sc->lambdas = PyArray_DATA(arr[2]);
        sc->vectors = nvec ? PyArray_DATA(arr[3]) : NULL;
        for (int64_t i = 0; i < K * d; i++)
            if (!(sc->lambdas[i] > 0.0))
                goto bad;
        /* the flags of components with one variance: checked, since the
         * kernel sums their log-normalizer from the first variance alone */
        if (PyArray_SIZE(arr[4]) != K)
            goto bad;
        sc->uniform = PyArray_DATA(arr[4]);
        for (int64_t k = 0; k < K; k++) {
            if (sc->uniform[k] != 0.0 && sc->uniform[k] != 1.0)
                goto bad;
            for (int64_t j = 1; sc->uniform[k] != 0.0 && j < d; j++)
                if (!(sc->lambdas[k * d + j] == sc->lambdas[k * d]))
                    goto bad;
        }
    }
    else {
        /* centred points, the same 8 to a block transposed, their squared
         * norms (+inf past n) and the centre: csrc/simd.h */
        int64_t n = d > 0 ? PyArray_SIZE(arr[0]) / d : 0;
        int64_t padded = (n + 7) / 8 * 8;
        if (n < 1 || PyArray_SIZE(arr[0]) != n * d || PyArray_SIZE(arr[1]) != padded * d ||
            PyArray_SIZE(arr[2]) != padded || PyArray_SIZE(arr[3]) != d)
            goto bad;
        sc->n_points = n;
        sc->points = PyArray_DATA(arr[0]);
        sc->points_t = PyArray_DATA(arr[1]);
        sc->sq_norms = PyArray_DATA(arr[2]);
        sc->center = PyArray_DATA(arr[3]);
        for (int64_t i = n; i < padded; i++)
            if (!(sc->sq_norms[i] == INFINITY))
                goto bad;
    }
    return 0;
bad:
    PyErr_Format(PyExc_ValueError, "_core: score_params do not fit score kind %d and dim %lld",
                 sc->kind, (long long)d);
    return -1;
}

/* ---- run ----------------------------------------------------------------- */

/* Objects a run reads: owned references, dropped when the run ends (the
 * arrays they hold must stay alive while C reads them). */
typedef struct {
    PyObject *obj[64];
    int n;
} held;

static void
held_clear(held *h)
{
    while (h->n > 0)
        Py_DECREF(h->obj[--h->n]);
}

/* `name` of a run's table or options: a dict's item or an object's
 * attribute; a borrowed reference kept alive by `h`, or NULL with an error
 * naming it. */
static PyObject *
field(held *h, PyObject *obj, const char *what, const char *name)
{
    PyObject *value;
    if (PyDict_Check(obj)) {
        value = PyDict_GetItemString(obj, name);
        Py_XINCREF(value);
    }
    else {
        value = PyObject_GetAttrString(obj, name);
        PyErr_Clear();
    }
    if (value == NULL) {
        PyErr_Format(PyExc_TypeError, "_core.run: %s has no field %s", what, name);
        return NULL;
    }
    if (h->n == (int)(sizeof h->obj / sizeof h->obj[0])) {
        Py_DECREF(value);
        PyErr_SetString(PyExc_RuntimeError, "_core.run: too many fields");
        return NULL;
    }
    h->obj[h->n++] = value;
    return value;
}

/* An integer field in [lo, hi]. */
static int
int_field(held *h, PyObject *obj, const char *what, const char *name, long long lo,
          long long hi, long long *out)
{
    PyObject *v = field(h, obj, what, name);
    if (v == NULL)
        return -1;
    long long x = PyLong_AsLongLong(v);
    if (x == -1 && PyErr_Occurred())
        return -1;
    if (x < lo || x > hi) {
        PyErr_Format(PyExc_ValueError, "_core.run: %s.%s = %lld is outside [%lld, %lld]", what,
                     name, x, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* A table column of `typenum` with `size` elements: its data, or NULL. */
static const void *
column(held *h, PyObject *table, const char *name, int typenum, npy_intp size)
{
    PyObject *v = field(h, table, "table", name);
    PyArrayObject *arr = v ? expect_array(v, name, typenum, size, 0) : NULL;
    return arr ? PyArray_DATA(arr) : NULL;
}

/* True when nothing can change the array's values while the GIL is
 * released: it and every array it views are read-only, and the chain ends
 * at an array owning its memory. (A read-only view of a writeable array, or
 * of a buffer NumPy does not own, can change under the run.) */
static int
frozen(PyArrayObject *arr)
{
    for (;;) {
        if (PyArray_ISWRITEABLE(arr))
            return 0;
        PyObject *base = PyArray_BASE(arr);
        if (base == NULL)
            return PyArray_CHKFLAGS(arr, NPY_ARRAY_OWNDATA);
        if (!PyArray_Check(base))
            return 0;
        arr = (PyArrayObject *)base;
    }
}

static const char run_doc[] =
    "run(x, table, options) -> first_nonfinite_row\n\n"
    "x: (batch, dim) float32/float64 state, updated in place. table: a StepTable or a\n"
    "mapping with its columns kind, dst, src, w, t, m, sd, interval, stream and\n"
    "n_registers; src and w are (rows, width), 1 <= width <= MAX_TERMS. options: an\n"
    "object or mapping with key, noise, score_kind,\n"
    "score_params, callback, registers, save_rows, snapshots, check_finite,\n"
    "stop_on_nonfinite, num_threads, block_rows, row_offset.\n\n"
    "Private: use diffsde.run_steps.";

static PyObject *
core_run(PyObject *self, PyObject *args)
{
    PyObject *x_obj, *table_obj, *opt;
    held h = {{NULL}, 0};
    dsde_run run;
    dsde_table table;
    void *table_copy = NULL;
    int64_t *save_copy = NULL;
    PyObject *result = NULL, *v;
    long long ll;
    (void)self;

    if (!PyArg_ParseTuple(args, "OOO:run", &x_obj, &table_obj, &opt))
        return NULL;
    memset(&run, 0, sizeof(run));
    memset(&table, 0, sizeof(table));
    PyArrayObject *x = (PyArrayObject *)x_obj;
    if (!PyArray_Check(x_obj) || PyArray_NDIM(x) != 2 || dtype_of(x, &run.dtype) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "_core: x must be a 2-D float array");
        return NULL;
    }
    int typenum = PyArray_TYPE(x);
    if (expect_array(x_obj, "x", typenum, -1, 1) == NULL)
        return NULL;
    run.batch = PyArray_DIM(x, 0);
    run.dim = PyArray_DIM(x, 1);
    run.x = PyArray_DATA(x);
    npy_intp state_size = PyArray_SIZE(x);

    /* ---- the table: read in place when frozen (a StepTable's columns),
     * else a private copy, as a score callback or another thread can run
     * Python that changes the caller's arrays mid-run */
    if ((v = field(&h, table_obj, "table", "kind")) == NULL)
        goto error;
    PyArrayObject *kind = expect_array(v, "kind", NPY_INT32, -1, 0);
    if (kind == NULL)
        goto error;
    npy_intp rows = PyArray_SIZE(kind);
    /* the width (terms per row) is src's second axis; w must agree, and
     * dsde_table_check bounds it by DSDE_MAX_TERMS before any row is read */
    if ((v = field(&h, table_obj, "table", "src")) == NULL)
        goto error;
    if (!PyArray_Check(v) || PyArray_NDIM((PyArrayObject *)v) != 2 ||
        PyArray_DIM((PyArrayObject *)v, 0) != rows) {
        PyErr_Format(PyExc_ValueError, "_core: table.src must be a 2-D array of %zd rows "
                     "(rows, width)", (Py_ssize_t)rows);
        goto error;
    }
    npy_intp width = PyArray_DIM((PyArrayObject *)v, 1);
    if (width < 1 || width > DSDE_MAX_TERMS) {
        PyErr_Format(PyExc_ValueError, "_core: table.src has width %zd; a row takes 1 to %d "
                     "terms", (Py_ssize_t)width, DSDE_MAX_TERMS);
        goto error;
    }
    if ((v = field(&h, table_obj, "table", "w")) == NULL)
        goto error;
    if (!PyArray_Check(v) || PyArray_NDIM((PyArrayObject *)v) != 2 ||
        PyArray_DIM((PyArrayObject *)v, 0) != rows || PyArray_DIM((PyArrayObject *)v, 1) != width) {
        PyErr_Format(PyExc_ValueError, "_core: table.w must have the shape of table.src, "
                     "(%zd, %zd)", (Py_ssize_t)rows, (Py_ssize_t)width);
        goto error;
    }
    table.width = (int)width;
    const void *cols[9];
    static const char *names[9] = {"dst", "src", "w", "t", "m", "sd", "interval", "stream", "kind"};
    static const int types[9] = {NPY_INT32, NPY_INT32, NPY_FLOAT64, NPY_FLOAT64, NPY_FLOAT64,
                                 NPY_FLOAT64, NPY_INT64, NPY_INT64, NPY_INT32};
    const size_t widths[9] = {1, (size_t)width, (size_t)width, 1, 1, 1, 1, 1, 1};
    size_t table_bytes = 0;
    int copy[9];
    for (int i = 0; i < 9; i++) {
        cols[i] = column(&h, table_obj, names[i], types[i], rows * (npy_intp)widths[i]);
        if (cols[i] == NULL)
            goto error;
        copy[i] = !frozen((PyArrayObject *)h.obj[h.n - 1]);
        /* each copied column starts 8-byte aligned (an int32 column of an odd
         * number of rows would misalign the int64 and double ones after it) */
        if (copy[i])
            table_bytes += ((size_t)rows * widths[i] * (types[i] == NPY_INT32 ? 4 : 8) + 7) & ~(size_t)7;
    }
    if (int_field(&h, table_obj, "table", "n_registers", 1, DSDE_MAX_REGISTERS, &ll) < 0)
        goto error;
    table.n_registers = (int)ll;
    table_copy = malloc(table_bytes > 0 ? table_bytes : 1);
    if (table_copy == NULL) {
        dsde_no_memory(table_bytes, "the run's copy of the step table");
        goto error;
    }
    {
        char *p = table_copy;
        void *copies[9];
        for (int i = 0; i < 9; i++) {
            size_t bytes = (size_t)rows * widths[i] * (types[i] == NPY_INT32 ? 4 : 8);
            if (!copy[i]) {
                copies[i] = (void *)cols[i];
                continue;
            }
            memcpy(p, cols[i], bytes);
            copies[i] = p;
            p += (bytes + 7) & ~(size_t)7;
        }
        table.n_rows = rows;
        table.dst = copies[0], table.src = copies[1], table.w = copies[2];
        table.t = copies[3], table.m = copies[4], table.sd = copies[5];
        table.interval = copies[6], table.stream = copies[7], table.kind = copies[8];
    }

    /* ---- options */
    if ((v = field(&h, opt, "options", "noise")) == NULL)
        goto error;
    if (v != Py_None) {
        PyArrayObject *noise = expect_array(v, "noise", typenum, -1, 0);
        if (noise == NULL)
            goto error;
        if (state_size != 0 && PyArray_SIZE(noise) % state_size != 0) {
            PyErr_SetString(PyExc_ValueError, "_core: noise must hold whole states");
            goto error;
        }
        run.noise = PyArray_DATA(noise);
        run.n_noise = state_size == 0 ? INT64_MAX : PyArray_SIZE(noise) / state_size;
    }
    if (dsde_table_check(&table, &run) < 0)
        goto error;

    if (int_field(&h, opt, "options", "score_kind", 0, 4, &ll) < 0)
        goto error;
    int score_kind = (int)ll;
    run.score.kind = score_kind;
    run.score.dim = run.dim;
    if (score_kind == DSDE_SCORE_LINEAR || score_kind == DSDE_SCORE_MIXTURE ||
        score_kind == DSDE_SCORE_EMPIRICAL) {
        if ((v = field(&h, opt, "options", "score_params")) == NULL ||
            unpack_score_params(&run.score, v) < 0)
            goto error;
    }
    else if (score_kind == DSDE_SCORE_PYTHON) {
        if ((v = field(&h, opt, "options", "callback")) == NULL)
            goto error;
        if (!PyCallable_Check(v)) {
            PyErr_SetString(PyExc_TypeError, "_core: callback must be callable");
            goto error;
        }
        run.callback = v;
        /* the scratch registers: whole-batch arrays, one per written register */
        if ((v = field(&h, opt, "options", "registers")) == NULL)
            goto error;
        if (!PyTuple_Check(v) || PyTuple_GET_SIZE(v) != table.n_registers) {
            PyErr_Format(PyExc_ValueError, "_core: registers must be a tuple of %d entries",
                         table.n_registers);
            goto error;
        }
        for (int k = 1; k < table.n_registers; k++) {
            if (!table.written[k])
                continue;
            PyArrayObject *reg = expect_array(PyTuple_GET_ITEM(v, k), "registers[k]", typenum,
                                              state_size, 1);
            if (reg == NULL)
                goto error;
            run.registers[k] = PyArray_DATA(reg);
        }
    }
    else if (score_kind != DSDE_SCORE_NONE) {
        PyErr_Format(PyExc_ValueError, "_core: unknown score kind %d", score_kind);
        goto error;
    }
    for (npy_intp r = 0; r < rows; r++) {
        if (table.kind[r] != DSDE_ROW_SCORE)
            continue;
        int degenerate = (score_kind == DSDE_SCORE_EMPIRICAL && !(table.sd[r] > 0.0)) ||
                         ((score_kind == DSDE_SCORE_MIXTURE || score_kind == DSDE_SCORE_LINEAR) &&
                          table.m[r] == 0.0 && table.sd[r] == 0.0);
        if (degenerate) {
            PyErr_Format(PyExc_ValueError,
                         "_core: row %zd evaluates a built-in score where it is undefined "
                         "(m = %g, sd = %g)", (Py_ssize_t)r, table.m[r], table.sd[r]);
            goto error;
        }
        if (score_kind == DSDE_SCORE_NONE) {
            PyErr_Format(PyExc_ValueError, "_core: row %zd needs a score", (Py_ssize_t)r);
            goto error;
        }
    }

    if ((v = field(&h, opt, "options", "save_rows")) == NULL)
        goto error;
    PyArrayObject *save = expect_array(v, "save_rows", NPY_INT64, -1, 0);
    if (save == NULL)
        goto error;
    run.n_save = PyArray_SIZE(save);
    size_t save_bytes = (size_t)(run.n_save > 0 ? run.n_save : 1) * sizeof(int64_t);
    save_copy = malloc(save_bytes);
    if (save_copy == NULL) {
        dsde_no_memory(save_bytes, "the run's list of saved rows");
        goto error;
    }
    memcpy(save_copy, PyArray_DATA(save), (size_t)run.n_save * sizeof(int64_t));
    run.save_rows = save_copy;
    for (npy_intp i = 0; i < run.n_save; i++) {
        if (run.save_rows[i] < -1 || run.save_rows[i] >= rows ||
            (i > 0 && run.save_rows[i] < run.save_rows[i - 1])) {
            PyErr_SetString(PyExc_ValueError,
                            "_core: save_rows must be non-decreasing in [-1, rows)");
            goto error;
        }
    }
    if ((v = field(&h, opt, "options", "snapshots")) == NULL)
        goto error;
    PyArrayObject *snaps = expect_array(v, "snapshots", typenum, run.n_save * state_size, 1);
    if (snaps == NULL)
        goto error;
    run.snapshots = PyArray_DATA(snaps);

    if ((v = field(&h, opt, "options", "key")) == NULL)
        goto error;
    run.key = PyLong_AsUnsignedLongLong(v);
    if (PyErr_Occurred())
        goto error;
    if ((v = field(&h, opt, "options", "row_offset")) == NULL)
        goto error;
    run.row_offset = PyLong_AsUnsignedLongLong(v);
    if (PyErr_Occurred())
        goto error;
    if (int_field(&h, opt, "options", "check_finite", 0, 1, &ll) < 0)
        goto error;
    run.check_finite = (int)ll;
    if (int_field(&h, opt, "options", "stop_on_nonfinite", 0, 1, &ll) < 0)
        goto error;
    run.stop_on_nonfinite = (int)ll;
    if (int_field(&h, opt, "options", "num_threads", INT_MIN, INT_MAX, &ll) < 0)
        goto error;
    run.num_threads = (int)ll;
    if (int_field(&h, opt, "options", "block_rows", 1, INT64_MAX, &ll) < 0)
        goto error;
    run.block_rows = ll;
    if (dsde_drive(&run, &table) < 0)
        goto error;
    result = PyLong_FromLongLong(run.first_nonfinite_row);
error:
    free(table_copy);
    free(save_copy);
    held_clear(&h);
    return result;
}

/* ---- the generator on its own ------------------------------------------- */
/* philox, box_muller and count_tails are test-only entry points (the
 * known-answer and tail tests of tests/test_rng.py); the package itself
 * calls fill_normal and fill_uniform. */

static PyObject *
core_philox(PyObject *self, PyObject *args)
{
    PyObject *ctr_obj, *key_obj;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO:philox", &ctr_obj, &key_obj))
        return NULL;
    PyArrayObject *ctr = expect_array(ctr_obj, "counters", NPY_UINT32, -1, 0);
    PyArrayObject *key = ctr ? expect_array(key_obj, "key", NPY_UINT32, 2, 0) : NULL;
    if (key == NULL)
        return NULL;
    if (PyArray_SIZE(ctr) % 4 != 0) {
        PyErr_SetString(PyExc_ValueError, "_core: counters must have 4 words each");
        return NULL;
    }
    PyArrayObject *out = (PyArrayObject *)PyArray_NewLikeArray(ctr, NPY_CORDER, NULL, 0);
    if (out == NULL)
        return NULL;
    const uint32_t *c = PyArray_DATA(ctr), *k = PyArray_DATA(key);
    uint32_t *o = PyArray_DATA(out);
    dsde_philox_key pk = {{k[0], k[1]}};
    for (npy_intp i = 0; i < PyArray_SIZE(ctr) / 4; i++) {
        dsde_philox_ctr pc = {{c[4 * i], c[4 * i + 1], c[4 * i + 2], c[4 * i + 3]}};
        dsde_philox_ctr r = dsde_philox4x32_10(pc, pk);
        memcpy(o + 4 * i, r.v, sizeof(r.v));
    }
    return (PyObject *)out;
}

static PyObject *
core_box_muller(PyObject *self, PyObject *args)
{
    PyObject *words_obj;
    int f32;
    (void)self;
    if (!PyArg_ParseTuple(args, "Op:box_muller", &words_obj, &f32))
        return NULL;
    PyArrayObject *words = expect_array(words_obj, "words", NPY_UINT32, -1, 0);
    if (words == NULL)
        return NULL;
    npy_intp n = PyArray_SIZE(words) / 4;
    if (PyArray_SIZE(words) % 4 != 0) {
        PyErr_SetString(PyExc_ValueError, "_core: words must come in fours");
        return NULL;
    }
    npy_intp dims[2] = {n, f32 ? 4 : 2};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(2, dims, f32 ? NPY_FLOAT32 : NPY_FLOAT64);
    if (out == NULL)
        return NULL;
    const uint32_t *w = PyArray_DATA(words);
    for (npy_intp i = 0; i < n; i++) {
        if (f32)
            dsde_box_muller_f32(w + 4 * i, (float *)PyArray_DATA(out) + 4 * i);
        else
            dsde_box_muller_f64(w + 4 * i, (double *)PyArray_DATA(out) + 2 * i);
    }
    return (PyObject *)out;
}

static PyObject *
core_fill_normal(PyObject *self, PyObject *args)
{
    PyObject *out_obj;
    unsigned long long key, j0;
    unsigned int stream, k;
    int num_threads;
    (void)self;
    if (!PyArg_ParseTuple(args, "OKIIKi:fill_normal", &out_obj, &key, &stream, &k,
                          &j0, &num_threads))
        return NULL;
    if (!PyArray_Check(out_obj)) {
        PyErr_SetString(PyExc_TypeError, "_core: out must be a NumPy array");
        return NULL;
    }
    int dtype;
    if (dtype_of((PyArrayObject *)out_obj, &dtype) < 0)
        return NULL;
    PyArrayObject *out = expect_array(out_obj, "out", PyArray_TYPE((PyArrayObject *)out_obj), -1, 1);
    if (out == NULL)
        return NULL;
    if ((unsigned long long)PyArray_SIZE(out) > UINT64_MAX - j0) {
        PyErr_SetString(PyExc_ValueError, "_core: j0 + out.size exceeds 2**64");
        return NULL;
    }
    if (dsde_normal_fill_parallel(key, stream, k, j0, PyArray_SIZE(out), dtype == DSDE_F32,
                                  PyArray_DATA(out), num_threads) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
core_fill_uniform(PyObject *self, PyObject *args)
{
    PyObject *out_obj;
    unsigned long long key, j0;
    unsigned int stream, k;
    (void)self;
    if (!PyArg_ParseTuple(args, "OKIIK:fill_uniform", &out_obj, &key, &stream, &k, &j0))
        return NULL;
    PyArrayObject *out = expect_array(out_obj, "out", NPY_FLOAT64, -1, 1);
    if (out == NULL)
        return NULL;
    if ((unsigned long long)PyArray_SIZE(out) > UINT64_MAX - j0) {
        PyErr_SetString(PyExc_ValueError, "_core: j0 + out.size exceeds 2**64");
        return NULL;
    }
    dsde_uniform_fill_f64(dsde_key_from_u64(key), stream, k, j0, PyArray_SIZE(out),
                          PyArray_DATA(out));
    Py_RETURN_NONE;
}

static PyObject *
core_count_tails(PyObject *self, PyObject *args)
{
    PyObject *thr_obj;
    unsigned long long key;
    unsigned int stream, k;
    long long n;
    int f32, num_threads;
    (void)self;
    if (!PyArg_ParseTuple(args, "KIILOpi:count_tails", &key, &stream, &k, &n,
                          &thr_obj, &f32, &num_threads))
        return NULL;
    PyArrayObject *thr = expect_array(thr_obj, "thresholds", NPY_FLOAT64, -1, 0);
    if (thr == NULL)
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "_core: n must be >= 0");
        return NULL;
    }
    npy_intp nt = PyArray_SIZE(thr);
    PyArrayObject *counts = (PyArrayObject *)PyArray_ZEROS(1, &nt, NPY_INT64, 0);
    if (counts == NULL)
        return NULL;
    if (dsde_count_tails(key, stream, k, n, f32, PyArray_DATA(thr), nt, PyArray_DATA(counts),
                         num_threads) < 0) {
        Py_DECREF(counts);
        return NULL;
    }
    return (PyObject *)counts;
}

static PyObject *
core_simd_paths(PyObject *self, PyObject *noargs)
{
    (void)self, (void)noargs;
    PyObject *out = PyList_New(0);
    for (int p = 0; out != NULL && p < dsde_simd_count(); p++) {
        if (dsde_simd_supported(p)) {
            PyObject *name = PyUnicode_FromString(dsde_simd_name(p));
            if (name == NULL || PyList_Append(out, name) < 0) {
                Py_XDECREF(name);
                Py_CLEAR(out);
                break;
            }
            Py_DECREF(name);
        }
    }
    return out;
}

static PyObject *
core_simd_path(PyObject *self, PyObject *noargs)
{
    (void)self, (void)noargs;
    return PyUnicode_FromString(dsde_simd_name(dsde_simd_current()));
}

/* The path chosen at import (None had the module not resolved it). */
static PyObject *
core_simd_default(PyObject *self, PyObject *noargs)
{
    (void)self, (void)noargs;
    if (dsde_simd_default() < 0)
        Py_RETURN_NONE;
    return PyUnicode_FromString(dsde_simd_name(dsde_simd_default()));
}

static PyObject *
core_set_simd(PyObject *self, PyObject *args)
{
    const char *name;
    (void)self;
    if (!PyArg_ParseTuple(args, "s:set_simd", &name))
        return NULL;
    if (dsde_simd_select(name) < 0) {
        PyErr_Format(PyExc_ValueError, "SIMD path %R is unknown or not supported by this CPU",
                     PyTuple_GET_ITEM(args, 0));
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
core_openmp(PyObject *self, PyObject *noargs)
{
    (void)self, (void)noargs;
#ifdef _OPENMP
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

/* score_work_size(kind, params, dim, rows): doubles of per-thread workspace
 * the built-in score needs for blocks of `rows` rows (the memory pre-check
 * counts them before a run allocates anything). */
static PyObject *
core_score_work_size(PyObject *self, PyObject *args)
{
    int kind;
    PyObject *params;
    long long dim, rows;
    (void)self;
    if (!PyArg_ParseTuple(args, "iOLL", &kind, &params, &dim, &rows))
        return NULL;
    dsde_builtin_score sc;
    memset(&sc, 0, sizeof sc);
    sc.kind = kind;
    sc.dim = dim;
    if (kind != DSDE_SCORE_LINEAR && kind != DSDE_SCORE_MIXTURE && kind != DSDE_SCORE_EMPIRICAL)
        return PyLong_FromLong(0);
    if (dim < 1 || rows < 1) {
        PyErr_SetString(PyExc_ValueError, "_core: score_work_size needs dim >= 1 and rows >= 1");
        return NULL;
    }
    if (unpack_score_params(&sc, params) < 0)
        return NULL;
    return PyLong_FromLongLong((long long)dsde_score_work_size(&sc, rows));
}

static PyMethodDef core_methods[] = {
    {"run", core_run, METH_VARARGS, run_doc},
    {"philox", core_philox, METH_VARARGS,
     "Test only. philox(counters (n, 4) uint32, key (2,) uint32) -> (n, 4) uint32"},
    {"box_muller", core_box_muller, METH_VARARGS,
     "Test only. box_muller(words (n, 4) uint32, f32) -> normals (n, 2) float64 or (n, 4) float32"},
    {"fill_normal", core_fill_normal, METH_VARARGS,
     "fill_normal(out, key, stream, k, j0, num_threads): out.flat[i] = normal j0 + i"},
    {"fill_uniform", core_fill_uniform, METH_VARARGS,
     "fill_uniform(out, key, stream, k, j0): out.flat[i] = uniform j0 + i in [0, 1), float64"},
    {"count_tails", core_count_tails, METH_VARARGS,
     "Test only. count_tails(key, stream, k, n, thresholds, f32, num_threads) -> counts of "
     "|z| > threshold over normals 0 .. n-1"},
    {"openmp", core_openmp, METH_NOARGS, "True when built with OpenMP."},
    {"simd_paths", core_simd_paths, METH_NOARGS, "The SIMD paths this CPU supports."},
    {"simd_path", core_simd_path, METH_NOARGS, "The SIMD path in use."},
    {"simd_default", core_simd_default, METH_NOARGS,
     "The SIMD path chosen at import: the best this CPU supports."},
    {"set_simd", core_set_simd, METH_VARARGS, "set_simd(name): use that SIMD path."},
    {"score_work_size", core_score_work_size, METH_VARARGS,
     "score_work_size(kind, params, dim, rows) -> doubles of per-thread score workspace"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "_core", "diffsde's C core (private).", -1, core_methods,
    NULL, NULL, NULL, NULL};

/* The one definition of the codes Python shares with C: row kinds, score
 * kinds, noise streams and the table's limits, as module constants. */
static int
add_dict(PyObject *m, const char *name, const char *const *keys, const long long *values, int n)
{
    PyObject *d = PyDict_New();
    if (d == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        PyObject *v = PyLong_FromLongLong(values[i]);
        if (v == NULL || PyDict_SetItemString(d, keys[i], v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return -1;
        }
        Py_DECREF(v);
    }
    if (PyModule_AddObject(m, name, d) < 0) {
        Py_DECREF(d);
        return -1;
    }
    return 0;
}

static int
add_constants(PyObject *m)
{
    static const char *const row_names[] = {"score", "normal", "combine", "langevin"};
    static const long long row_codes[] = {DSDE_ROW_SCORE, DSDE_ROW_NORMAL, DSDE_ROW_COMBINE,
                                          DSDE_ROW_LANGEVIN};
    static const char *const score_names[] = {"none", "linear", "python", "mixture", "empirical"};
    static const long long score_codes[] = {DSDE_SCORE_NONE, DSDE_SCORE_LINEAR,
                                            DSDE_SCORE_PYTHON, DSDE_SCORE_MIXTURE,
                                            DSDE_SCORE_EMPIRICAL};
    static const char *const stream_names[] = {"step", "initial", "corrector", "max_sub_steps",
                                               "brownian", "extra", "max_extra"};
    static const long long stream_codes[] = {DSDE_STREAM_STEP, DSDE_STREAM_INITIAL,
                                             DSDE_STREAM_CORRECTOR, DSDE_MAX_SUB_STEPS,
                                             DSDE_STREAM_BROWNIAN, DSDE_STREAM_EXTRA,
                                             DSDE_MAX_EXTRA};
    if (add_dict(m, "ROW_KINDS", row_names, row_codes, 4) < 0 ||
        add_dict(m, "SCORE_KINDS", score_names, score_codes, 5) < 0 ||
        add_dict(m, "STREAMS", stream_names, stream_codes, 7) < 0 ||
        PyModule_AddIntConstant(m, "MAX_TERMS", DSDE_MAX_TERMS) < 0 ||
        PyModule_AddIntConstant(m, "MAX_REGISTERS", DSDE_MAX_REGISTERS) < 0)
        return -1;
    return 0;
}

PyMODINIT_FUNC
PyInit__core(void)
{
    import_array();
    /* Once, here: worker threads then only read the choice. */
    dsde_simd_init();
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL || add_constants(m) < 0) {
        Py_XDECREF(m);
        return NULL;
    }
    return m;
}
