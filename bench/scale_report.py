#!/usr/bin/python3
"""Tables, per-image and per-pair costs and a large-run estimate from bench/scale.sh's rows.

    scale_report.py ROWS.tsv OUT.md OUT.json --cpu NAME --cores N --cache-mb MB --max-keypoints N
                    --verify WHAT --retrieval K --est-images N --est-nodes N --est-cores C

ROWS.tsv: one line per (configuration, N), tab-separated: config, ranks, threads,
N, pairs spec, pairs, images described in this row, then for the describe and
the match step each: wall s, peak RSS of the largest process (kB), sum over
ranks (kB), rank 0 CPU s, CPU s of all ranks; then store bytes, database bytes
after the describe step, after the match step, the register step's wall s,
and the writer's replay (scale_writer.py): pairs and seconds (-1: not run).
"""
import argparse
import json
import sys

COLS = ["config", "ranks", "threads", "n", "spec", "pairs", "new_images",
        "describe_wall_s", "describe_rss_max_kb", "describe_rss_sum_kb", "describe_rank0_cpu_s", "describe_cpu_s",
        "match_wall_s", "match_rss_max_kb", "match_rss_sum_kb", "match_rank0_cpu_s", "match_cpu_s",
        "store_bytes", "db_bytes_images", "db_bytes", "register_s", "writer_pairs", "writer_s"]


def read_rows(path):
    rows = []
    for line in open(path):
        v = line.rstrip("\n").split("\t")
        if len(v) != len(COLS):
            raise SystemExit("scale_report.py: %s: a row of %d fields, %d expected" % (path, len(v), len(COLS)))
        r = dict(zip(COLS, v))
        for k in COLS:
            if k not in ("config", "spec"):
                r[k] = float(r[k])
                if r[k].is_integer():
                    r[k] = int(r[k])
        rows.append(r)
    if not rows:
        raise SystemExit("scale_report.py: no rows")
    return rows


def fit(xs, ys):
    """Least squares y = a + b x; (a, b). One point: a = 0."""
    if len(xs) == 1:
        return 0.0, ys[0] / xs[0]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - b * mx, b


def costs(rows):
    """Per-image and per-pair costs from the 1 rank x 1 thread rows (core seconds)."""
    one = [r for r in rows if r["config"] == "1x1"]
    c = {}
    c["describe_core_s_per_image"] = sum(r["describe_wall_s"] for r in one) / sum(r["new_images"] for r in one)
    reg = [r for r in one if r["register_s"] > 0]
    if reg:
        # Rank 0 alone writes every image into the database (keypoints read
        # back from the store); timed on its own, start-up included.
        c["register_s_per_image"] = sum(r["register_s"] for r in reg) / sum(r["n"] for r in reg)
        c["describe_core_s_per_image"] = max(1e-6, sum(r["describe_wall_s"] - c["register_s_per_image"] * r["n"]
                                                       for r in one) / sum(r["new_images"] for r in one))
    ex = [r for r in one if r["spec"] == "exhaustive"]
    base = ex if ex else one
    a, b = fit([r["pairs"] for r in base], [r["match_wall_s"] for r in base])
    c["match_fixed_s"] = a
    c["match_core_s_per_pair"] = b
    ret = [r for r in one if r["spec"] != "exhaustive"]
    if ret:
        # What a retrieval run takes beyond matching its pairs: the codebook
        # and each image's VLAD, on rank 0 alone under MPI.
        c["retrieval_select_s_per_image"] = max(0.0, sum(r["match_wall_s"] - a - b * r["pairs"] for r in ret)
                                                / sum(r["n"] for r in ret))
        c["retrieval_pairs_per_image"] = ret[-1]["pairs"] / ret[-1]["n"]
    big = max(one, key=lambda r: r["n"])
    c["store_bytes_per_image"] = big["store_bytes"] / big["n"]
    c["db_bytes_per_image"] = big["db_bytes_images"] / big["n"]
    most = max(one, key=lambda r: r["pairs"])
    c["db_bytes_per_pair"] = (most["db_bytes"] - most["db_bytes_images"]) / most["pairs"]
    timed = [r for r in one if r["writer_s"] > 0]
    if timed:
        c["writer_pairs_per_s"] = sum(r["writer_pairs"] for r in timed) / sum(r["writer_s"] for r in timed)
        c["writer_measured_on"] = "%d pairs replayed in %.2f s, 16 to a transaction" % (
            sum(r["writer_pairs"] for r in timed), sum(r["writer_s"] for r in timed))
    c["peak_rss_mb"] = {cfg: max(max(r["describe_rss_max_kb"], r["match_rss_max_kb"]) for r in rows
                                 if r["config"] == cfg) / 1024 for cfg in dict.fromkeys(r["config"] for r in rows)}
    return c


