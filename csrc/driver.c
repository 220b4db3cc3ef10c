#include "driver.h"
#include <sched.h>
#ifdef _OPENMP
#include <pthread.h>
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>
#define NO_IMPORT_ARRAY
#define PY_ARRAY_UNIQUE_SYMBOL DIFFSDE_ARRAY_API
#define NPY_NO_DEPRECATED_API NPY_2_0_API_VERSION
#include <numpy/arrayobject.h>

#include "normal.h"
#include "parallel.h"

int
dsde_row_terms(const dsde_table *table, int64_t r)
{
    const int32_t *src = table->src + r * table->width;
    int n = 0;
    while (n < table->width && src[n] >= 0)
        n++;
    return n;
}

/* Sources each kind reads (combine: 1 .. DSDE_MAX_TERMS). */
static int
expected_terms(int kind, int n)
{
    switch (kind) {
    case DSDE_ROW_SCORE:
        return n == 1;
    case DSDE_ROW_NORMAL:
        return n == 0;
    case DSDE_ROW_COMBINE:
        return n >= 1;
    case DSDE_ROW_LANGEVIN:
        return n == 3;
    }
    return 0;
}

int
dsde_table_check(dsde_table *tb, const dsde_run *run)
{
    unsigned char normal[DSDE_MAX_REGISTERS], other[DSDE_MAX_REGISTERS];
    const int R = tb->n_registers;
    if (R < 1 || R > DSDE_MAX_REGISTERS) {
        PyErr_Format(PyExc_ValueError, "_core: n_registers must lie in [1, %d]; got %d",
                     DSDE_MAX_REGISTERS, R);
        return -1;
    }
    if (tb->width < 1 || tb->width > DSDE_MAX_TERMS) {
        PyErr_Format(PyExc_ValueError, "_core: the table's width (terms per row) must lie in "
                     "[1, %d]; got %d", DSDE_MAX_TERMS, tb->width);
        return -1;
    }
    memset(normal, 0, sizeof normal);
    memset(other, 0, sizeof other);
    memset(tb->written, 0, sizeof tb->written);
    tb->score_tmp = 0;
    for (int64_t r = 0; r < tb->n_rows; r++) {
        const int kind = tb->kind[r], dst = tb->dst[r];
        const int32_t *src = tb->src + r * tb->width;
        int n = dsde_row_terms(tb, r);
        /* score and langevin rows read two weights */
        int ok = kind >= 0 && kind < DSDE_N_ROW_KINDS && dst >= 0 && dst < R &&
                 expected_terms(kind, n) &&
                 (tb->width >= 2 || (kind != DSDE_ROW_SCORE && kind != DSDE_ROW_LANGEVIN));
        for (int k = 0; ok && k < tb->width; k++)
            ok = k < n ? src[k] < R : src[k] == -1;
        if (!ok) {
            PyErr_Format(PyExc_ValueError, "_core: row %lld has kind %d, dst %d or sources out "
                         "of range", (long long)r, kind, dst);
            return -1;
        }
        if (kind == DSDE_ROW_NORMAL) {
            if (tb->interval[r] < 0 || tb->interval[r] > UINT32_MAX || tb->stream[r] < 0 ||
                tb->stream[r] > UINT32_MAX ||
                (run->noise != NULL && tb->stream[r] == 0 && tb->interval[r] >= run->n_noise)) {
                PyErr_Format(PyExc_ValueError, "_core: row %lld has interval %lld, stream %lld "
                             "out of range", (long long)r, (long long)tb->interval[r],
                             (long long)tb->stream[r]);
                return -1;
            }
            normal[dst] = 1;
        }
        else {
            other[dst] = 1;
        }
        if (kind == DSDE_ROW_SCORE && !(tb->w[r * tb->width] == 0.0 &&
                                        tb->w[r * tb->width + 1] == 1.0 && dst != 0 &&
                                        dst != src[0]))
            tb->score_tmp = 1;
        tb->written[dst] = 1;
    }
    /* a register no row writes has no buffer: no row may read it */
    for (int64_t r = 0; r < tb->n_rows; r++) {
        const int32_t *src = tb->src + r * tb->width;
        for (int k = 0; k < tb->width && src[k] >= 0; k++) {
            if (src[k] > 0 && !tb->written[src[k]]) {
                PyErr_Format(PyExc_ValueError, "_core: row %lld reads register %d, which no row "
                             "writes", (long long)r, (int)src[k]);
                return -1;
            }
        }
    }
    /* a register aliasing the caller's noise must never be written through */
    for (int k = 0; k < R; k++) {
        if (normal[k] && (other[k] || k == 0)) {
            PyErr_Format(PyExc_ValueError, "_core: register %d is written by normal rows and "
                         "by other rows", k);
            return -1;
        }
    }
    return 0;
}

