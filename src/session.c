/*
 * session.c - sessions, argument checks, and splitting work over threads.
 *
 * A call's work (patches or pairs) is cut into contiguous ranges, one per
 * thread; each thread has its own scratch, so threads never share writable
 * memory and results do not depend on the number of threads.
 */
#include "internal.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MN_MAX_THREADS 64

struct mn_session {
    const mn_model *model;
    int threads;
    int reference;
    mn_scratch scratch[MN_MAX_THREADS];
    float *proj;     /* projections for mn_metric_score_pairs/_all */
    size_t proj_cap; /* floats */
};

static int mn_default_threads = 0;

static char mn_blas_line[640];
static pthread_once_t mn_blas_once = PTHREAD_ONCE_INIT;

static void mn_blas_line_make(void)
{
    const mn_cpu *cpu = mn_cpu_get();
    char blas[256];
    mn_blas_describe(blas, sizeof blas);
    snprintf(mn_blas_line, sizeof mn_blas_line,
             "%s; Winograd products: %s; other products (fully connected, metric, matching, small blocks): %s; "
             "tower: %s blocked path",
             blas, cpu->gemm_fixed == MN_KERNEL_BLAS ? "OpenBLAS" : mn_kernel_name(cpu->gemm_fixed),
             mn_kernel_name(cpu->gemm_stable), mn_isa_name(cpu->tower));
}

const char *mn_blas_info(void)
{
    pthread_once(&mn_blas_once, mn_blas_line_make);
    return mn_blas_line;
}

int mn_default_num_threads(void)
{
    if (mn_default_threads > 0)
        return mn_default_threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

mn_status mn_set_num_threads(int n)
{
    if (n < 1 || n > MN_MAX_THREADS)
        return mn_error(MN_ERR_INVALID_ARGUMENT, "mn_set_num_threads", "n = %d, expected 1..%d", n,
                        MN_MAX_THREADS);
    mn_default_threads = n;
    return MN_OK;
}

mn_session_params mn_session_params_default(void)
{
    mn_session_params p;
    memset(&p, 0, sizeof p);
    return p;
}

mn_status mn_session_create(const mn_model *model, const mn_session_params *params,
                            mn_session **out)
{
    static const char fn[] = "mn_session_create";
    if (!out)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "out is NULL");
    *out = NULL;
    if (!model)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "model is NULL");
    mn_session_params p = params ? *params : mn_session_params_default();
    if (p.num_threads < 0 || p.num_threads > MN_MAX_THREADS)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "num_threads = %d, expected 0..%d", p.num_threads,
                        MN_MAX_THREADS);
    mn_session *s = mn_calloc(1, sizeof *s);
    if (!s)
        return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory");
    s->model = model;
    s->threads = p.num_threads ? p.num_threads : mn_default_num_threads();
    s->reference = p.reference != 0;
    /* The library's threads each run their own single-threaded sgemm calls:
     * BLAS threads inside them would contend for the cores, and a BLAS that
     * splits a product differently rounds differently, so results would
     * depend on the thread count. */
    if (mn_blas_get_threads() != 1)
        mn_blas_set_threads(1);
    for (int t = 0; t < s->threads; t++) {
        if (mn_scratch_init(model, &s->scratch[t]) != MN_OK) {
            int threads = s->threads;
            mn_session_free(s);
            return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for %d threads' scratch", threads);
        }
    }
    *out = s;
    return MN_OK;
}

void mn_session_free(mn_session *s)
{
    if (!s)
        return;
    for (int t = 0; t < MN_MAX_THREADS; t++)
        mn_scratch_release(&s->scratch[t]);
    mn_free(s->proj);
    mn_free(s);
}

/* ---- work splitting ---- */

typedef enum { MN_JOB_DESCRIBE, MN_JOB_PROJECT, MN_JOB_PROJECTED, MN_JOB_PLAIN, MN_JOB_TASK } mn_job_kind;

