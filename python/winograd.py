#!/usr/bin/env python3
"""Derive the Winograd F(4x4, 3x3) and F(4x4, 5x5) matrices of src/winograd.h,
and the one-dimensional F(4, 7) of conv0's rows.

Toom-Cook on the points 0, 1, -1, 2, -2 (and 1/2, -1/2 for 5x5 and 7, and
3/2, -3/2 for 7) plus infinity, in exact rational arithmetic; every identity
sum_j AT[i][j] G[j][k] BT[j][l] == (l == i + k) is checked exactly, which
is what makes y = AT [(G g G^T) .* (BT d BT^T)] AT^T the cross-correlation.

    python/winograd.py            print the C tables
    python/winograd.py --check F  exit 1 unless F holds exactly these tables
"""
import sys
from fractions import Fraction as F

CASES = [(4, 3, [0, 1, -1, 2, -2], "43"),
         (4, 5, [0, 1, -1, 2, -2, F(1, 2), F(-1, 2)], "45"),
         (4, 7, [0, 1, -1, 2, -2, F(1, 2), F(-1, 2), F(3, 2), F(-3, 2)], "47")]


def polymul(c, q):
    """Coefficients (low to high) of c(x) * (x - q)."""
    out = [F(0)] * (len(c) + 1)
    for i, v in enumerate(c):
        out[i + 1] += v
        out[i] -= v * q
    return out


def matrices(m, r, pts):
    a = m + r - 1
    pts = [F(p) for p in pts]
    assert len(pts) == a - 1
    at = [[p ** i for p in pts] + [F(1 if i == m - 1 else 0)] for i in range(m)]
    g = []
    for j, p in enumerate(pts):
        n = F(1)
        for l, q in enumerate(pts):
            if l != j:
                n *= p - q
        g.append([p ** k / n for k in range(r)])
    g.append([F(0)] * (r - 1) + [F(1)])
    bt = []
    for j in range(a - 1):
        c = [F(1)]
        for l, q in enumerate(pts):
            if l != j:
                c = polymul(c, q)
        bt.append(c + [F(0)] * (a - len(c)))
    c = [F(1)]
    for q in pts:
        c = polymul(c, q)
    bt.append(c)
    for i in range(m):
        for k in range(r):
            for l in range(a):
                s = sum(at[i][j] * g[j][k] * bt[j][l] for j in range(a))
                assert s == (1 if l == i + k else 0), (m, r, i, k, l, s)
    return at, g, bt


def fmt(x):
    return "%d.0" % x.numerator if x.denominator == 1 else "%d.0 / %d.0" % (x.numerator, x.denominator)


def tables():
    out = []
    for m, r, pts, name in CASES:
        at, g, bt = matrices(m, r, pts)
        for nm, mat, ctype in (("bt", bt, "float"), ("at", at, "float"), ("g", g, "double")):
            rows = ["{" + ", ".join(fmt(v) for v in row) + "}" for row in mat]
            out.append("MN_MAYBE_UNUSED static const %s mn_wino%s_%s[%d][%d] = {\n    %s};"
                       % (ctype, name, nm, len(mat), len(mat[0]), ",\n    ".join(rows)))
    return "\n".join(out)


if __name__ == "__main__":
    text = tables()
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        if text not in open(sys.argv[2]).read():
            print("winograd.py: %s does not hold the derived tables" % sys.argv[2], file=sys.stderr)
            sys.exit(1)
        print("winograd.py: %s matches (identities checked exactly)" % sys.argv[2])
    elif len(sys.argv) == 1:
        print(text)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