/* Where each scratch register lives for one block: its own buffer
 * (`whole`: a whole-batch array, else a block-sized one), or, while
 * alias[k] >= 0, the caller's noise for interval alias[k]. */
typedef struct {
    void *const *buf;
    int whole;
    int64_t alias[DSDE_MAX_REGISTERS];
} regs;

/* A normal row reading the caller's noise points its register there. */
static void
note_alias(const dsde_run *run, const dsde_table *tb, int64_t r, regs *rg)
{
    if (tb->kind[r] == DSDE_ROW_NORMAL)
        rg->alias[tb->dst[r]] = run->noise != NULL && tb->stream[r] == 0 ? tb->interval[r] : -1;
}

static void
regs_init(regs *rg, void *const *buf, int whole)
{
    rg->buf = buf;
    rg->whole = whole;
    for (int k = 0; k < DSDE_MAX_REGISTERS; k++)
        rg->alias[k] = -1;
}

#define DSDE_DRV_CAT2(a, b) a##_##b
#define DSDE_DRV_CAT(a, b) DSDE_DRV_CAT2(a, b)

#define DSDE_T double
#define DSDE_SFX f64
#include "driver_kernel.h"
#undef DSDE_T
#undef DSDE_SFX

#define DSDE_T float
#define DSDE_SFX f32
#include "driver_kernel.h"
#undef DSDE_T
#undef DSDE_SFX

/* Nonzero when the row left a non-finite element in the state (and the run
 * checks for them). */
static int
apply_row(const dsde_run *run, const dsde_table *tb, int64_t r, int64_t i0, int64_t i1,
          const regs *rg, void *tmp, double *work, const void *ext_score, dsde_pool *pool,
          int master)
{
    if (run->dtype == DSDE_F64)
        return apply_row_f64(run, tb, r, i0, i1, rg, tmp, work, ext_score, pool, master);
    return apply_row_f32(run, tb, r, i0, i1, rg, tmp, work, ext_score, pool, master);
}

/* Per-thread buffers for one block: the scratch registers the table writes
 * (built-in scores only: a Python score's registers are whole-batch arrays),
 * the score values when a row does not store them raw, and the built-in
 * score's workspace. Buffers are zeroed: a register is written before it is
 * read (the StepTable checks), so this only keeps a direct call defined. */
typedef struct {
    void *buf[DSDE_MAX_REGISTERS];
    void *tmp;
    double *work;
} workspace;

static void
workspace_free(workspace *ws)
{
    for (int k = 0; k < DSDE_MAX_REGISTERS; k++)
        free(ws->buf[k]);
    free(ws->tmp);
    free(ws->work);
    free(ws);
}

/* Bytes the workspace of a run asks for; _engine.workspace_bytes repeats
 * this sum for the memory pre-check. */
static size_t
workspace_size(const dsde_run *run, const dsde_table *tb, int *n_regs, int *tmp)
{
    size_t item = run->dtype == DSDE_F64 ? sizeof(double) : sizeof(float);
    size_t n = (size_t)(run->block_rows * run->dim);
    size_t nwork = (size_t)dsde_score_work_size(&run->score, run->block_rows);
    int builtin = run->score.kind != DSDE_SCORE_PYTHON;
    *n_regs = 0;
    for (int k = 1; k < tb->n_registers; k++)
        *n_regs += builtin && tb->written[k];
    *tmp = builtin && tb->score_tmp;
    return sizeof(workspace) + (size_t)(*n_regs + *tmp) * n * item + (nwork + 1) * sizeof(double);
}

static void *
workspace_new(const dsde_run *run, const dsde_table *tb, size_t *bytes)
{
    size_t item = run->dtype == DSDE_F64 ? sizeof(double) : sizeof(float);
    size_t n = (size_t)(run->block_rows * run->dim);
    size_t nwork = (size_t)dsde_score_work_size(&run->score, run->block_rows);
    int n_regs, tmp, builtin = run->score.kind != DSDE_SCORE_PYTHON;
    *bytes = workspace_size(run, tb, &n_regs, &tmp);
    workspace *ws = calloc(1, sizeof(workspace));
    if (ws == NULL)
        return NULL;
    int ok = 1;
    for (int k = 1; k < tb->n_registers && ok; k++) {
        if (builtin && tb->written[k])
            ok = (ws->buf[k] = calloc(n, item)) != NULL;
    }
    if (ok && tmp)
        ok = (ws->tmp = calloc(n, item)) != NULL;
    if (ok)
        ok = (ws->work = malloc((nwork + 1) * sizeof(double))) != NULL;
    if (!ok) {
        workspace_free(ws);
        return NULL;
    }
    return ws;
}

