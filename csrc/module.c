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

static const char run_doc[] =
    "run(x, kind, interval, stream, a, b, c, t, m, s, key, noise, score_kind,\n"
    "    score_params, callback, scratch, save_rows, snapshots, check_finite,\n"
    "    stop_on_nonfinite, num_threads, block_rows, row_offset=0) -> first_nonfinite_row\n\n"
    "Private: use diffsde.run_steps.";

static PyObject *
core_run(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "kind", "interval", "stream", "a", "b", "c", "t",
                             "m", "s", "key", "noise", "score_kind", "score_params",
                             "callback", "scratch", "save_rows", "snapshots",
                             "check_finite", "stop_on_nonfinite", "num_threads",
                             "block_rows", "row_offset", NULL};
    PyObject *x_obj, *kind_obj, *interval_obj, *stream_obj, *col_obj[6];
    PyObject *noise_obj, *params_obj, *callback, *scratch_obj;
    PyObject *save_obj, *snap_obj;
    unsigned long long key;
    int score_kind, check_finite, stop_on_nonfinite, num_threads;
    long long block_rows;
    unsigned long long row_offset = 0;
    dsde_run run;
    dsde_table table;
    void *table_copy = NULL;
    int64_t *save_copy = NULL;
    PyObject *result = NULL;
    (void)self;

    if (!PyArg_ParseTupleAndKeywords(
            args, kwds, "OOOOOOOOOOKOiOOOOOppiL|K:run", kwlist, &x_obj, &kind_obj,
            &interval_obj, &stream_obj, &col_obj[0], &col_obj[1], &col_obj[2],
            &col_obj[3], &col_obj[4], &col_obj[5], &key, &noise_obj, &score_kind,
            &params_obj, &callback, &scratch_obj, &save_obj, &snap_obj,
            &check_finite, &stop_on_nonfinite, &num_threads, &block_rows, &row_offset))
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

    PyArrayObject *kind = expect_array(kind_obj, "kind", NPY_INT32, -1, 0);
    if (kind == NULL)
        return NULL;
    npy_intp rows = PyArray_SIZE(kind);
    PyArrayObject *interval = expect_array(interval_obj, "interval", NPY_INT64, rows, 0);
    PyArrayObject *stream = interval ? expect_array(stream_obj, "stream", NPY_INT64, rows, 0) : NULL;
    if (stream == NULL)
        return NULL;
    const double *cols[6];
    static const char *col_names[6] = {"a", "b", "c", "t", "m", "s"};
    for (int i = 0; i < 6; i++) {
        PyArrayObject *col = expect_array(col_obj[i], col_names[i], NPY_FLOAT64, rows, 0);
        if (col == NULL)
            return NULL;
        cols[i] = PyArray_DATA(col);
    }
    /* The driver works on private copies of the table: a score callback
     * can run Python that mutates the caller's arrays mid-run. */
    size_t table_bytes = (size_t)(rows > 0 ? rows : 1) * (6 * sizeof(double) + 2 * sizeof(int64_t) + sizeof(int32_t));
    table_copy = malloc(table_bytes);
    if (table_copy == NULL) {
        dsde_no_memory(table_bytes, "the run's copy of the step table");
        goto error;
    }
    {
        double *fcols = table_copy;
        int64_t *icols = (int64_t *)(fcols + 6 * rows);
        int32_t *kcol = (int32_t *)(icols + 2 * rows);
        for (int i = 0; i < 6; i++)
            memcpy(fcols + i * rows, cols[i], (size_t)rows * sizeof(double));
        memcpy(icols, PyArray_DATA(interval), (size_t)rows * sizeof(int64_t));
        memcpy(icols + rows, PyArray_DATA(stream), (size_t)rows * sizeof(int64_t));
        memcpy(kcol, PyArray_DATA(kind), (size_t)rows * sizeof(int32_t));
        table.n_rows = rows;
        table.kind = kcol;
        table.interval = icols;
        table.stream = icols + rows;
        table.a = fcols, table.b = fcols + rows, table.c = fcols + 2 * rows;
        table.t = fcols + 3 * rows, table.m = fcols + 4 * rows, table.s = fcols + 5 * rows;
    }

    int64_t n_noise = 0;
    if (noise_obj != Py_None) {
        PyArrayObject *noise = expect_array(noise_obj, "noise", typenum, -1, 0);
        if (noise == NULL)
            goto error;
        if (state_size != 0 && PyArray_SIZE(noise) % state_size != 0) {
            PyErr_SetString(PyExc_ValueError, "_core: noise must hold whole states");
            goto error;
        }
        n_noise = state_size == 0 ? INT64_MAX : PyArray_SIZE(noise) / state_size;
        run.noise = PyArray_DATA(noise);
        run.n_noise = n_noise;
    }
    for (npy_intp r = 0; r < rows; r++) {
        if (table.kind[r] < 0 || table.kind[r] >= DSDE_N_KINDS) {
            PyErr_Format(PyExc_ValueError, "_core: row %zd has unknown kind %d",
                         (Py_ssize_t)r, (int)table.kind[r]);
            goto error;
        }
        if ((table.kind[r] == DSDE_HEUN_PREDICT) !=
            (r + 1 < rows && table.kind[r + 1] == DSDE_HEUN_CORRECT)) {
            PyErr_Format(PyExc_ValueError,
                         "_core: rows %zd, %zd: heun_predict and heun_correct come in pairs",
                         (Py_ssize_t)r, (Py_ssize_t)r + 1);
            goto error;
        }
        if (table.kind[r] == DSDE_HEUN_CORRECT && (r == 0 || table.kind[r - 1] != DSDE_HEUN_PREDICT)) {
            PyErr_Format(PyExc_ValueError,
                         "_core: row %zd (heun_correct) must follow heun_predict", (Py_ssize_t)r);
            goto error;
        }
        if (table.interval[r] < 0 || table.interval[r] > UINT32_MAX ||
            table.stream[r] < 0 || table.stream[r] > UINT32_MAX ||
            (run.noise != NULL && table.stream[r] == 0 && dsde_row_needs_noise(&table, r) &&
             table.interval[r] >= n_noise)) {
            PyErr_Format(PyExc_ValueError, "_core: row %zd has interval %lld, stream "
                         "%lld out of range", (Py_ssize_t)r,
                         (long long)table.interval[r], (long long)table.stream[r]);
            goto error;
        }
    }

    run.score.kind = score_kind;
    run.score.dim = run.dim;
    if (score_kind == DSDE_SCORE_LINEAR || score_kind == DSDE_SCORE_MIXTURE ||
        score_kind == DSDE_SCORE_EMPIRICAL) {
        if (unpack_score_params(&run.score, params_obj) < 0)
            goto error;
    }
    else if (score_kind == DSDE_SCORE_PYTHON) {
        if (!PyCallable_Check(callback)) {
            PyErr_SetString(PyExc_TypeError, "_core: callback must be callable");
            goto error;
        }
        run.callback = callback;
    }
    else if (score_kind != DSDE_SCORE_NONE) {
        PyErr_Format(PyExc_ValueError, "_core: unknown score kind %d", score_kind);
        goto error;
    }
    for (npy_intp r = 0; r < rows; r++) {
        int needs = dsde_row_needs_score(&table, r);
        int degenerate = (score_kind == DSDE_SCORE_EMPIRICAL && !(table.s[r] > 0.0)) ||
                         ((score_kind == DSDE_SCORE_MIXTURE || score_kind == DSDE_SCORE_LINEAR) &&
                          table.m[r] == 0.0 && table.s[r] == 0.0);
        if (needs && degenerate) {
            PyErr_Format(PyExc_ValueError,
                         "_core: row %zd evaluates a built-in score where it is undefined "
                         "(m = %g, s = %g)", (Py_ssize_t)r, table.m[r], table.s[r]);
            goto error;
        }
        if (score_kind == DSDE_SCORE_NONE && needs) {
            PyErr_Format(PyExc_ValueError, "_core: row %zd needs a score", (Py_ssize_t)r);
            goto error;
        }
    }
    if (score_kind == DSDE_SCORE_PYTHON) {
        PyArrayObject *scratch = expect_array(scratch_obj, "scratch", typenum, state_size, 1);
        if (scratch == NULL)
            goto error;
        run.scratch = PyArray_DATA(scratch);
    }

    PyArrayObject *save = expect_array(save_obj, "save_rows", NPY_INT64, -1, 0);
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
    PyArrayObject *snaps = expect_array(snap_obj, "snapshots", typenum,
                                        run.n_save * state_size, 1);
    if (snaps == NULL)
        goto error;
    run.snapshots = PyArray_DATA(snaps);

    if (block_rows < 1) {
        PyErr_SetString(PyExc_ValueError, "_core: block_rows must be >= 1");
        goto error;
    }
    run.key = key;
    run.check_finite = check_finite;
    run.stop_on_nonfinite = stop_on_nonfinite;
    run.num_threads = num_threads;
    run.block_rows = block_rows;
    run.row_offset = row_offset;
    if (dsde_drive(&run, &table) < 0)
        goto error;
    result = PyLong_FromLongLong(run.first_nonfinite_row);
