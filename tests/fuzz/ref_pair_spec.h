/*
 * ref_pair_spec.h - the fuzzers' reference for matchnet-colmap's --pairs
 * SPEC (pair_spec_parse in apps/colmap_pairs.c), written from its
 * documentation, not its code: parts joined by '+', each exhaustive,
 * sequential:N, retrieval:K, spatial:K (N, K whole numbers >= 1 that fit
 * an int) or a file; the whole SPEC one file when no part is one of the
 * others; at most MAX_PAIR_TERMS parts, none empty; NULL is exhaustive.
 * Included by fuzz_cli.c and fuzz_colmap_pairs.c after colmap_app.h.
 */
#ifndef MN_FUZZ_REF_PAIR_SPEC_H
#define MN_FUZZ_REF_PAIR_SPEC_H

#include <ctype.h>
#include <limits.h>
#include <string.h>

/* A part's mode (len bytes at p), or -1 for a file. */
static int ref_part_mode(const char *p, size_t len)
{
    if (len == 10 && strncmp(p, "exhaustive", 10) == 0)
        return PAIRS_EXHAUSTIVE;
    if (len >= 11 && strncmp(p, "sequential:", 11) == 0)
        return PAIRS_SEQUENTIAL;
    if (len >= 10 && strncmp(p, "retrieval:", 10) == 0)
        return PAIRS_RETRIEVAL;
    if (len >= 8 && strncmp(p, "spatial:", 8) == 0)
        return PAIRS_SPATIAL;
    return -1;
}

/* strtol's whole numbers: spaces, a sign, digits, nothing after; 0 when
 * not one in [1, INT_MAX]. */
static long ref_count(const char *p, size_t len)
{
    size_t k = 0;
    while (k < len && isspace((unsigned char)p[k]))
        k++;
    int neg = k < len && p[k] == '-';
    if (k < len && (p[k] == '-' || p[k] == '+'))
        k++;
    if (k == len || !isdigit((unsigned char)p[k]))
        return 0;
    long double v = 0;
    for (; k < len && isdigit((unsigned char)p[k]); k++)
        v = v * 10 + (p[k] - '0');
    if (k != len || neg || v < 1 || v > INT_MAX)
        return 0;
    return (long)v;
}

/* 0 with the parts in t[0..*n), or 2 for a usage error. */
static int ref_pair_spec(const char *spec, pair_term *t, int *n)
{
    *n = 0;
    if (!spec) {
        t[(*n)++] = (pair_term){.mode = PAIRS_EXHAUSTIVE};
        return 0;
    }
    size_t total = strlen(spec), start = 0;
    if (total == 0)
        return 2;
    int any_keyword = 0;
    for (size_t k = 0; k <= total; k++)
        if (k == total || spec[k] == '+') {
            any_keyword |= ref_part_mode(spec + start, k - start) >= 0;
            start = k + 1;
        }
    if (!any_keyword) {
        t[(*n)++] = (pair_term){.mode = PAIRS_FILE, .file = spec, .file_len = total};
        return 0;
    }
    start = 0;
    for (size_t k = 0; k <= total; k++) {
        if (k < total && spec[k] != '+')
            continue;
        const char *p = spec + start;
        size_t len = k - start;
        start = k + 1;
        if (len == 0 || *n == MAX_PAIR_TERMS)
            return 2;
        int mode = ref_part_mode(p, len);
        pair_term term = {.mode = mode < 0 ? PAIRS_FILE : (enum pair_mode)mode};
        if (mode < 0) {
            term.file = p;
            term.file_len = len;
        } else if (mode != PAIRS_EXHAUSTIVE) {
            const char *colon = memchr(p, ':', len);
            if (!(term.n = ref_count(colon + 1, len - (size_t)(colon + 1 - p))))
                return 2;
        }
        t[(*n)++] = term;
    }
    return 0;
}

/* Whether pair_spec_parse's result equals the reference's. */
static int ref_same_terms(const options *o, const pair_term *t, int n)
{
    if (o->n_terms != n)
        return 0;
    for (int k = 0; k < n; k++)
        if (o->terms[k].mode != t[k].mode || o->terms[k].n != t[k].n || o->terms[k].file != t[k].file ||
            o->terms[k].file_len != t[k].file_len)
            return 0;
    return 1;
}

#endif
