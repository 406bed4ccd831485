/*
 * fuzz_json.c - libFuzzer target: matchnet-match's JSON writer
 * (apps/match_json.c) on any paths (every byte but NUL: quotes,
 * backslashes, control characters, invalid and overlong UTF-8), any
 * numbers (every float and double bit pattern: NaN, infinities,
 * denormals, -0) and any indices.
 *
 * Input: the two paths, each ended by a NUL; then widths and heights (4 x
 * int32), the three timings (3 x float64), the keypoint and match counts
 * (a byte each, up to 8), a byte that cuts the output short, then the
 * keypoints (4 x float32 each) and matches (query, train as uint32 and
 * probability as float32); missing bytes read as 0.
 *
 * Invariants: the document parses with a strict RFC 8259 parser written
 * here (no trailing commas, leading zeros, bare NaN or control characters
 * in strings; every string valid UTF-8; nothing after the value) into
 * exactly the writer's layout, and every value comes back: a path as its
 * bytes with each byte that does not start a valid UTF-8 sequence as
 * U+FFFD; widths, heights and indices exactly; every finite float to the
 * same float (9 significant digits), every finite timing within half a
 * unit of its 9th digit, every non-finite number as null. Written to an
 * unbuffered stream with less room than the document, the writer returns
 * -1.
 */
#define _GNU_SOURCE /* open_memstream, fmemopen */
#include "match_json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_N 8

static void violated(const char *what, const char *doc)
{
    fprintf(stderr, "fuzz_json: invariant violated: %s\ndocument:\n%s\n", what, doc ? doc : "(none)");
    abort();
}

/* ---- a strict JSON parser into a small tree ---- */

enum { J_NULL, J_FALSE, J_TRUE, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT };

typedef struct jv {
    int type;
    double num;
    char *str; /* J_STRING: the decoded bytes (len of them) */
    size_t len;
    struct jv *items; /* J_ARRAY: the n elements; J_OBJECT: the n members' values */
    char **keys;      /* J_OBJECT: the n members' decoded keys (key_lens bytes) */
    size_t *key_lens, n;
} jv;

typedef struct parser {
    const char *s;
    size_t pos, size;
    int depth;
} parser;

static void jv_free(jv *v)
{
    if (v->type == J_ARRAY || v->type == J_OBJECT) {
        for (size_t i = 0; i < v->n; i++) {
            jv_free(&v->items[i]);
            if (v->keys)
                free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
        free(v->key_lens);
    }
    free(v->str);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->size && strchr(" \t\n\r", p->s[p->pos]) && p->s[p->pos])
        p->pos++;
}

static int peek(const parser *p)
{
    return p->pos < p->size ? (unsigned char)p->s[p->pos] : -1;
}

/* One code point of raw UTF-8 at p (RFC 3629, decoded by value: no
 * overlong forms, surrogates or values past U+10FFFF), its length, or 0. */