error:
    free(table_copy);
    free(save_copy);
    return result;
}

/* ---- the generator on its own ------------------------------------------- */

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

/* Normals in parallel chunks; each chunk is a fixed range of j. */
#define NORMAL_CHUNK 65536

typedef struct {
    uint64_t key;
    uint32_t stream, k;
    uint64_t j0;
    int64_t n;
    int f32;
    void *out;               /* fill: destination, or NULL to count tails */
    const double *thresholds;
    int64_t n_thresholds;
    int64_t *counts;         /* tails: |z| > thresholds[i] */
} normal_job;

typedef struct {
    int64_t *counts;
    double *buf;
} normal_ws;

static void *
normal_ws_new(void *ctx, size_t *bytes)
{
    normal_job *job = ctx;
    *bytes = sizeof(normal_ws);
    if (job->out == NULL)
        *bytes += ((size_t)job->n_thresholds + 1) * sizeof(int64_t) + NORMAL_CHUNK * sizeof(double);
    normal_ws *ws = calloc(1, sizeof(normal_ws));
    if (ws == NULL)
        return NULL;
    if (job->out == NULL) {
        ws->counts = calloc((size_t)job->n_thresholds + 1, sizeof(int64_t));
        ws->buf = malloc(NORMAL_CHUNK * sizeof(double));
        if (ws->counts == NULL || ws->buf == NULL) {
            free(ws->counts), free(ws->buf), free(ws);
            return NULL;
        }
    }
    return ws;
}