/* Lower run->first_nonfinite_row to r (threads may race here). */
static void
note_nonfinite(dsde_run *run, int64_t r)
{
#pragma omp critical(dsde_merge_nonfinite)
    {
        if (run->first_nonfinite_row < 0 || r < run->first_nonfinite_row)
            run->first_nonfinite_row = r;
    }
}

/* Copy batch rows [i0, i1) of the state into every snapshot taken after
 * row r (r = -1: the initial state); `next` walks run->save_rows. */
static int64_t
save_block(const dsde_run *run, int64_t r, int64_t next, int64_t i0, int64_t i1)
{
    size_t item = run->dtype == DSDE_F64 ? sizeof(double) : sizeof(float);
    int64_t per_state = run->batch * run->dim;
    while (next < run->n_save && run->save_rows[next] == r) {
        char *dst = (char *)run->snapshots +
                    (size_t)(next * per_state + i0 * run->dim) * item;
        const char *src = (const char *)run->x + (size_t)(i0 * run->dim) * item;
        memcpy(dst, src, (size_t)((i1 - i0) * run->dim) * item);
        next++;
    }
    return next;
}

/* ---- built-in scores: blocks outermost ---------------------------------- */

typedef struct {
    dsde_run *run;
    const dsde_table *table;
} block_job;

static void *
block_workspace_new(void *ctx, size_t *bytes)
{
    block_job *job = ctx;
    return workspace_new(job->run, job->table, bytes);
}

static void
block_workspace_free(void *ctx, void *ws)
{
    (void)ctx;
    workspace_free(ws);
}

static void
run_block(void *ctx, void *wsv, int64_t block, dsde_pool *pool, int master)
{
    block_job *job = ctx;
    dsde_run *run = job->run;
    const dsde_table *tb = job->table;
    workspace *ws = wsv;
    int64_t i0 = block * run->block_rows;
    int64_t i1 = i0 + run->block_rows < run->batch ? i0 + run->block_rows : run->batch;
    int64_t next_save = save_block(run, -1, 0, i0, i1);
    int seen_nonfinite = 0;
    regs rg;
    regs_init(&rg, ws->buf, 0);

    /* Every block runs until its own first non-finite row, whatever the
     * others found, so the reported row never depends on thread timing. */
    for (int64_t r = 0; r < tb->n_rows; r++) {
        note_alias(run, tb, r, &rg);
        if (apply_row(run, tb, r, i0, i1, &rg, ws->tmp, ws->work, NULL, pool, master) &&
            !seen_nonfinite) {
            seen_nonfinite = 1;
            note_nonfinite(run, r);
        }
        next_save = save_block(run, r, next_save, i0, i1);
        if (seen_nonfinite && run->stop_on_nonfinite)
            break;
        /* a normal row is soon followed by the row using its noise: polling
         * there is enough, and saves a clock read per row */
        if ((tb->kind[r] != DSDE_ROW_NORMAL || r % 64 == 0) && dsde_poll(pool, master))
            break;
    }
}

static int
drive_blocks(dsde_run *run, const dsde_table *table)
{
    block_job job = {run, table};
    dsde_chunk_job hooks = {block_workspace_new, block_workspace_free, run_block};
    int64_t n_blocks = run->batch / run->block_rows + (run->batch % run->block_rows != 0);
    return dsde_run_chunks(&hooks, &job, n_blocks, run->num_threads);
}

/* ---- Python scores: table rows outermost -------------------------------- */

/* No inf or NaN: no element has all exponent bits set (an integer OR that
 * vectorizes, unlike a floating-point reduction). */
static int
all_finite(PyArrayObject *arr)
{
    npy_intp n = PyArray_SIZE(arr);
    uint64_t bad = 0;
    if (PyArray_TYPE(arr) == NPY_FLOAT64) {
        const uint64_t *v = PyArray_DATA(arr);
        const uint64_t mask = UINT64_C(0x7FF0000000000000);
        for (npy_intp i = 0; i < n; i++)
            bad |= (v[i] & mask) == mask;
    }
    else {
        const uint32_t *v = PyArray_DATA(arr);
        const uint32_t mask = UINT32_C(0x7F800000);
        for (npy_intp i = 0; i < n; i++)
            bad |= (v[i] & mask) == mask;
    }
    return bad == 0;
}

