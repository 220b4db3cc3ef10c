/*
 * Known answers of diffsde's C engine, without Python: the pure-C driver that
 * tools/arm64_check.sh builds natively (every SIMD path, with and without
 * OpenMP) and for aarch64 (run under qemu-user), comparing what it prints
 * with tools/arm64/expected.txt bit for bit.
 *
 *     kat CASES [PATH]    everything below on SIMD path PATH (default: the
 *                         best this CPU has), printed to stdout
 *     kat --paths         the SIMD paths this CPU runs, one a line
 *
 * It prints, as hexadecimal bit patterns:
 *   - Philox4x32-10 on Random123's known-answer vectors (also checked here
 *     against the published words), the uniforms of rng.h;
 *   - the Box-Muller transform of edge words, float64 and float32;
 *   - normals of a few (key, stream, k, j0) ranges, both element types, and
 *     a 64-bit FNV-1a digest of 2^20 of each;
 *   - for each case of CASES (tools/arm64/make_cases.py: a step table built
 *     by diffsde's methods, a built-in score, a state and a key): the score
 *     evaluated on the state at the case's (m, s) pairs, and the state after
 *     the table is run through dsde_drive, the engine module.c drives.
 * Each case also runs in blocks of 5 and 9 rows on 3 and 2 threads, and each
 * score in blocks of 5 rows; those must give the bits of the single-block
 * run, else the driver says so on stderr and exits with status 1.
 *
 * The engine's sources include <Python.h> for the GIL and errors; this
 * driver compiles them against the stand-in of tools/arm64/nopython/.
 */
#include "driver.h"
#include "normal.h"
#include "rng.h"
#include "scores.h"
#include "simd.h"
#include "step.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *dsde_nopy_error_message(void);

static int failures = 0;

static void
fail(const char *what, const char *name)
{
    fprintf(stderr, "kat: %s: %s\n", name, what);
    failures++;
}

static void *
xmalloc(size_t bytes)
{
    void *p = malloc(bytes > 0 ? bytes : 1);
    if (p == NULL) {
        fprintf(stderr, "kat: out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    return p;
}

static uint64_t
bits64(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static uint32_t
bits32(float v)
{
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

/* `n` values of element type `f32` (else double) at `p`, `per_line` a line,
 * each line headed by `label` and the index of its first value. */
static void
print_values(const char *label, const void *p, int f32, int64_t n, int64_t per_line)
{
    for (int64_t i = 0; i < n; i++) {
        if (i % per_line == 0)
            printf("%s[%" PRId64 "]:", label, i);
        if (f32)
            printf(" %08" PRIx32, bits32(((const float *)p)[i]));
        else
            printf(" %016" PRIx64, bits64(((const double *)p)[i]));
        if (i % per_line == per_line - 1 || i == n - 1)
            printf("\n");
    }
}

/* ---- RNG and the normal transform --------------------------------------- */

static void
philox_known_answers(void)
{
    /* Random123's kat_vectors for philox4x32_10: counter, key, output */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8},
        {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF,
         0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD},
        {0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344, 0xA4093822, 0x299F31D0,
         0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1},
    };
    for (int i = 0; i < 3; i++) {
        dsde_philox_ctr c = {{kat[i][0], kat[i][1], kat[i][2], kat[i][3]}};
        dsde_philox_key k = {{kat[i][4], kat[i][5]}};
        dsde_philox_ctr out = dsde_philox4x32_10(c, k);
        printf("philox[%d]: %08" PRIx32 " %08" PRIx32 " %08" PRIx32 " %08" PRIx32 "\n", i,
               out.v[0], out.v[1], out.v[2], out.v[3]);
        if (memcmp(out.v, &kat[i][6], sizeof out.v) != 0)
            fail("differs from Random123's known answer", "philox");
    }
    double u[16];
    dsde_uniform_fill_f64(dsde_key_from_u64(UINT64_C(0x0123456789ABCDEF)), 1, 7, 3, 16, u);
    print_values("uniform_f64", u, 0, 16, 4);
}

static void
box_muller_edges(void)
{
    /* words at the edges of the 53- and 32-bit integers behind u1 and u2
     * (tests/test_rng.py's EDGE_WORDS) */
    static const uint32_t edge[] = {0,          1,          0x7FF,      0x800,      0x7FFFFFFF,
                                    0x80000000, 0xFFFFF7FF, 0xFFFFF800, 0xFFFFFFFE, 0xFFFFFFFF};
    const int n = (int)(sizeof edge / sizeof edge[0]);
    for (int a = 0; a < n; a++) {
        for (int b = 0; b < n; b++) {
            const uint32_t w[4] = {edge[a], edge[b], edge[b], edge[a]};
            double z[2];
            float zf[4];
            dsde_box_muller_f64(w, z);
            dsde_box_muller_f32(w, zf);
            printf("box_muller[%d,%d]: %016" PRIx64 " %016" PRIx64 " | %08" PRIx32 " %08" PRIx32
                   " %08" PRIx32 " %08" PRIx32 "\n", a, b, bits64(z[0]), bits64(z[1]),
                   bits32(zf[0]), bits32(zf[1]), bits32(zf[2]), bits32(zf[3]));
        }
    }
}

/* 64-bit FNV-1a of n bytes. */
static uint64_t
fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = UINT64_C(0xCBF29CE484222325);
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= UINT64_C(0x100000001B3);
    }
    return h;
}

