/*
 * test_alloc.c - make the n-th allocation fail, for every n, through model
 * load, session creation, describe, metric scoring, patch extraction,
 * affine shapes and matching:
 * each failure must come back as MN_ERR_OUT_OF_MEMORY with a message, with
 * NULL outputs, and leak nothing (checked by LeakSanitizer in the sanitizer
 * build).
 */
#include "common.h"
#include "check.h"

#include <stdint.h>

/* One full run; returns the first failing status (MN_OK if none). */
static mn_status run_once(const char *model_path, const uint8_t *img, int *oom_msg_ok)
{
    mn_model *m = NULL;
    mn_session *s = NULL;
    mn_status st = mn_model_load_file(model_path, &m);
    float *desc = NULL, prob[6];
    uint8_t patches[3 * 64 * 64];
    if (st != MN_OK) {
        *oom_msg_ok = m == NULL && strstr(mn_last_error(), "out of memory") != NULL;
        goto done;
    }
    mn_session_params sp = mn_session_params_default();
    sp.num_threads = 2;
    if ((st = mn_session_create(m, &sp, &s)) != MN_OK) {
        *oom_msg_ok = s == NULL && strstr(mn_last_error(), "out of memory") != NULL;
        goto done;
    }
    mn_keypoint kp[3] = {{50, 50, 10, 0}, {60, 40, 30, 45}, {20, 70, 80, 300}};
    if ((st = mn_extract_patches(img, 100, 100, 100, kp, 3, NULL, patches)) != MN_OK) {
        *oom_msg_ok = strstr(mn_last_error(), "out of memory") != NULL;
        goto done;
    }
    desc = malloc(3 * mn_model_descriptor_dim(m) * sizeof(float));
    if ((st = mn_describe_u8(s, patches, 3, desc)) != MN_OK)
        goto done;
    mn_pair pairs[2] = {{0, 1}, {2, 2}};
    if ((st = mn_metric_score_pairs(s, desc, 3, desc, 3, pairs, 2, prob)) != MN_OK) {
        *oom_msg_ok = strstr(mn_last_error(), "out of memory") != NULL;
        goto done;
    }
    if ((st = mn_metric_score_all(s, desc, 2, desc, 3, prob)) != MN_OK) {
        *oom_msg_ok = strstr(mn_last_error(), "out of memory") != NULL;
        goto done;
    }
    if ((st = mn_describe_keypoints(s, img, 100, 100, 100, kp, 3, NULL, desc)) != MN_OK) {
        *oom_msg_ok = strstr(mn_last_error(), "out of memory") != NULL;
        goto done;
    }
    /* Affine shapes (work areas per thread, pyramid) and their descriptors. */
    mn_affine_keypoint ak[3];
    if ((st = mn_affine_shape_estimate(s, img, 100, 100, 100, kp, 3, NULL, ak, NULL)) != MN_OK) {
        *oom_msg_ok = strstr(mn_last_error(), "out of memory") != NULL;
        goto done;
    }
    if ((st = mn_extract_patches_affine(img, 100, 100, 100, ak, 3, NULL, patches)) != MN_OK) {
        *oom_msg_ok = strstr(mn_last_error(), "out of memory") != NULL;
        goto done;
    }
    if ((st = mn_describe_keypoints_affine(s, img, 100, 100, 100, ak, 3, NULL, desc)) != MN_OK) {
        *oom_msg_ok = strstr(mn_last_error(), "out of memory") != NULL;
        goto done;
    }
    mn_dmatch matches[3];
    size_t nm = 0;
    mn_match_params mp = mn_match_params_default();
    for (int method = 0; method < 2; method++) {
        mp.method = method ? MN_MATCH_L2 : MN_MATCH_METRIC;
        if ((st = mn_match(s, desc, 3, desc, 3, &mp, matches, 3, &nm)) != MN_OK) {
            *oom_msg_ok = strstr(mn_last_error(), "out of memory") != NULL && nm == 0;
            goto done;
        }
    }
    mp.all_pairs = 1;
    mp.method = MN_MATCH_METRIC;
    if ((st = mn_match(s, desc, 3, desc, 3, &mp, matches, 3, &nm)) != MN_OK) {
        *oom_msg_ok = strstr(mn_last_error(), "out of memory") != NULL && nm == 0;
        goto done;
    }
    uint32_t idx[6];
    if ((st = mn_match_knn(s, desc, 3, desc, 3, NULL, 2, idx, NULL)) != MN_OK) {
        *oom_msg_ok = strstr(mn_last_error(), "out of memory") != NULL;
        goto done;
    }
done:
    free(desc);
    mn_session_free(s);
    mn_model_free(m);
    return st;
}

int main(void)
{
    const char *path = MN_TEST_DATA "/golden_bottleneck.mnw";
    uint8_t img[100 * 100];
    for (int i = 0; i < 100 * 100; i++)
        img[i] = (uint8_t)((i * 37) ^ (i >> 7));
    int dummy = 1;
    CHECK_OK(run_once(path, img, &dummy));
    long n;
    int failures_seen = 0;
    for (n = 1; n < 10000; n++) {
        mn_test_fail_alloc_at(n);
        int msg_ok = 1;
        mn_status st = run_once(path, img, &msg_ok);
        mn_test_fail_alloc_at(0);
        if (st == MN_OK)
            break; /* n is past the last allocation */
        failures_seen++;
        CHECK(st == MN_ERR_OUT_OF_MEMORY, "allocation %ld failing gave %s: %s", n, mn_status_str(st), mn_last_error());
        CHECK(msg_ok, "allocation %ld failing: no clear message or non-NULL output (%s)", n, mn_last_error());
    }
    printf("%d allocation points failed one by one\n", failures_seen);
    CHECK(failures_seen >= 10, "only %d allocation points found", failures_seen);
    return check_summary("test_alloc");
}