/* Call the score with the GIL held; a new reference to a C-contiguous array
 * of the state's dtype and size, or NULL with an exception set. */
static PyArrayObject *
call_python_score(const dsde_run *run, int64_t r)
{
    int typenum = run->dtype == DSDE_F64 ? NPY_FLOAT64 : NPY_FLOAT32;
    PyObject *res = PyObject_CallFunction(run->callback, "L", (long long)r);
    if (res == NULL)
        return NULL;
    if (!PyArray_Check(res) || PyArray_TYPE((PyArrayObject *)res) != typenum ||
        !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)res) ||
        !PyArray_ISALIGNED((PyArrayObject *)res) || !PyArray_ISNOTSWAPPED((PyArrayObject *)res) ||
        PyArray_SIZE((PyArrayObject *)res) != run->batch * run->dim) {
        Py_DECREF(res);
        PyErr_SetString(PyExc_TypeError,
                        "internal: the score callback must return a native, aligned, "
                        "C-contiguous array of the state's dtype and size");
        return NULL;
    }
    if (run->check_finite && run->stop_on_nonfinite && !all_finite((PyArrayObject *)res)) {
        /* the callback's reporter raises with the step, time and index */
        PyObject *ret = PyObject_CallMethod(run->callback, "nonfinite_error", "LO", (long long)r, res);
        Py_XDECREF(ret);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_FloatingPointError, "the score returned a non-finite value");
        Py_DECREF(res);
        return NULL;
    }
    return (PyArrayObject *)res;
}

/*
 * Python scores: the master calls the score once per score row (with the
 * GIL), then every thread applies the row to blocks it claims.
 *
 * The other threads must not spin while the callback runs, nor may the
 * master wait for a thread that is not running. An OpenMP barrier does both
 * (GNU OpenMP's waiting threads spin some 300,000 iterations before they
 * sleep, about as long as a small callback), and on a busy machine a
 * 1,000-step run on 10,000 rows took seconds with 2 threads against 36 ms
 * with one. So the others sleep on a condition variable until the master
 * publishes a row, and the blocks of a row go to whichever thread claims
 * them first (an atomic counter): the master never waits for a thread that
 * has not woken up, only for blocks already being worked on.
 */
typedef struct {
    int64_t row;           /* the row open for work; n_rows when finished */
    const void *score;     /* its score (the whole batch) */
    int64_t next_save;     /* the first save entry not yet written */
} row_task;

static void
run_claimed_blocks(dsde_run *run, const dsde_table *tb, const row_task *task, const regs *rg,
                   workspace *ws, int64_t *next_block, int64_t *blocks_done, int64_t n_blocks,
                   dsde_pool *pool)
{
    int64_t r = task->row, end = (r + 1) * n_blocks;
    int64_t g = __atomic_load_n(next_block, __ATOMIC_SEQ_CST);
    while (g < end) {
        if (!__atomic_compare_exchange_n(next_block, &g, g + 1, 0, __ATOMIC_SEQ_CST,
                                         __ATOMIC_SEQ_CST))
            continue; /* g now holds the current value */
        int64_t i0 = (g - r * n_blocks) * run->block_rows;
        int64_t i1 = i0 + run->block_rows < run->batch ? i0 + run->block_rows : run->batch;
        if (apply_row(run, tb, r, i0, i1, rg, ws->tmp, ws->work, task->score, pool, 0))
            note_nonfinite(run, r);
        save_block(run, r, task->next_save, i0, i1);
        __atomic_add_fetch(blocks_done, 1, __ATOMIC_SEQ_CST);
        g = __atomic_load_n(next_block, __ATOMIC_SEQ_CST);
    }
}

#ifdef _OPENMP
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t opened;
    row_task task;
} row_gate;
#define ROW_GATE_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {-1, NULL, 0}}

static void
gate_publish(row_gate *gate, const row_task *task)
{
    pthread_mutex_lock(&gate->lock);
    gate->task = *task;
    pthread_cond_broadcast(&gate->opened);
    pthread_mutex_unlock(&gate->lock);
}

/* Sleep until a row after `seen` is published; a copy of its task. */
static row_task
gate_next(row_gate *gate, int64_t seen)
{
    pthread_mutex_lock(&gate->lock);
    while (gate->task.row <= seen)
        pthread_cond_wait(&gate->opened, &gate->lock);
    row_task task = gate->task;
    pthread_mutex_unlock(&gate->lock);
    return task;
}

