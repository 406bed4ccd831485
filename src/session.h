/*
 * session.h - what the describe, metric and match calls need of a session
 * (session.c): its model, its threads and their scratch, its projection
 * buffer.
 */
#ifndef MN_SESSION_H
#define MN_SESSION_H

#include "tower.h"

const mn_model *mn_session_model(const mn_session *s);
int mn_session_threads(const mn_session *s);
int mn_session_reference(const mn_session *s);
/* Run task over [0, total) split into ranges of whole grains, one range per
 * thread of the session; thread is 0..mn_session_threads() - 1 and scratch
 * that thread's own. Ranges are contiguous and in thread order, and depend
 * only on total, grain and the thread count. */
typedef void (*mn_task_fn)(void *ctx, mn_scratch *scratch, int thread, size_t begin, size_t end);
void mn_session_parallel(mn_session *s, mn_task_fn task, void *ctx, size_t total, size_t grain);
/* Room for (na + nb) projections, kept by the session between calls:
 * *proj_a gets na rows, *proj_b nb rows of mn_model_projection_dim(). */
mn_status mn_session_proj(const char *fn, mn_session *s, size_t na, size_t nb, float **proj_a, float **proj_b);

#endif