static void
normal_ws_free(void *ctx, void *wsv)
{
    normal_job *job = ctx;
    normal_ws *ws = wsv;
    if (ws->counts != NULL) {
#pragma omp critical(dsde_merge_tails)
        for (int64_t i = 0; i < job->n_thresholds; i++)
            job->counts[i] += ws->counts[i];
    }
    free(ws->counts);
    free(ws->buf);
    free(ws);
}

static void
normal_chunk(void *ctx, void *wsv, int64_t chunk, dsde_pool *pool, int master)
{
    normal_job *job = ctx;
    normal_ws *ws = wsv;
    int64_t start = chunk * NORMAL_CHUNK;
    int64_t n = job->n - start < NORMAL_CHUNK ? job->n - start : NORMAL_CHUNK;
    dsde_philox_key key = dsde_key_from_u64(job->key);
    (void)pool, (void)master;
    void *dst = job->out != NULL
                    ? (char *)job->out + start * (job->f32 ? sizeof(float) : sizeof(double))
                    : (void *)ws->buf;
    if (job->f32)
        dsde_normal_fill_f32(key, job->stream, job->k, job->j0 + start, n, dst);
    else
        dsde_normal_fill_f64(key, job->stream, job->k, job->j0 + start, n, dst);
    if (job->out != NULL)
        return;
    for (int64_t i = 0; i < n; i++) {
        double z = job->f32 ? (double)((float *)ws->buf)[i] : ws->buf[i];
        double a = fabs(z);
        for (int64_t t = 0; t < job->n_thresholds; t++)
            ws->counts[t] += a > job->thresholds[t];
    }
}

static const dsde_chunk_job normal_hooks = {normal_ws_new, normal_ws_free, normal_chunk};

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
    normal_job job = {key, stream, k, j0, PyArray_SIZE(out), dtype == DSDE_F32,
                      PyArray_DATA(out), NULL, 0, NULL};
    int64_t chunks = job.n / NORMAL_CHUNK + (job.n % NORMAL_CHUNK != 0);
    if (dsde_run_chunks(&normal_hooks, &job, chunks, num_threads) < 0)
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
    normal_job job = {key, stream, k, 0, n, f32, NULL, PyArray_DATA(thr), nt,
                      PyArray_DATA(counts)};
    int64_t chunks = n / NORMAL_CHUNK + (n % NORMAL_CHUNK != 0);
    if (dsde_run_chunks(&normal_hooks, &job, chunks, num_threads) < 0) {
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
    {"run", (PyCFunction)(void (*)(void))core_run, METH_VARARGS | METH_KEYWORDS, run_doc},
    {"philox", core_philox, METH_VARARGS,
     "philox(counters (n, 4) uint32, key (2,) uint32) -> (n, 4) uint32"},
    {"box_muller", core_box_muller, METH_VARARGS,
     "box_muller(words (n, 4) uint32, f32) -> normals (n, 2) float64 or (n, 4) float32"},
    {"fill_normal", core_fill_normal, METH_VARARGS,
     "fill_normal(out, key, stream, k, j0, num_threads): out.flat[i] = normal j0 + i"},
    {"fill_uniform", core_fill_uniform, METH_VARARGS,
     "fill_uniform(out, key, stream, k, j0): out.flat[i] = uniform j0 + i in [0, 1), float64"},
    {"count_tails", core_count_tails, METH_VARARGS,
     "count_tails(key, stream, k, n, thresholds, f32, num_threads) -> counts of "
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

PyMODINIT_FUNC
PyInit__core(void)
{
    import_array();
    /* Once, here: worker threads then only read the choice. */
    dsde_simd_init();
    return PyModule_Create(&core_module);
}