static void
gate_free(row_gate *gate)
{
    pthread_mutex_destroy(&gate->lock);
    pthread_cond_destroy(&gate->opened);
}
#else /* one thread: nobody waits */
typedef int row_gate;
#define ROW_GATE_INIT 0
#define gate_publish(gate, task) ((void)(gate), (void)(task))
#define gate_free(gate) ((void)(gate))
#endif

static int
drive_rows(dsde_run *run, const dsde_table *tb)
{
    dsde_pool pool = {.saved = NULL, .stop = DSDE_OK, .threads = 1};
    int64_t n_blocks = run->batch / run->block_rows + (run->batch % run->block_rows != 0);
    int nt = run->num_threads < 1 ? 1 : run->num_threads;
    PyArrayObject *score = NULL; /* owned by the master, GIL needed to drop */
    row_gate gate = ROW_GATE_INIT;
    int64_t next_block = 0, blocks_done = 0;
    /* The registers are whole-batch arrays; only the master changes where a
     * noise register points, between rows, before it publishes the next. */
    regs rg;
    regs_init(&rg, run->registers, 1);

    /* block numbers count across rows: row r owns [r n_blocks, (r+1) n_blocks) */
    if (tb->n_rows > INT64_MAX / n_blocks - 1) {
        PyErr_SetString(PyExc_MemoryError, "diffsde: too many table rows x blocks for one run");
        return -1;
    }
    nt = dsde_thread_cap(nt);
    if (nt > n_blocks)
        nt = (int)n_blocks;
    pool.threads = nt;

    dsde_pool_arm(&pool);
    pool.saved = PyEval_SaveThread();
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int master = dsde_thread_index() == 0;
        size_t bytes = 0;
        workspace *ws = workspace_new(run, tb, &bytes);
        if (ws == NULL)
            dsde_pool_stop_nomem(&pool, bytes);
#pragma omp barrier
        if (master && ws != NULL) {
            row_task task = {0, NULL, save_block(run, -1, 0, 0, run->batch)};
            for (int64_t r = 0; r < tb->n_rows && !dsde_pool_stopped(&pool); r++) {
                task.row = r;
                task.score = NULL;
                note_alias(run, tb, r, &rg);
                if (tb->kind[r] == DSDE_ROW_SCORE) {
                    PyEval_RestoreThread(pool.saved);
                    Py_XDECREF(score);
                    score = call_python_score(run, r);
                    task.score = score == NULL ? NULL : PyArray_DATA(score);
                    pool.saved = PyEval_SaveThread();
                    if (score == NULL) {
                        dsde_pool_stop(&pool, DSDE_STOP_PYTHON);
                        break;
                    }
                }
                if (nt > 1)
                    gate_publish(&gate, &task);
                run_claimed_blocks(run, tb, &task, &rg, ws, &next_block, &blocks_done,
                                   n_blocks, &pool);
                /* the row is done everywhere before the next score reads it */
                int64_t target = (r + 1) * n_blocks;
                while (__atomic_load_n(&blocks_done, __ATOMIC_SEQ_CST) < target)
                    sched_yield();
                while (task.next_save < run->n_save && run->save_rows[task.next_save] == r)
                    task.next_save++;
                if (run->first_nonfinite_row >= 0 && run->stop_on_nonfinite)
                    dsde_pool_stop(&pool, DSDE_STOP_NONFINITE);
                dsde_poll(&pool, 1);
            }
        }
#ifdef _OPENMP
        if (master && nt > 1) {
            row_task finished = {tb->n_rows, NULL, 0};
            gate_publish(&gate, &finished);
        }
        if (!master && ws != NULL) {
            for (int64_t seen = -1;;) {
                row_task task = gate_next(&gate, seen);
                if (task.row >= tb->n_rows)
                    break;
                seen = task.row;
                run_claimed_blocks(run, tb, &task, &rg, ws, &next_block, &blocks_done,
                                   n_blocks, &pool);
            }
        }
#endif
        if (ws != NULL)
            workspace_free(ws);
    }
    PyEval_RestoreThread(pool.saved);
    Py_XDECREF(score);
    gate_free(&gate);
    return dsde_raise_for_stop(&pool);
}

int
dsde_drive(dsde_run *run, const dsde_table *table)
{
    run->first_nonfinite_row = -1;
    if (run->batch == 0 || run->dim == 0)
        return 0;
    if (run->block_rows > run->batch)
        run->block_rows = run->batch;
    if (run->block_rows > (INT64_MAX / 8) / run->dim) {
        PyErr_SetString(PyExc_MemoryError, "diffsde: block_rows x dim is too large");
        return -1;
    }
    if (run->score.kind == DSDE_SCORE_PYTHON)
        return drive_rows(run, table);
    return drive_blocks(run, table);
}
