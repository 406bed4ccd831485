#!/usr/bin/python3
"""Print the engine's call and include graph and fail on a circle.

    scripts/deps.py BUILD_DIR

Calls: which object file defines each symbol another one uses (nm on the
static library's objects). Includes: which engine header each source names.
Exits 1 when either graph has a cycle (a test: test_engine_deps)."""
import os, re, subprocess, sys

build = sys.argv[1] if len(sys.argv) > 1 else "build"
src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
objdir = os.path.join(build, "CMakeFiles", "matchnet_static.dir", "src")
objs = {}
for root, _, files in os.walk(objdir):
    for f in files:
        if f.endswith(".c.o"):
            objs[os.path.relpath(os.path.join(root, f), objdir)[:-2]] = os.path.join(root, f)
if not objs:
    sys.exit("deps.py: no objects under %s" % objdir)
defined, used = {}, {}
for name, path in objs.items():
    used[name] = set()
    for line in subprocess.run(["nm", path], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDRB":
            defined[parts[2]] = name
        elif len(parts) == 2 and parts[0] == "U":
            used[name].add(parts[1])
calls = {n: sorted({defined[s] for s in u if s in defined and defined[s] != n}) for n, u in used.items()}

incs = {}
for root, _, files in os.walk(src):
    for f in files:
        if f.endswith((".c", ".h", ".inc")):
            rel = os.path.relpath(os.path.join(root, f), src)
            text = open(os.path.join(root, f)).read()
            names = re.findall(r'^#include "([^"]+)"', text, re.M)
            out = []
            for n in names:
                for cand in (os.path.join(os.path.dirname(rel), n), n):
                    if os.path.exists(os.path.join(src, cand)):
                        out.append(os.path.normpath(cand))
                        break
            incs[rel] = sorted(set(out) - {rel})


def cycle(graph):
    state = {}
    def visit(n, path):
        state[n] = 1
        for m in graph.get(n, []):
            if state.get(m) == 1:
                return path + [n, m]
            if not state.get(m):
                c = visit(m, path + [n])
                if c:
                    return c
        state[n] = 2
        return None
    for n in graph:
        if not state.get(n):
            c = visit(n, [])
            if c:
                return c
    return None


bad = 0
for title, graph in (("calls", calls), ("includes", incs)):
    print("== %s" % title)
    for n in sorted(graph):
        print("  %-24s -> %s" % (n, ", ".join(graph[n]) or "-"))
    c = cycle(graph)
    if c:
        print("deps.py: %s circle: %s" % (title, " -> ".join(c)))
        bad = 1
sys.exit(bad)