static size_t utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp)
{
    static const uint32_t min_of[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || n > avail)
        return 0;
    uint32_t c = n == 1 ? s[0] : s[0] & (0x7F >> n);
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[k] & 0x3F);
    }
    if (c < min_of[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

static void put_utf8(char *out, size_t *len, uint32_t c)
{
    if (c < 0x80) {
        out[(*len)++] = (char)c;
    } else if (c < 0x800) {
        out[(*len)++] = (char)(0xC0 | c >> 6);
        out[(*len)++] = (char)(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        out[(*len)++] = (char)(0xE0 | c >> 12);
        out[(*len)++] = (char)(0x80 | (c >> 6 & 0x3F));
        out[(*len)++] = (char)(0x80 | (c & 0x3F));
    } else {
        out[(*len)++] = (char)(0xF0 | c >> 18);
        out[(*len)++] = (char)(0x80 | (c >> 12 & 0x3F));
        out[(*len)++] = (char)(0x80 | (c >> 6 & 0x3F));
        out[(*len)++] = (char)(0x80 | (c & 0x3F));
    }
}

static int hex4(parser *p, uint32_t *v)
{
    *v = 0;
    for (int k = 0; k < 4; k++) {
        int c = peek(p), d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                             : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (uint32_t)d;
        p->pos++;
    }
    return 0;
}

static int parse_string(parser *p, char **out, size_t *out_len)
{
    if (peek(p) != '"')
        return -1;
    p->pos++;
    char *buf = malloc(p->size - p->pos + 1); /* decoding never grows */
    size_t len = 0;
    if (!buf)
        abort();
    for (;;) {
        int c = peek(p);
        if (c < 0x20) { /* end of input, or a raw control character */
            free(buf);
            return -1;
        }
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c != '\\') {
            uint32_t cp;
            size_t n = utf8_decode((const unsigned char *)p->s + p->pos, p->size - p->pos, &cp);
            if (n == 0) {
                free(buf);
                return -1;
            }
            memcpy(buf + len, p->s + p->pos, n);
            len += n, p->pos += n;
            continue;
        }
        p->pos++;
        c = peek(p);
        p->pos++;
        const char *simple = strchr("\"\\/bfnrt", c);
        if (c > 0 && simple) {
            static const char to[] = "\"\\/\b\f\n\r\t";
            buf[len++] = to[simple - "\"\\/bfnrt"];
            continue;
        }
        uint32_t u, lo;
        if (c != 'u' || hex4(p, &u) != 0 || (u >= 0xDC00 && u <= 0xDFFF)) {
            free(buf);
            return -1;
        }
        if (u >= 0xD800 && u <= 0xDBFF) { /* a pair, or nothing */
            if (peek(p) != '\\' || (p->pos++, peek(p) != 'u') || (p->pos++, hex4(p, &lo) != 0) || lo < 0xDC00 ||
                lo > 0xDFFF) {
                free(buf);
                return -1;
            }
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        }
        put_utf8(buf, &len, u);
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int parse_number(parser *p, double *v)
{
    size_t start = p->pos;
    if (peek(p) == '-')
        p->pos++;
    if (peek(p) == '0')
        p->pos++;
    else if (is_digit(peek(p)))
        while (is_digit(peek(p)))
            p->pos++;
    else
        return -1;
    if (peek(p) == '.') {
        p->pos++;
        if (!is_digit(peek(p)))
            return -1;
        while (is_digit(peek(p)))
            p->pos++;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-')
            p->pos++;
        if (!is_digit(peek(p)))
            return -1;
        while (is_digit(peek(p)))
            p->pos++;
    }
    char tok[64];
    if (p->pos - start >= sizeof tok)
        return -1; /* the writer's numbers are short */
    memcpy(tok, p->s + start, p->pos - start);
    tok[p->pos - start] = '\0';
    *v = strtod(tok, NULL);
    return 0;
}

static int parse_value(parser *p, jv *v);

static int parse_container(parser *p, jv *v, int object)
{
    v->type = object ? J_OBJECT : J_ARRAY;
    p->pos++;
    skip_ws(p);
    if (peek(p) == (object ? '}' : ']')) {
        p->pos++;
        return 0;
    }
    for (;;) {
        v->items = realloc(v->items, (v->n + 1) * sizeof *v->items);
        v->keys = object ? realloc(v->keys, (v->n + 1) * sizeof *v->keys) : NULL;
        v->key_lens = object ? realloc(v->key_lens, (v->n + 1) * sizeof *v->key_lens) : NULL;
        if (!v->items || (object && (!v->keys || !v->key_lens)))
            abort();
        jv *item = &v->items[v->n];
        memset(item, 0, sizeof *item);
        if (object) {
            skip_ws(p);
            v->keys[v->n] = NULL;
            if (parse_string(p, &v->keys[v->n], &v->key_lens[v->n]) != 0) {
                v->n++;
                return -1;
            }
            skip_ws(p);
            if (peek(p) != ':') {
                v->n++;
                return -1;
            }
            p->pos++;
        }
        v->n++;
        if (parse_value(p, item) != 0)
            return -1;
        skip_ws(p);
        int c = peek(p);
        p->pos++;
        if (c == (object ? '}' : ']'))
            return 0;
        if (c != ',')
            return -1;
    }
}

static int parse_value(parser *p, jv *v)
{
    memset(v, 0, sizeof *v);
    if (++p->depth > 16)
        return -1;
    skip_ws(p);
    int c = peek(p), rc;
    if (c == '{' || c == '[') {
        rc = parse_container(p, v, c == '{');
    } else if (c == '"') {
        v->type = J_STRING;
        rc = parse_string(p, &v->str, &v->len);
    } else if (c == '-' || is_digit(c)) {
        v->type = J_NUMBER;
        rc = parse_number(p, &v->num);
    } else {
        static const char *const words[3] = {"null", "false", "true"};
        rc = -1;
        for (int k = 0; k < 3; k++)
            if (p->size - p->pos >= strlen(words[k]) && memcmp(p->s + p->pos, words[k], strlen(words[k])) == 0) {
                v->type = k == 0 ? J_NULL : k == 1 ? J_FALSE : J_TRUE;
                p->pos += strlen(words[k]);
                rc = 0;
                break;
            }
    }
    p->depth--;
    return rc;
}

/* The whole document: one value, white space around it, nothing else. */
static int parse_document(const char *s, size_t size, jv *root)
{
    parser p = {s, 0, size, 0};
    if (parse_value(&p, root) != 0)
        return -1;
    skip_ws(&p);
    return p.pos == size ? 0 : -1;
}

/* ---- the writer's layout, value by value ---- */

static const jv *member(const jv *o, size_t k, const char *key)
{
    if (o->type != J_OBJECT || k >= o->n || strcmp(o->keys[k], key) != 0 || o->key_lens[k] != strlen(key))
        return NULL;
    return &o->items[k];
}

/* The path as the writer's contract says it reads back. */
static size_t expected_path(const char *path, char *out)
{
    const unsigned char *s = (const unsigned char *)path;
    size_t len = 0, n = strlen(path);
    for (size_t k = 0; k < n;) {
        uint32_t cp;
        size_t step = utf8_decode(s + k, n - k, &cp);
        if (step == 0) {
            put_utf8(out, &len, 0xFFFD);
            k++;
        } else {
            memcpy(out + len, s + k, step);
            len += step, k += step;
        }
    }
    return len;
}

static int same_float(const jv *v, float want)
{
    if (!isfinite(want))
        return v->type == J_NULL;
    return v->type == J_NUMBER && (float)v->num == want && signbit(v->num) == signbit(want);
}

static int same_double(const jv *v, double want)
{
    if (!isfinite(want))
        return v->type == J_NULL;
    /* %.9g: within half a unit of the 9th significant digit, plus one
     * step of the smallest denormals. */
    return v->type == J_NUMBER && fabs(v->num - want) <= 5.0000001e-9 * fabs(want) + 5e-324 &&
           signbit(v->num) == signbit(want);
}

static int same_int(const jv *v, double want)
{
    return v->type == J_NUMBER && v->num == want;
}

static const char *check_image(const jv *im, const match_json_image *want)
{
    const jv *path = member(im, 0, "path"), *w = member(im, 1, "width"), *h = member(im, 2, "height"),
             *kps = member(im, 3, "keypoints");
    if (!path || !w || !h || !kps || im->n != 4 || path->type != J_STRING || kps->type != J_ARRAY)
        return "image layout";
    char *exp = malloc(3 * strlen(want->path) + 1);
    if (!exp)
        abort();
    size_t exp_len = expected_path(want->path, exp);
    int same = exp_len == path->len && memcmp(exp, path->str, exp_len) == 0;
    free(exp);
    if (!same)
        return "path";
    if (!same_int(w, want->width) || !same_int(h, want->height))
        return "width or height";
    if (kps->n != want->n)
        return "keypoint count";
    for (size_t i = 0; i < want->n; i++) {
        const jv *k = &kps->items[i];
        const mn_keypoint *e = &want->keypoints[i];
        if (k->type != J_ARRAY || k->n != 4 || !same_float(&k->items[0], e->x) || !same_float(&k->items[1], e->y) ||
            !same_float(&k->items[2], e->size) || !same_float(&k->items[3], e->angle))
            return "keypoint";
    }
    return NULL;
}

static const char *check_document(const jv *d, const match_json_image *im1, const match_json_image *im2,
                                  const mn_dmatch *m, size_t nm, const match_json_timing *t)
{
    const jv *a = member(d, 0, "image1"), *b = member(d, 1, "image2"), *ms = member(d, 2, "matches"),
             *tm = member(d, 3, "timing_ms");
    if (!a || !b || !ms || !tm || d->n != 4 || ms->type != J_ARRAY || tm->n != 3)
        return "document layout";
    const char *why = check_image(a, im1);
    if (why || (why = check_image(b, im2)))
        return why;
    if (ms->n != nm)
        return "match count";
    for (size_t k = 0; k < nm; k++) {
        const jv *x = &ms->items[k];
        if (x->type != J_ARRAY || x->n != 3 || !same_int(&x->items[0], m[k].query) ||
            !same_int(&x->items[1], m[k].train) || !same_float(&x->items[2], m[k].probability))
            return "match";
    }
    const jv *td = member(tm, 0, "detect"), *tde = member(tm, 1, "describe"), *tma = member(tm, 2, "match");
    if (!td || !tde || !tma || !same_double(td, t->detect) || !same_double(tde, t->describe) ||
        !same_double(tma, t->match))
        return "timing";
    return NULL;
}

/* ---- input ---- */

typedef struct reader {
    const uint8_t *d;
    size_t pos, size;
} reader;

static void take(reader *r, void *out, size_t n)
{
    memset(out, 0, n);
    size_t have = r->pos < r->size ? r->size - r->pos : 0;
    memcpy(out, r->d + r->pos, have < n ? have : n);
    r->pos += n;
}

static char *take_string(reader *r)
{
    size_t have = r->pos < r->size ? r->size - r->pos : 0;
    const uint8_t *nul = have ? memchr(r->d + r->pos, '\0', have) : NULL;
    size_t len = nul ? (size_t)(nul - r->d - r->pos) : have;
    char *s = strndup(have ? (const char *)r->d + r->pos : "", len);
    if (!s)
        abort();
    r->pos += len + 1;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {data, 0, size};
    match_json_image im[2] = {{0}};
    mn_keypoint kp[2][MAX_N];
    mn_dmatch m[MAX_N];
    match_json_timing t;
    uint8_t counts[3], cut;
    char *path[2] = {take_string(&r), take_string(&r)};
    for (int i = 0; i < 2; i++) {
        im[i].path = path[i];
        take(&r, &im[i].width, sizeof im[i].width);
        take(&r, &im[i].height, sizeof im[i].height);
    }
    take(&r, &t, sizeof t);
    take(&r, counts, sizeof counts);
    take(&r, &cut, 1);
    for (int i = 0; i < 2; i++) {
        im[i].n = counts[i] % (MAX_N + 1);
        im[i].keypoints = kp[i];
        take(&r, kp[i], im[i].n * sizeof *kp[i]);
    }
    const size_t nm = counts[2] % (MAX_N + 1);
    for (size_t k = 0; k < nm; k++) {
        take(&r, &m[k].query, 4);
        take(&r, &m[k].train, 4);
        take(&r, &m[k].probability, 4);
        m[k].distance = 0;
    }

    char *doc = NULL;
    size_t doc_len = 0;
    FILE *f = open_memstream(&doc, &doc_len);
    if (!f)
        abort();
    int rc = match_json_write(f, &im[0], &im[1], m, nm, &t);
    if (fclose(f) != 0 || rc != 0)
        violated("match_json_write failed on a memory stream", doc);
    if (doc_len == 0 || doc[doc_len - 1] != '\n')
        violated("document not ended by a newline", doc);
    jv root;
    if (parse_document(doc, doc_len, &root) != 0) {
        jv_free(&root);
        violated("not strict JSON", doc);
    }
    const char *why = check_document(&root, &im[0], &im[1], m, nm, &t);
    jv_free(&root);
    if (why)
        violated(why, doc);

    /* A stream with less room than the document: the writer must say so. */
    size_t room = 1 + (size_t)cut * (doc_len - 2) / 255;
    char *buf = malloc(room + 1);
    f = buf ? fmemopen(buf, room, "w") : NULL;
    if (!f)
        abort();
    setvbuf(f, NULL, _IONBF, 0);
    rc = match_json_write(f, &im[0], &im[1], m, nm, &t);
    fclose(f);
    if (rc != -1)
        violated("no error from a short unbuffered stream", doc);
    free(buf);
    free(doc);
    free(path[0]);
    free(path[1]);
    return 0;
}
