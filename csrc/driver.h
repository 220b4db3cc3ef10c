/*
 * The multi-step driver: runs a whole table of steps over a batch.
 *
 * A table row r is one stage (step.h) with scalars a, b, c, the score time t
 * and the marginal (m, s) at t for the built-in scores. Noise for row r is
 * normal j of (key, stream[r], interval[r]) (rng.h), or, for stream 0 when
 * the caller gives a noise array, noise[interval[r], j].
 *
 * Without a Python score the batch is cut into blocks of whole rows and each
 * thread runs every table row on its block while the block sits in cache.
 * With a Python score the loop runs table rows outermost: the master calls
 * the score on the whole batch with the GIL held, then all threads update
 * their blocks. Both orders do identical arithmetic per element, so results
 * are bit-identical for any thread count, block size or batch prefix.
 */
#ifndef DIFFSDE_DRIVER_H
#define DIFFSDE_DRIVER_H

#include "common.h"
#include "scores.h"

typedef struct {
    int64_t n_rows;
    const int32_t *kind;
    const int64_t *interval;
    const int64_t *stream;
    const double *a, *b, *c, *t, *m, *s;
} dsde_table;

typedef struct {
    int dtype;             /* dsde_dtype */
    int64_t batch, dim;    /* the state is (batch, dim), C-contiguous */
    void *x;               /* state, updated in place */
    void *scratch;         /* (batch, dim): Heun's predictor with a Python score */
    uint64_t key;
    const void *noise;     /* (n_noise, batch, dim) or NULL */
    int64_t n_noise;
    const int64_t *save_rows; /* increasing; -1 = the initial state */
    int64_t n_save;
    void *snapshots;       /* (n_save, batch, dim) */
    dsde_builtin_score score;
    PyObject *callback;    /* score kind PYTHON: callback(row, on_scratch) */
    int check_finite;
    int stop_on_nonfinite;
    int num_threads;
    int64_t block_rows;
    /* global index of batch row 0: row i draws the normals of row
     * row_offset + i, so a slice of rows computes as in the whole batch */
    uint64_t row_offset;
    /* result: the first table row after which the state had a non-finite
     * element, or -1 */
    int64_t first_nonfinite_row;
} dsde_run;

/* Call with the GIL held. 0 on success, -1 with a Python exception set. */
int dsde_drive(dsde_run *run, const dsde_table *table);

/* True when row r evaluates the score / draws noise. */
int dsde_row_needs_score(const dsde_table *table, int64_t r);
int dsde_row_needs_noise(const dsde_table *table, int64_t r);

#endif