def estimate(c, images, nodes, cores, k):
    ranks = nodes * cores
    ppi = c.get("retrieval_pairs_per_image", float(k))
    e = {"images": images, "nodes": nodes, "cores_per_node": cores, "ranks": ranks,
         "pairs_per_image": ppi, "pairs": images * ppi}
    e["describe_s"] = images * c["describe_core_s_per_image"] / ranks
    e["register_s"] = images * c.get("register_s_per_image", 0.0)
    e["select_s"] = images * c.get("retrieval_select_s_per_image", 0.0)
    # Every rank matches, rank 0 too (between its writes).
    e["match_s"] = e["pairs"] * c["match_core_s_per_pair"] / ranks
    e["writer_s"] = e["pairs"] / c["writer_pairs_per_s"] if "writer_pairs_per_s" in c else None
    e["wall_s"] = e["describe_s"] + e["register_s"] + e["select_s"] + max(e["match_s"], e["writer_s"] or 0)
    e["store_bytes"] = images * c["store_bytes_per_image"]
    e["db_bytes"] = images * c["db_bytes_per_image"] + e["pairs"] * c["db_bytes_per_pair"]
    ex = images * (images - 1) / 2
    e["exhaustive_pairs"] = ex
    e["exhaustive_match_s"] = ex * c["match_core_s_per_pair"] / ranks
    e["exhaustive_writer_s"] = ex / c["writer_pairs_per_s"] if "writer_pairs_per_s" in c else None
    e["exhaustive_db_bytes"] = images * c["db_bytes_per_image"] + ex * c["db_bytes_per_pair"]
    return e


def hms(s):
    if s is None:
        return "-"
    s = float(s)
    return "%.0f s" % s if s < 120 else "%.1f min" % (s / 60) if s < 7200 else "%.1f h" % (s / 3600)