typedef struct mn_job {
    mn_job_kind kind;
    const mn_model *m;
    mn_scratch *s;
    int reference;
    size_t begin, end;
    const uint8_t *px8;
    const float *pxf;
    const float *a, *b;
    mn_side side;
    const mn_pair *pairs;
    float *out;
    mn_task_fn task; /* MN_JOB_TASK */
    void *ctx;
    int thread;
} mn_job;

static void *mn_job_run(void *arg)
{
    mn_job *j = arg;
    switch (j->kind) {
    case MN_JOB_DESCRIBE:
        mn_tower_run(j->m, j->s, j->reference, j->px8, j->pxf, j->begin, j->end, j->out);
        break;
    case MN_JOB_PROJECT:
        mn_metric_run_project(j->m, j->s, j->reference, j->a, j->side, j->begin, j->end, j->out);
        break;
    case MN_JOB_PROJECTED:
        mn_metric_run_projected(j->m, j->s, j->reference, j->a, j->b, j->pairs, j->begin, j->end, j->out);
        break;
    case MN_JOB_PLAIN:
        mn_metric_run_plain(j->m, j->s, j->reference, j->a, j->b, j->pairs, j->begin, j->end, j->out);
        break;
    case MN_JOB_TASK:
        j->task(j->ctx, j->s, j->thread, j->begin, j->end);
        break;
    }
    return NULL;
}

/* Run job over [0, total) in ranges of whole grains, one range per thread.
 * A thread that cannot be started has its range run by the caller. */
static void mn_parallel(mn_session *s, mn_job job, size_t total, size_t grain)
{
    size_t blocks = (total + grain - 1) / grain;
    int nt = blocks < (size_t)s->threads ? (int)blocks : s->threads;
    if (nt <= 1) {
        job.s = &s->scratch[0];
        job.thread = 0;
        job.begin = 0;
        job.end = total;
        mn_job_run(&job);
        return;
    }
    mn_job jobs[MN_MAX_THREADS];
    pthread_t tid[MN_MAX_THREADS];
    int started[MN_MAX_THREADS] = {0};
    size_t per = (blocks + (size_t)nt - 1) / (size_t)nt * grain;
    for (int t = 0; t < nt; t++) {
        jobs[t] = job;
        jobs[t].s = &s->scratch[t];
        jobs[t].thread = t;
        jobs[t].begin = (size_t)t * per < total ? (size_t)t * per : total;
        jobs[t].end = jobs[t].begin + per < total ? jobs[t].begin + per : total;
    }
    for (int t = 1; t < nt; t++)
        started[t] = pthread_create(&tid[t], NULL, mn_job_run, &jobs[t]) == 0;
    mn_job_run(&jobs[0]);
    for (int t = 1; t < nt; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            mn_job_run(&jobs[t]);
    }
}

const mn_model *mn_session_model(const mn_session *s)
{
    return s->model;
}

int mn_session_threads(const mn_session *s)
{
    return s->threads;
}

int mn_session_reference(const mn_session *s)
{
    return s->reference;
}

void mn_session_parallel(mn_session *s, mn_task_fn task, void *ctx, size_t total, size_t grain)
{
    if (total == 0)
        return;
    mn_job job;
    memset(&job, 0, sizeof job);
    job.kind = MN_JOB_TASK;
    job.m = s->model;
    job.task = task;
    job.ctx = ctx;
    mn_parallel(s, job, total, grain ? grain : 1);
}

/* ---- descriptors ---- */

