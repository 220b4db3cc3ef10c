/* parallel.h first: it includes Python.h, which must precede system headers. */
#include "parallel.h"
#include "normal.h"
#include <math.h>
#include <string.h>

#include "fastmath.h"
#include "simd.h"

void
dsde_box_muller_f64(const uint32_t w[4], double z[2])
{
    uint64_t a = ((((uint64_t)w[1]) << 32) | w[0]) >> 11;
    uint64_t b = ((((uint64_t)w[3]) << 32) | w[2]) >> 11;
    double r = sqrt(-2.0 * dsde_log_scaled(a + 1, 53));
    double s, c;
    dsde_sincos_turns(b, 53, &s, &c);
    z[0] = r * c;
    z[1] = r * s;
}

void
dsde_box_muller_f32(const uint32_t w[4], float z[4])
{
    for (int pair = 0; pair < 2; pair++) {
        double r = sqrt(-2.0 * dsde_log_scaled((uint64_t)w[2 * pair] + 1, 32));
        double s, c;
        dsde_sincos_turns(w[2 * pair + 1], 32, &s, &c);
        z[2 * pair] = (float)(r * c);
        z[2 * pair + 1] = (float)(r * s);
    }
}

/* Whole blocks go straight to the vector loops; a partial first or last
 * block goes through a small buffer. */
#define DEFINE_NORMAL_FILL(NAME, T, PER_BLOCK, FIELD, FN)                      \
    void NAME(dsde_philox_key key, uint32_t stream, uint32_t k, uint64_t j0,   \
              int64_t n, T *out)                                               \
    {                                                                          \
        const FN blocks = dsde_simd()->FIELD;                                  \
        uint64_t block = j0 / PER_BLOCK;                                       \
        int64_t skip = (int64_t)(j0 % PER_BLOCK), i = 0;                       \
        T tmp[PER_BLOCK];                                                      \
        if (n <= 0)                                                            \
            return;                                                            \
        if (skip) {                                                            \
            blocks(key, stream, k, block++, 1, tmp);                           \
            for (int64_t e = skip; e < PER_BLOCK && i < n; e++)                \
                out[i++] = tmp[e];                                             \
        }                                                                      \
        int64_t whole = (n - i) / PER_BLOCK;                                   \
        blocks(key, stream, k, block, whole, out + i);                         \
        i += whole * PER_BLOCK;                                                \
        block += (uint64_t)whole;                                              \
        if (i < n) {                                                           \
            blocks(key, stream, k, block, 1, tmp);                             \
            for (int64_t e = 0; i < n; e++)                                    \
                out[i++] = tmp[e];                                             \
        }                                                                      \
    }

DEFINE_NORMAL_FILL(dsde_normal_fill_f64, double, DSDE_NORMALS_PER_BLOCK_F64, normal_f64,
                   dsde_normal_blocks_f64_fn)
DEFINE_NORMAL_FILL(dsde_normal_fill_f32, float, DSDE_NORMALS_PER_BLOCK_F32, normal_f32,
                   dsde_normal_blocks_f32_fn)

/* ---- parallel jobs: fill an array, count tails -------------------------- */

#include <stdlib.h>

/* Normals in parallel chunks; each chunk is a fixed range of j, so the
 * result does not depend on the thread count. */
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

static int
run_normal_job(normal_job *job, int num_threads)
{
    int64_t chunks = job->n / NORMAL_CHUNK + (job->n % NORMAL_CHUNK != 0);
    return dsde_run_chunks(&normal_hooks, job, chunks, num_threads);
}

int
dsde_normal_fill_parallel(uint64_t key, uint32_t stream, uint32_t k, uint64_t j0, int64_t n,
                          int f32, void *out, int num_threads)
{
    normal_job job = {key, stream, k, j0, n, f32, out, NULL, 0, NULL};
    return run_normal_job(&job, num_threads);
}

int
dsde_count_tails(uint64_t key, uint32_t stream, uint32_t k, int64_t n, int f32,
                 const double *thresholds, int64_t n_thresholds, int64_t *counts, int num_threads)
{
    normal_job job = {key, stream, k, 0, n, f32, NULL, thresholds, n_thresholds, counts};
    return run_normal_job(&job, num_threads);
}
