/*
 * session.c - sessions, the library's thread settings, mn_blas_info, and
 * splitting work over threads.
 *
 * A call's work (patches or pairs) is cut into contiguous ranges, one per
 * thread; each thread has its own scratch, so threads never share writable
 * memory and results do not depend on the number of threads.
 */
#include "session.h"

#include "common.h"
#include "kernels/blas.h"
#include "kernels/cpu.h"
#include "kernels/isa.h"

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

typedef struct mn_job {
    mn_task_fn task;
    void *ctx;
    mn_scratch *s;
    int thread;
    size_t begin, end;
} mn_job;

static void *mn_job_run(void *arg)
{
    mn_job *j = arg;
    j->task(j->ctx, j->s, j->thread, j->begin, j->end);
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
    job.task = task;
    job.ctx = ctx;
    mn_parallel(s, job, total, grain ? grain : 1);
}

/* ---- the projection buffer ---- */

mn_status mn_session_proj(const char *fn, mn_session *s, size_t na, size_t nb, float **proj_a, float **proj_b)
{
    size_t F = s->model->proj_dim;
    if (na > SIZE_MAX / 2 / sizeof(float) / F || nb > SIZE_MAX / 2 / sizeof(float) / F)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%zu x %zu descriptors is too many", na, nb);
    size_t need = (na + nb) * F;
    if (need > s->proj_cap) {
        float *p = mn_malloc(need * sizeof(float));
        if (!p)
            return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for %zu projections", na + nb);
        mn_free(s->proj);
        s->proj = p;
        s->proj_cap = need;
    }
    *proj_a = s->proj;
    *proj_b = s->proj + na * F;
    return MN_OK;
}