def gb(b):
    return "%.1f GB" % (b / 1e9) if b >= 1e9 else "%.0f MB" % (b / 1e6)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rows")
    ap.add_argument("md")
    ap.add_argument("json")
    for a in ("--cpu", "--verify"):
        ap.add_argument(a, required=True)
    for a in ("--cores", "--cache-mb", "--max-keypoints", "--retrieval", "--est-images", "--est-nodes", "--est-cores"):
        ap.add_argument(a, type=int, required=True)
    o = ap.parse_args()
    rows = read_rows(o.rows)
    # Costs and the estimate come from the 1 rank x 1 thread rows: a run
    # without that configuration gets the tables only.
    have_one = any(r["config"] == "1x1" for r in rows)
    c = costs(rows) if have_one else None
    e = estimate(c, o.est_images, o.est_nodes, o.est_cores, o.retrieval) if have_one else None
    L = []
    L.append("CPU: %s, %d cores; --max-keypoints %d, --store with --cache-mb %d, --verify %s; "
             "exhaustive pairs up to the size shown, retrieval:%d beyond." % (
                 o.cpu, o.cores, o.max_keypoints, o.cache_mb, o.verify, o.retrieval))
    L.append("")
    L.append("| ranks x threads | N | pairs | described | describe s | s / image | match s | ms / pair "
             "| peak RSS describe MB | peak RSS match MB | store MB | database MB |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        L.append("| %s | %d | %d (%s) | %d | %.1f | %.3f | %.1f | %.2f | %.0f | %.0f | %.0f | %.1f |" % (
            r["config"], r["n"], r["pairs"], r["spec"], r["new_images"], r["describe_wall_s"],
            r["describe_wall_s"] / max(1, r["new_images"]), r["match_wall_s"],
            1000 * r["match_wall_s"] / max(1, r["pairs"]), r["describe_rss_max_kb"] / 1024,
            r["match_rss_max_kb"] / 1024, r["store_bytes"] / 1e6, r["db_bytes"] / 1e6))
    L.append("")
    L.append("Peak RSS: /usr/bin/time, the largest process (under mpirun the largest rank; sum over ranks in the JSON). "
             "'described': images described in this row (the store carries over from the previous N of the same "
             "configuration, so s / image is the describe step's wall time over these); 'match s': pair selection, "
             "store reads through the cache, matching, verification, database writes. Wall times.")
    base = {r["n"]: r for r in rows if r["config"] == "1x1"}
    others = [r for r in rows if r["config"] != "1x1" and r["n"] in base]
    if others:
        L.append("")
        L.append("| ranks x threads | N | describe speed-up vs 1x1 | match speed-up vs 1x1 | rank 0 CPU s / match wall s |")
        L.append("|---|---|---|---|---|")
        for r in others:
            b = base[r["n"]]
            L.append("| %s | %d | %s | %.2fx | %.2f |" % (
                r["config"], r["n"],
                "%.2fx" % ((b["describe_wall_s"] / b["new_images"]) / (r["describe_wall_s"] / r["new_images"]))
                if r["new_images"] and b["new_images"] else "-",
                b["match_wall_s"] / r["match_wall_s"], r["match_rank0_cpu_s"] / r["match_wall_s"]))
        L.append("")
        L.append("Speed-ups per image described and per whole match step. Under mpirun rank 0 selects the pairs, "
                 "writes the database and matches a few pairs at a time between the other ranks' results; the "
                 "last column is its CPU time over the match step's wall time.")
    if not have_one:
        L.append("")
        L.append("No 1 rank x 1 thread rows (--configs without 1x1): no per-image and per-pair costs, no estimate.")
    else:
        L.append("")
        L.append("Costs (1 rank x 1 thread, core seconds): describe %.3f s per image%s; match %.2f ms per pair "
                 "(least squares over the exhaustive rows: match s = %.2f + %.5f x pairs)%s; store %.0f kB per image; "
                 "database %.1f kB per image (cameras, images, keypoints) and %.0f bytes per pair (matches%s); "
                 "writer %s." % (
                     c["describe_core_s_per_image"],
                     " (the describe steps less registering) and %.3f s per image to register it: written into a new "
                     "database from the store (timed alone)" % c["register_s_per_image"]
                     if "register_s_per_image" in c else "",
                     1000 * c["match_core_s_per_pair"], c["match_fixed_s"],
                     c["match_core_s_per_pair"],
                     "; retrieval selection (codebook, VLAD) %.3f s per image, %.1f pairs per image" % (
                         c["retrieval_select_s_per_image"], c["retrieval_pairs_per_image"])
                     if "retrieval_select_s_per_image" in c else "",
                     c["store_bytes_per_image"] / 1e3, c["db_bytes_per_image"] / 1e3, c["db_bytes_per_pair"],
                     ", two-view geometries" if o.verify == "own" else "",
                     "%.0f pairs per second (%s)" % (c["writer_pairs_per_s"], c["writer_measured_on"])
                     if "writer_pairs_per_s" in c else "not measured"))
        L.append("")
        L.append("Estimate for %d images on %d nodes x %d cores (%d ranks x 1 thread, rank 0 the writer), "
                 "retrieval:%d (%.1f pairs per image measured), per-core costs as measured here:" % (
                     e["images"], e["nodes"], e["cores_per_node"], e["ranks"], o.retrieval, e["pairs_per_image"]))
        L.append("")
        L.append("    describe = I x d / R                   = %d x %.3f / %d = %s" % (
            e["images"], c["describe_core_s_per_image"], e["ranks"], hms(e["describe_s"])))
        L.append("    register = I x r (rank 0 alone)        = %d x %.4f = %s" % (
            e["images"], c.get("register_s_per_image", 0.0), hms(e["register_s"])))
        L.append("    select   = I x v (rank 0 alone)        = %d x %.4f = %s" % (
            e["images"], c.get("retrieval_select_s_per_image", 0.0), hms(e["select_s"])))
        L.append("    match    = P x m / R                   = %.0f x %.5f / %d = %s" % (
            e["pairs"], c["match_core_s_per_pair"], e["ranks"], hms(e["match_s"])))
        L.append("    writer   = P / w                       = %.0f / %.0f = %s" % (
            e["pairs"], c.get("writer_pairs_per_s", float("nan")), hms(e["writer_s"])))
        L.append("    wall    ~= describe + register + select + max(match, writer) = %s" % hms(e["wall_s"]))
        L.append("    data: store I x s = %s on the shared file system; database I x b_i + P x b_p = %s" % (
            gb(e["store_bytes"]), gb(e["db_bytes"])))
        L.append("    exhaustive instead: P = I(I-1)/2 = %.3g pairs: match %s, writer %s, database %s" % (
            e["exhaustive_pairs"], hms(e["exhaustive_match_s"]), hms(e["exhaustive_writer_s"]),
            gb(e["exhaustive_db_bytes"])))
        L.append("")
        L.append("(I images, R ranks, P pairs; d, r, m, v, s, b_i, b_p, w the costs above. Assumes the nodes' cores are "
                 "as fast as these, ideal scaling of describing and matching, and a store file system that takes "
                 "R x s / d bytes per second while describing and gives rank 0 I x s bytes for registering (and again "
                 "for retrieval's VLAD); w is the replay of the writes on this machine's disk, and rank 0 also "
                 "receives P x b_p bytes of results. Start-up (mpirun, loading the model: about 1 s) left out.)")
    md = "\n".join(L) + "\n"
    with open(o.md, "w") as f:
        f.write(md)
    res = {"cpu": o.cpu, "cores": o.cores, "cache_mb": o.cache_mb, "max_keypoints": o.max_keypoints,
           "verify": o.verify, "retrieval_k": o.retrieval, "rows": rows, "costs": c, "estimate": e}
    with open(o.json, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
