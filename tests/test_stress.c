/*
 * test_stress.c - eight threads share one model, each with its own session
 * (alternately 1 and 2 worker threads), and repeatedly describe their own
 * patches and match them with both methods (MN_MATCH_L2 defaults and the
 * MN_MATCH_METRIC preset) for up to 3 seconds or 200 rounds each. Every
 * result must be bit-identical to the single-threaded run computed first.
 * Run under ThreadSanitizer in CI (scripts/test.sh --tsan).
 */
#define _POSIX_C_SOURCE 200809L
#include "matchnet.h"
#include "check.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define NTHREADS 8
#define NQ 4 /* query patches per thread */
#define NT 5 /* train patches per thread: the queries shuffled, with noise, and one more */
#define MAX_ROUNDS 200
#define MAX_SECONDS 3.0

static const mn_model *model;
static size_t D;
static int P;

typedef struct job {
    int id;
    uint8_t *patches;              /* NQ + NT patches */
    float *want_desc;              /* (NQ + NT) * D */
    mn_dmatch want[2][NQ];         /* [L2, METRIC] */
    size_t want_n[2];
    /* written by the worker */
    int rounds, failures;
    char msg[512];
} job;

static pthread_barrier_t start;
static double t_start;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint32_t next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Smooth random blobs, so that descriptors are informative, plus noise. */
static void make_patches(job *j)
{
    uint32_t s = 1000u + 7919u * (uint32_t)j->id;
    const size_t pp = (size_t)P * P;
    for (int i = 0; i < NQ; i++) {
        double fx = 0.05 + 0.3 * (next(&s) % 1000) / 1000.0, fy = 0.05 + 0.3 * (next(&s) % 1000) / 1000.0;
        double ph = (next(&s) % 1000) / 100.0;
        for (int y = 0; y < P; y++)
            for (int x = 0; x < P; x++)
                j->patches[i * pp + (size_t)y * P + x] =
                    (uint8_t)(128 + 100 * sin(fx * x + ph) * cos(fy * y - ph) + (int)(next(&s) % 9) - 4);
    }
    /* Train: query (i * 5 + 2) % NQ with +-3 noise, then one unrelated patch. */
    for (int i = 0; i < NQ; i++) {
        const uint8_t *src = j->patches + (size_t)((i * 5 + 2) % NQ) * pp;
        uint8_t *dst = j->patches + (size_t)(NQ + i) * pp;
        for (size_t k = 0; k < pp; k++) {
            int v = src[k] + (int)(next(&s) % 7) - 3;
            dst[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    for (size_t k = 0; k < pp; k++)
        j->patches[(size_t)(NQ + NQ) * pp + k] = (uint8_t)next(&s);
}

static mn_match_params method_params(int metric)
{
    return metric ? mn_match_params_preset(MN_MATCH_METRIC) : mn_match_params_default();
}

/* One round: describe, then match with both methods. */
static mn_status round_run(mn_session *s, const uint8_t *patches, float *desc, mn_dmatch out[2][NQ], size_t n[2])
{
    mn_status st = mn_describe_u8(s, patches, NQ + NT, desc);
    for (int m = 0; m < 2 && st == MN_OK; m++) {
        mn_match_params p = method_params(m);
        st = mn_match(s, desc, NQ, desc + (size_t)NQ * D, NT, &p, out[m], NQ, &n[m]);
    }
    return st;
}

static void *worker(void *arg)
{
    job *j = arg;
    mn_session_params sp = mn_session_params_default();
    sp.num_threads = 1 + (j->id & 1);
    mn_session *s = NULL;
    float *desc = malloc(sizeof(float) * (NQ + NT) * D);
    mn_status st = mn_session_create(model, &sp, &s);
    if (st != MN_OK || !desc) {
        snprintf(j->msg, sizeof j->msg, "setup: %s", st != MN_OK ? mn_last_error() : "out of memory");
        j->failures++;
    }
    pthread_barrier_wait(&start);
    while (!j->failures && j->rounds < MAX_ROUNDS && (j->rounds < 2 || now_s() - t_start < MAX_SECONDS)) {
        mn_dmatch got[2][NQ];
        size_t n[2] = {0, 0};
        memset(desc, 0, sizeof(float) * (NQ + NT) * D);
        if ((st = round_run(s, j->patches, desc, got, n)) != MN_OK) {
            snprintf(j->msg, sizeof j->msg, "round %d: %s: %s", j->rounds, mn_status_str(st), mn_last_error());
            j->failures++;
            break;
        }
        if (memcmp(desc, j->want_desc, sizeof(float) * (NQ + NT) * D) != 0) {
            size_t where;
            double e = max_abs_diff(desc, j->want_desc, (NQ + NT) * D, &where);
            snprintf(j->msg, sizeof j->msg, "round %d: descriptor value %zu (patch %zu) differs by %.3g", j->rounds,
                     where, where / D, e);
            j->failures++;
        }
        for (int m = 0; m < 2; m++)
            if (n[m] != j->want_n[m] || memcmp(got[m], j->want[m], n[m] * sizeof(mn_dmatch)) != 0) {
                snprintf(j->msg, sizeof j->msg, "round %d: %s matches differ (%zu, want %zu)", j->rounds,
                         m ? "MN_MATCH_METRIC" : "MN_MATCH_L2", n[m], j->want_n[m]);
                j->failures++;
            }
        j->rounds++;
    }
    free(desc);
    mn_session_free(s);
    return NULL;
}

int main(void)
{
    mn_model *m = NULL;
    CHECK_OK(mn_model_load_file(MN_SOURCE_DIR "/models/matchnet.mnw", &m));
    if (!m)
        return check_summary("test_stress");
    model = m;
    D = mn_model_descriptor_dim(m);
    P = mn_model_patch_size(m);

    /* The single-threaded reference, one session with one thread. */
    static job jobs[NTHREADS];
    mn_session_params sp = mn_session_params_default();
    sp.num_threads = 1;
    mn_session *s = NULL;
    CHECK_OK(mn_session_create(m, &sp, &s));
    size_t total_matches[2] = {0, 0};
    for (int t = 0; t < NTHREADS && s; t++) {
        job *j = &jobs[t];
        j->id = t;
        j->patches = malloc((size_t)(NQ + NT) * P * P);
        j->want_desc = malloc(sizeof(float) * (NQ + NT) * D);
        if (!j->patches || !j->want_desc) {
            CHECK(0, "out of memory");
            break;
        }
        make_patches(j);
        CHECK_OK(round_run(s, j->patches, j->want_desc, j->want, j->want_n));
        total_matches[0] += j->want_n[0];
        total_matches[1] += j->want_n[1];
    }
    mn_session_free(s);
    /* Shuffled noisy copies must mostly be found, or the comparison would be vacuous. */
    CHECK(total_matches[0] >= NTHREADS * NQ / 2, "reference found only %zu L2 matches", total_matches[0]);
    CHECK(total_matches[1] >= NTHREADS * NQ / 2, "reference found only %zu metric matches", total_matches[1]);
    printf("reference: %zu L2 and %zu metric matches over %d threads' sets\n", total_matches[0], total_matches[1],
           NTHREADS);

    if (check_failures == 0) {
        pthread_t tid[NTHREADS];
        int started = 0;
        pthread_barrier_init(&start, NULL, NTHREADS + 1);
        for (int t = 0; t < NTHREADS; t++) {
            if (pthread_create(&tid[t], NULL, worker, &jobs[t]) != 0) {
                CHECK(0, "pthread_create %d", t);
                break;
            }
            started++;
        }
        if (started == NTHREADS) {
            t_start = now_s();
            pthread_barrier_wait(&start);
            for (int t = 0; t < NTHREADS; t++) {
                pthread_join(tid[t], NULL);
                CHECK(jobs[t].failures == 0, "thread %d (%d session threads): %s", t, 1 + (t & 1), jobs[t].msg);
                CHECK(jobs[t].rounds >= 2, "thread %d ran %d rounds", t, jobs[t].rounds);
            }
            int rounds = 0;
            for (int t = 0; t < NTHREADS; t++)
                rounds += jobs[t].rounds;
            printf("%d threads: %d rounds in %.1f s, all identical to the reference\n", NTHREADS, rounds,
                   now_s() - t_start);
        }
        /* With a failed pthread_create the started workers would wait at
         * the barrier forever: report and exit instead of joining. */
        if (started != NTHREADS)
            return check_summary("test_stress");
        pthread_barrier_destroy(&start);
    }
    for (int t = 0; t < NTHREADS; t++) {
        free(jobs[t].patches);
        free(jobs[t].want_desc);
    }
    mn_model_free(m);
    return check_summary("test_stress");
}
