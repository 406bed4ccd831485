/*
 * metric.h - the metric network over ranges of descriptors or pairs, on one
 * thread's scratch (metric.c; the public mn_metric_* calls split the work
 * over the session's threads).
 */
#ifndef MN_METRIC_H
#define MN_METRIC_H

#include "tower.h"

/* Project rows [begin, end) of desc through one half of metric layer 0. */
void mn_metric_run_project(const mn_model *m, mn_scratch *s, int reference, const float *desc, mn_side side,
                           size_t begin, size_t end, float *proj);
/* Score pairs [begin, end) from projections (two-stage). */
void mn_metric_run_projected(const mn_model *m, mn_scratch *s, int reference, const float *proj_a,
                             const float *proj_b, const mn_pair *pairs, size_t begin, size_t end, float *prob);
/* Score pairs [begin, end) by evaluating on the concatenation (plain). */
void mn_metric_run_plain(const mn_model *m, mn_scratch *s, int reference, const float *desc_a, const float *desc_b,
                         const mn_pair *pairs, size_t begin, size_t end, float *prob);

#endif