static void
normals(void)
{
    /* (key, stream, k, j0, n): the golden values of tests/test_rng.py, its
     * twin ranges, and a range over both ends of the stream numbers */
    static const struct {
        uint64_t key;
        uint32_t stream, k;
        uint64_t j0;
        int64_t n;
    } ranges[] = {
        {0, 1, 0, 0, 8},
        {UINT64_C(0x0123456789ABCDEF), 0, 5, 1, 37},
        {UINT64_C(0xFEDCBA9876543210), 0xFFFFFFFFu, 0xFFFFFFFFu, 3, 50},
        {UINT64_C(0x9E3779B97F4A7C15), DSDE_STREAM_EXTRA + 3, 17, UINT64_C(1) << 40, 21},
    };
    char label[160];
    double z[64];
    float zf[64];
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        dsde_philox_key key = dsde_key_from_u64(ranges[i].key);
        dsde_normal_fill_f64(key, ranges[i].stream, ranges[i].k, ranges[i].j0, ranges[i].n, z);
        dsde_normal_fill_f32(key, ranges[i].stream, ranges[i].k, ranges[i].j0, ranges[i].n, zf);
        snprintf(label, sizeof label, "normal_f64(%016" PRIx64 ",%" PRIu32 ",%" PRIu32 ",%" PRIu64
                 ")", ranges[i].key, ranges[i].stream, ranges[i].k, ranges[i].j0);
        print_values(label, z, 0, ranges[i].n, 4);
        snprintf(label, sizeof label, "normal_f32(%016" PRIx64 ",%" PRIu32 ",%" PRIu32 ",%" PRIu64
                 ")", ranges[i].key, ranges[i].stream, ranges[i].k, ranges[i].j0);
        print_values(label, zf, 1, ranges[i].n, 8);
    }
    /* 2^20 normals of each type from an odd j0: the vector loops, and a
     * partial first and last block */
    const int64_t n = INT64_C(1) << 20;
    double *big = xmalloc((size_t)n * sizeof(double));
    dsde_philox_key key = dsde_key_from_u64(20240601);
    dsde_normal_fill_f64(key, DSDE_STREAM_INITIAL, 0, 3, n, big);
    printf("normal_f64 digest of 2^20 from j0 = 3: %016" PRIx64 "\n",
           fnv1a(big, (size_t)n * sizeof(double)));
    dsde_normal_fill_f32(key, DSDE_STREAM_INITIAL, 0, 3, n, (float *)big);
    printf("normal_f32 digest of 2^20 from j0 = 3: %016" PRIx64 "\n",
           fnv1a(big, (size_t)n * sizeof(float)));
    free(big);
}