static mn_status mn_describe(const char *fn, mn_session *s, const uint8_t *px8, const float *pxf,
                             size_t n, float *desc)
{
    if (!s)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "session is NULL");
    if (n == 0)
        return MN_OK;
    if (!(px8 || pxf) || !desc)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%s is NULL", desc ? "patches" : "descriptors");
    size_t pp = (size_t)s->model->patch * s->model->patch;
    if (n > SIZE_MAX / sizeof(float) / (pp > s->model->desc_dim ? pp : s->model->desc_dim))
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "n = %zu patches is too large", n);
    /* NaN and infinite pixels come out of the ReLUs and max-pools as
     * ordinary numbers: a plausible descriptor of nothing. */
    for (size_t i = 0; pxf && i < n * pp; i++)
        if (!isfinite(pxf[i]))
            return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "patch %zu: pixel (%zu, %zu) is not finite", i / pp,
                            i % pp % (size_t)s->model->patch, i % pp / (size_t)s->model->patch);
    mn_job job;
    memset(&job, 0, sizeof job);
    job.kind = MN_JOB_DESCRIBE;
    job.m = s->model;
    job.reference = s->reference;
    job.px8 = px8;
    job.pxf = pxf;
    job.out = desc;
    /* Whole blocks per thread: blocks then start at multiples of MN_NB
     * whatever the thread count, each patch takes the same path, and the
     * results are bit-identical for any number of threads. */
    mn_parallel(s, job, n, MN_NB);
    return MN_OK;
}

mn_status mn_describe_u8(mn_session *s, const uint8_t *patches, size_t n, float *desc)
{
    return mn_describe("mn_describe_u8", s, patches, NULL, n, desc);
}

mn_status mn_describe_f32(mn_session *s, const float *patches, size_t n, float *desc)
{
    return mn_describe("mn_describe_f32", s, NULL, patches, n, desc);
}

/* ---- metric ---- */

static mn_status mn_check_pairs(const char *fn, const mn_pair *pairs, size_t npairs, size_t na,
                                size_t nb)
{
    if (!pairs)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "pairs is NULL");
    for (size_t k = 0; k < npairs; k++)
        if (pairs[k].a >= na || pairs[k].b >= nb)
            return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "pair %zu = (%u, %u) is outside %zu x %zu", k,
                            pairs[k].a, pairs[k].b, na, nb);
    return MN_OK;
}

static void mn_project(mn_session *s, const float *desc, size_t n, mn_side side, float *proj)
{
    mn_job job;
    memset(&job, 0, sizeof job);
    job.kind = MN_JOB_PROJECT;
    job.m = s->model;
    job.reference = s->reference;
    job.a = desc;
    job.side = side;
    job.out = proj;
    mn_parallel(s, job, n, 16);
}

static void mn_score(mn_session *s, mn_job_kind kind, const float *a, const float *b,
                     const mn_pair *pairs, size_t npairs, float *prob)
{
    mn_job job;
    memset(&job, 0, sizeof job);
    job.kind = kind;
    job.m = s->model;
    job.reference = s->reference;
    job.a = a;
    job.b = b;
    job.pairs = pairs;
    job.out = prob;
    mn_parallel(s, job, npairs, MN_PAIR_BLOCK);
}

mn_status mn_metric_project(mn_session *s, const float *desc, size_t n, mn_side side, float *proj)
{
    static const char fn[] = "mn_metric_project";
    if (!s)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "session is NULL");
    if (side != MN_SIDE_A && side != MN_SIDE_B)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "side = %d, expected MN_SIDE_A or MN_SIDE_B", (int)side);
    if (n == 0)
        return MN_OK;
    if (!desc || !proj)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%s is NULL", desc ? "projections" : "descriptors");
    mn_project(s, desc, n, side, proj);
    return MN_OK;
}

mn_status mn_metric_score_projected(mn_session *s, const float *proj_a, size_t na,
                                    const float *proj_b, size_t nb, const mn_pair *pairs,
                                    size_t npairs, float *prob)
{
    static const char fn[] = "mn_metric_score_projected";
    if (!s)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "session is NULL");
    if (npairs == 0)
        return MN_OK;
    if (!proj_a || !proj_b || !prob)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !prob ? "prob" : "a projection");
    mn_status st = mn_check_pairs(fn, pairs, npairs, na, nb);
    if (st != MN_OK)
        return st;
    mn_score(s, MN_JOB_PROJECTED, proj_a, proj_b, pairs, npairs, prob);
    return MN_OK;
}