/* ---- cases: text fields ``name count value ...`` ------------------------ */

#define MAX_FIELDS 32

typedef struct {
    char name[96];
    int64_t n;
    double *v;      /* the values as doubles (hexadecimal floats are exact) */
    char first[96]; /* the first value as written */
} field;

typedef struct {
    char name[96];
    int n_fields;
    field f[MAX_FIELDS];
} kase;

static void
case_free(kase *c)
{
    for (int i = 0; i < c->n_fields; i++)
        free(c->f[i].v);
    c->n_fields = 0;
}

/* 1 when a case was read, 0 at the end of the file; exits on a bad file. */
static int
case_read(FILE *in, kase *c)
{
    char tok[96];
    c->n_fields = 0;
    if (fscanf(in, "%95s", tok) != 1)
        return 0;
    if (strcmp(tok, "case") != 0 || fscanf(in, "%95s", c->name) != 1)
        goto bad;
    for (;;) {
        if (fscanf(in, "%95s", tok) != 1)
            goto bad;
        if (strcmp(tok, "end") == 0)
            return 1;
        if (c->n_fields == MAX_FIELDS)
            goto bad;
        field *f = &c->f[c->n_fields++];
        snprintf(f->name, sizeof f->name, "%s", tok);
        f->first[0] = '\0';
        if (fscanf(in, "%" SCNd64, &f->n) != 1 || f->n < 0)
            goto bad;
        f->v = xmalloc((size_t)f->n * sizeof(double));
        for (int64_t i = 0; i < f->n; i++) {
            if (fscanf(in, "%95s", tok) != 1)
                goto bad;
            if (i == 0)
                snprintf(f->first, sizeof f->first, "%s", tok);
            f->v[i] = strtod(tok, NULL);
        }
    }
bad:
    fprintf(stderr, "kat: the cases file is malformed near \"%s\" (case %s)\n", tok, c->name);
    exit(2);
}

static const field *
get(const kase *c, const char *name, int64_t n)
{
    for (int i = 0; i < c->n_fields; i++) {
        if (strcmp(c->f[i].name, name) == 0) {
            if (n >= 0 && c->f[i].n != n)
                break;
            return &c->f[i];
        }
    }
    fprintf(stderr, "kat: case %s has no field %s of %" PRId64 " values\n", c->name, name, n);
    exit(2);
}

/* An int32 / int64 copy of a field. */
static int32_t *
ints32(const field *f)
{
    int32_t *p = xmalloc((size_t)f->n * sizeof(int32_t));
    for (int64_t i = 0; i < f->n; i++)
        p[i] = (int32_t)f->v[i];
    return p;
}

static int64_t *
ints64(const field *f)
{
    int64_t *p = xmalloc((size_t)f->n * sizeof(int64_t));
    for (int64_t i = 0; i < f->n; i++)
        p[i] = (int64_t)f->v[i];
    return p;
}

/* The case's built-in score; its arrays point into the case. */
static dsde_builtin_score
case_score(const kase *c, int64_t dim)
{
    dsde_builtin_score sc;
    memset(&sc, 0, sizeof sc);
    sc.kind = (int)get(c, "score_kind", 1)->v[0];
    sc.dim = dim;
    if (sc.kind == DSDE_SCORE_LINEAR) {
        sc.mu = get(c, "mu", dim)->v;
        sc.var0 = get(c, "var0", dim)->v;
    }
    else if (sc.kind == DSDE_SCORE_MIXTURE) {
        const field *lw = get(c, "log_weights", -1), *vec = get(c, "vectors", -1);
        sc.n_components = lw->n;
        sc.log_weights = lw->v;
        sc.means = get(c, "means", lw->n * dim)->v;
        sc.lambdas = get(c, "lambdas", lw->n * dim)->v;
        sc.vectors = vec->n > 0 ? get(c, "vectors", lw->n * dim * dim)->v : NULL;
        sc.uniform = get(c, "uniform", lw->n)->v;
    }
    else if (sc.kind == DSDE_SCORE_EMPIRICAL) {
        const field *pts = get(c, "points", -1);
        sc.n_points = pts->n / dim;
        sc.points = pts->v;
        sc.points_t = get(c, "points_t", (sc.n_points + 7) / 8 * 8 * dim)->v;
        sc.sq_norms = get(c, "sq_norms", (sc.n_points + 7) / 8 * 8)->v;
        sc.center = get(c, "center", dim)->v;
    }
    else if (sc.kind != DSDE_SCORE_NONE) {
        fprintf(stderr, "kat: case %s: score kind %d is not built in\n", c->name, sc.kind);
        exit(2);
    }
    return sc;
}

/* out = the score at `rows` rows of x, in blocks of `block` rows. */
static void
score_blocks(const dsde_builtin_score *sc, int f32, double m, double s, const void *x,
             int64_t rows, int64_t block, void *out)
{
    const size_t item = f32 ? sizeof(float) : sizeof(double);
    double *work = xmalloc((size_t)(dsde_score_work_size(sc, block) + 1) * sizeof(double));
    dsde_pool pool = {.saved = NULL, .stop = DSDE_OK, .threads = 1};
    for (int64_t r0 = 0; r0 < rows; r0 += block) {
        int64_t n = rows - r0 < block ? rows - r0 : block;
        const char *xr = (const char *)x + (size_t)(r0 * sc->dim) * item;
        char *orow = (char *)out + (size_t)(r0 * sc->dim) * item;
        if (f32)
            dsde_score_f32(sc, m, s, (const float *)xr, n, (float *)orow, work, &pool, 0);
        else
            dsde_score_f64(sc, m, s, (const double *)xr, n, (double *)orow, work, &pool, 0);
    }
    free(work);
}

/* The case's state after its table, run on `threads` threads in blocks of
 * `block_rows` rows; the first non-finite row, or -1. */
static int64_t
case_run(const kase *c, const dsde_builtin_score *sc, void *x, int threads, int64_t block_rows)
{
    const field *shape = get(c, "shape", 2), *tab = get(c, "table", 3);
    const int64_t rows = (int64_t)tab->v[0], width = (int64_t)tab->v[1];
    dsde_table table;
    dsde_run run;
    memset(&table, 0, sizeof table);
    memset(&run, 0, sizeof run);
    table.n_rows = rows;
    table.width = (int)width;
    table.n_registers = (int)tab->v[2];
    int32_t *kind = ints32(get(c, "kind", rows)), *dst = ints32(get(c, "dst", rows));
    int32_t *src = ints32(get(c, "src", rows * width));
    int64_t *interval = ints64(get(c, "interval", rows)), *stream = ints64(get(c, "stream", rows));
    table.kind = kind, table.dst = dst, table.src = src;
    table.interval = interval, table.stream = stream;
    table.w = get(c, "w", rows * width)->v;
    table.t = get(c, "t", rows)->v;
    table.m = get(c, "m", rows)->v;
    table.sd = get(c, "sd", rows)->v;

    run.dtype = strcmp(get(c, "dtype", 1)->first, "f32") == 0 ? DSDE_F32 : DSDE_F64;
    run.batch = (int64_t)shape->v[0];
    run.dim = (int64_t)shape->v[1];
    run.x = x;
    run.key = strtoull(get(c, "key", 1)->first, NULL, 0);
    run.score = *sc;
    run.check_finite = 1;
    run.stop_on_nonfinite = 1;
    run.num_threads = threads;
    run.block_rows = block_rows;
    if (dsde_table_check(&table, &run) < 0 || dsde_drive(&run, &table) < 0) {
        fprintf(stderr, "kat: case %s: %s\n", c->name, dsde_nopy_error_message());
        exit(2);
    }
    free(kind), free(dst), free(src), free(interval), free(stream);
    return run.first_nonfinite_row;
}