/* Make room for (na + nb) projections in the session. */
static mn_status mn_reserve_proj(const char *fn, mn_session *s, size_t na, size_t nb)
{
    size_t F = s->model->proj_dim;
    if (na > SIZE_MAX / 2 / sizeof(float) / F || nb > SIZE_MAX / 2 / sizeof(float) / F)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%zu x %zu descriptors is too many", na, nb);
    size_t need = (na + nb) * F;
    if (need <= s->proj_cap)
        return MN_OK;
    float *p = mn_malloc(need * sizeof(float));
    if (!p)
        return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for %zu projections", na + nb);
    mn_free(s->proj);
    s->proj = p;
    s->proj_cap = need;
    return MN_OK;
}

static mn_status mn_check_sets(const char *fn, mn_session *s, const float *da, size_t na,
                               const float *db, size_t nb, float *prob)
{
    if (!s)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "session is NULL");
    if (!da || !db || !prob)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !prob ? "prob" : "a descriptor set");
    if (na == 0 || nb == 0)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "descriptor set %s is empty", na == 0 ? "A" : "B");
    return MN_OK;
}

mn_status mn_metric_score_pairs(mn_session *s, const float *da, size_t na, const float *db, size_t nb,
                                const mn_pair *pairs, size_t npairs, float *prob)
{
    static const char fn[] = "mn_metric_score_pairs";
    if (npairs == 0)
        return s ? MN_OK : mn_error(MN_ERR_INVALID_ARGUMENT, fn, "session is NULL");
    mn_status st = mn_check_sets(fn, s, da, na, db, nb, prob);
    if (st == MN_OK)
        st = mn_check_pairs(fn, pairs, npairs, na, nb);
    if (st == MN_OK)
        st = mn_reserve_proj(fn, s, na, nb);
    if (st != MN_OK)
        return st;
    float *pa = s->proj, *pb = s->proj + na * s->model->proj_dim;
    mn_project(s, da, na, MN_SIDE_A, pa);
    mn_project(s, db, nb, MN_SIDE_B, pb);
    mn_score(s, MN_JOB_PROJECTED, pa, pb, pairs, npairs, prob);
    return MN_OK;
}

mn_status mn_metric_score_pairs_plain(mn_session *s, const float *da, size_t na, const float *db,
                                      size_t nb, const mn_pair *pairs, size_t npairs, float *prob)
{
    static const char fn[] = "mn_metric_score_pairs_plain";
    if (npairs == 0)
        return s ? MN_OK : mn_error(MN_ERR_INVALID_ARGUMENT, fn, "session is NULL");
    mn_status st = mn_check_sets(fn, s, da, na, db, nb, prob);
    if (st == MN_OK)
        st = mn_check_pairs(fn, pairs, npairs, na, nb);
    if (st != MN_OK)
        return st;
    mn_score(s, MN_JOB_PLAIN, da, db, pairs, npairs, prob);
    return MN_OK;
}

mn_status mn_metric_score_all(mn_session *s, const float *da, size_t na, const float *db, size_t nb,
                              float *prob)
{
    static const char fn[] = "mn_metric_score_all";
    mn_status st = mn_check_sets(fn, s, da, na, db, nb, prob);
    if (st != MN_OK)
        return st;
    if (na > UINT32_MAX || nb > UINT32_MAX || na > SIZE_MAX / sizeof(mn_pair) / nb)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%zu x %zu pairs is too many", na, nb);
    if ((st = mn_reserve_proj(fn, s, na, nb)) != MN_OK)
        return st;
    mn_pair *pairs = mn_malloc(na * nb * sizeof *pairs);
    if (!pairs)
        return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for %zu pairs", na * nb);
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++) {
            pairs[i * nb + j].a = (uint32_t)i;
            pairs[i * nb + j].b = (uint32_t)j;
        }
    float *pa = s->proj, *pb = s->proj + na * s->model->proj_dim;
    mn_project(s, da, na, MN_SIDE_A, pa);
    mn_project(s, db, nb, MN_SIDE_B, pb);
    mn_score(s, MN_JOB_PROJECTED, pa, pb, pairs, na * nb, prob);
    mn_free(pairs);
    return MN_OK;
}