static void
run_case(const kase *c)
{
    const field *shape = get(c, "shape", 2);
    const int64_t batch = (int64_t)shape->v[0], dim = (int64_t)shape->v[1], n = batch * dim;
    const int f32 = strcmp(get(c, "dtype", 1)->first, "f32") == 0;
    const size_t item = f32 ? sizeof(float) : sizeof(double), bytes = (size_t)n * item;
    const field *x0 = get(c, "x", n), *evals = get(c, "evals", -1);
    const dsde_builtin_score sc = case_score(c, dim);
    void *x = xmalloc(bytes), *other = xmalloc(bytes);
    char label[160];
    for (int64_t i = 0; i < n; i++) {
        if (f32)
            ((float *)x)[i] = (float)x0->v[i]; /* exact: written from float32 values */
        else
            ((double *)x)[i] = x0->v[i];
    }
    printf("case %s\n", c->name);

    /* the score on the initial state: one block (tiles of up to 64 rows),
     * then blocks of 5 rows (the one-row kernels), which must agree */
    for (int64_t e = 0; e + 1 < evals->n; e += 2) {
        const double m = evals->v[e], s = evals->v[e + 1];
        void *g = xmalloc(bytes);
        score_blocks(&sc, f32, m, s, x, batch, batch, g);
        score_blocks(&sc, f32, m, s, x, batch, 5, other);
        snprintf(label, sizeof label, "%s score %" PRId64 " (m = %a, s = %a)", c->name, e / 2, m,
                 s);
        if (memcmp(g, other, bytes) != 0)
            fail("the score in blocks of 5 rows differs from one block", label);
        print_values(label, g, f32, n, dim);
        free(g);
    }

    /* the run: one block on one thread, then other blocks and threads */
    void *start = xmalloc(bytes);
    memcpy(start, x, bytes);
    int64_t bad = case_run(c, &sc, x, 1, batch);
    static const struct {
        int threads;
        int64_t block_rows;
    } others[] = {{3, 5}, {2, 9}};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        memcpy(other, start, bytes);
        int64_t bad_other = case_run(c, &sc, other, others[i].threads, others[i].block_rows);
        snprintf(label, sizeof label, "%s run on %d threads in blocks of %" PRId64 " rows",
                 c->name, others[i].threads, others[i].block_rows);
        if (memcmp(x, other, bytes) != 0 || bad_other != bad)
            fail("differs from the run in one block on one thread", label);
    }
    printf("%s first non-finite row: %" PRId64 "\n", c->name, bad);
    snprintf(label, sizeof label, "%s x", c->name);
    print_values(label, x, f32, n, dim);
    free(x), free(other), free(start);
}

int
main(int argc, char **argv)
{
    dsde_simd_init();
    if (argc == 2 && strcmp(argv[1], "--paths") == 0) {
        for (int p = 0; p < dsde_simd_count(); p++)
            if (dsde_simd_supported(p))
                printf("%s\n", dsde_simd_name(p));
        return 0;
    }
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: kat CASES [PATH]  |  kat --paths\n");
        return 2;
    }
    if (argc == 3 && dsde_simd_select(argv[2]) < 0) {
        fprintf(stderr, "kat: SIMD path \"%s\" is unknown or this CPU lacks it\n", argv[2]);
        return 2;
    }
    FILE *in = fopen(argv[1], "r");
    if (in == NULL) {
        perror(argv[1]);
        return 2;
    }
    philox_known_answers();
    box_muller_edges();
    normals();
    kase c;
    while (case_read(in, &c)) {
        run_case(&c);
        case_free(&c);
    }
    fclose(in);
    if (failures)
        fprintf(stderr, "kat: %d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
