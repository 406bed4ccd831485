#!/usr/bin/env bash
# Engine benchmark: libmatchnet against PyTorch and OpenCV DNN on the same
# network and weights, on this machine, in one run. Installs nothing (see
# scripts/setup.sh --bench); builds what it needs into build-bench/.
#
#   bench/run.sh [--repeats R] [--threads N] [--arch original|pytorch|bottleneck]
#
# Prints a table and, as its last line, one JSON object with medians and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
# Background training would share the cores: stopped for the benchmark.
scripts/training.sh pause
trap 'scripts/training.sh resume' EXIT
repeats=7 threads=2 arch=original
while [ $# -gt 0 ]; do
    case "$1" in
    --repeats) repeats=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    *) echo "usage: $0 [--repeats R] [--threads N] [--arch A]" >&2; exit 2 ;;
    esac
done
PY=/usr/bin/python3
for need in cmake "$PY"; do
    command -v "$need" >/dev/null || { echo "bench/run.sh: $need missing; run scripts/setup.sh --bench" >&2; exit 1; }
done
"$PY" -c "import torch, numpy" 2>/dev/null || { echo "bench/run.sh: python3-torch missing; run scripts/setup.sh --bench" >&2; exit 1; }

build=build-bench out=bench/out
mkdir -p "$out"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DMN_BUILD_BENCH=ON -DMN_BUILD_TESTS=OFF -DMN_BUILD_SAMPLES=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
model=$out/$arch.mnw onnx=$out/$arch.onnx
if [ ! -s "$model" ] || [ ! -s "$onnx" ]; then
    "$PY" python/export.py --arch "$arch" --seed 0 -o "$model" --onnx "$onnx" 2>/dev/null >&2
fi

# The headline is the library as a user gets it (its own AVX2/AVX-512
# convolution kernels when OpenBLAS runs a generic core, as Debian 12's does on
# CPUs newer than it). For reference, the engine also runs on OpenBLAS alone
# (MN_GEMM=blas), with the core OpenBLAS detected and, where that core is
# generic and OPENBLAS_CORETYPE is unset, with the core the CPU supports.
# The peers run in the plain environment.
default_core=$("$build/bench/bench_engine" --blas-core)
tuned_core=""
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    case "$default_core" in
    Prescott|Core2|Nehalem|Sandybridge|Katmai|Northwood)
        if grep -qw avx512f /proc/cpuinfo; then tuned_core=SkylakeX
        elif grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then tuned_core=Haswell; fi ;;
    esac
fi

# The machine, for the tables of bench/README.md (one per machine kind).
cpu_model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' |
    grep -xE 'fma|avx2|avx512f|avx512bw|avx512_bf16|avx512_vnni|avx_vnni|amx_tile|amx_bf16|amx_int8' | tr '\n' ' ' | sed 's/ $//')
echo "bench: $arch model, $threads threads, $repeats repeats, OpenBLAS core $default_core; CPU $cpu_model ($cpu_flags)" >&2
args=("$model" --threads "$threads" --blas-threads "$threads" --repeats "$repeats")
eng=$("$build/bench/bench_engine" "${args[@]}")
eng_blas=$(MN_GEMM=blas "$build/bench/bench_engine" "${args[@]}")
eng_tuned="$eng_blas"
if [ -n "$tuned_core" ]; then
    eng_tuned=$(MN_GEMM=blas OPENBLAS_CORETYPE="$tuned_core" "$build/bench/bench_engine" "${args[@]}")
fi
# Where the CPU has AVX512-BF16, the precision the default did not run
# (src/kernels/cpu.c's table: bfloat16 on AMD, fp32 on Intel).
eng_other=null
if grep -qw avx512_bf16 /proc/cpuinfo; then
    if printf '%s' "$eng" | grep -q bfloat16; then
        eng_other=$(MN_PRECISION=fp32 "$build/bench/bench_engine" "${args[@]}")
    else
        eng_other=$(MN_PRECISION=bf16 "$build/bench/bench_engine" "${args[@]}")
    fi
fi
dnn=$("$build/bench/bench_dnn" "$model" "$onnx" --threads "$threads" --repeats "$repeats")
tch=$("$PY" bench/bench_torch.py "$model" --threads "$threads" --repeats "$repeats")
# Matching and end to end on the shipped model, against OpenCV SIFT on the same keypoints.
mat=$("$build/bench/bench_match" samples/data/box_in_scene.png --threads "$threads" --repeats "$repeats")
# Per-layer profile, one thread: the im2col path (the library before the
# blocked path) and the blocked path, same run.
lay=$("$build/bench/bench_layers" "$model" --repeats "$repeats" --json)

"$PY" - "$eng" "$eng_blas" "$eng_tuned" "$dnn" "$tch" "$default_core" "$tuned_core" "$arch" "$mat" "$lay" \
    "$eng_other" "$cpu_model" "$cpu_flags" <<'PYEOF'
import json, sys
eng_other = json.loads(sys.argv[11])
cpu = {"model": sys.argv[12], "flags": sys.argv[13].split()}
eng, eng0, eng1, dnn, tch = (json.loads(a) for a in sys.argv[1:6])
default_core, tuned_core, arch = sys.argv[6], sys.argv[7], sys.argv[8]
mat = json.loads(sys.argv[9])
lay = json.loads(sys.argv[10])
rows = [
    ("tower batch 1", "tower_b1_patches_per_s", "torch_b1_patches_per_s", "opencv_dnn_b1_patches_per_s"),
    ("tower batch 64", "tower_b64_patches_per_s", "torch_b64_patches_per_s", "opencv_dnn_b64_patches_per_s"),
    ("tower batch 256", "tower_b256_patches_per_s", "torch_b256_patches_per_s", "opencv_dnn_b256_patches_per_s"),
]
tuned = tuned_core or default_core
print("%-18s %11s %11s %11s %11s %11s %9s %9s" % ("patches/s (median)", "matchnet", "openblas*", "openblas**",
                                                  "pytorch", "opencv-dnn", "vs torch", "vs dnn"))
for name, e, t, d in rows:
    print("%-18s %11.1f %11.1f %11.1f %11.1f %11.1f %8.2fx %8.2fx" % (
        name, eng[e], eng0[e], eng1[e], tch[t], dnn[d], eng[e] / tch[t], eng[e] / dnn[d]))
# eng_other: the precision the default did not run.
other = None
if eng_other:
    other = "fp32" if "bfloat16" in eng["blas"] else "bf16"
    for name, e, t, d in rows:
        print("%-18s %11.1f %11s %11s %11.1f %11.1f %8.2fx %8.2fx" % (
            name.replace("tower", other), eng_other[e], "-", "-", tch[t], dnn[d], eng_other[e] / tch[t],
            eng_other[e] / dnn[d]))
print("matchnet: as installed, default precision (%s)" % eng["blas"])
if eng_other:
    print("%s: MN_PRECISION=%s (%s); batch-64 spread %.0f-%.0f" % (other, other, eng_other["blas"],
                                                                  eng_other["tower_b64_min"], eng_other["tower_b64_max"]))
print("CPU: %s (%s)" % (cpu["model"], " ".join(cpu["flags"])))
print("* engine on OpenBLAS alone, detected core %s; ** on OpenBLAS alone, core %s" % (default_core, tuned))
print("%-18s %11.0f %11.0f %11.0f" % ("metric pairs/s", eng["metric_two_stage_pairs_per_s"],
                                      eng["metric_plain_pairs_per_s"], tch["torch_metric_pairs_per_s"]))
print("  (two-stage, plain concatenation, PyTorch plain)")
print("sgemm %.1f GFLOP/s (%d threads, OpenBLAS core %s); batch-64 spread: matchnet %.0f-%.0f, torch %.0f-%.0f, "
      "dnn %.0f-%.0f" % (eng1["sgemm_gflops"], eng1["sgemm_threads"], tuned, eng["tower_b64_min"], eng["tower_b64_max"],
                         tch["torch_b64_min"], tch["torch_b64_max"], dnn["opencv_dnn_b64_min"], dnn["opencv_dnn_b64_max"]))
print("OpenCV DNN vs libmatchnet descriptors: max abs diff %.3g (max |descriptor| %.3g)" % (
    dnn["opencv_dnn_vs_matchnet_max_abs_diff"], dnn["descriptor_max_abs"]))
res = {
    "arch": arch,
    "cpu": cpu,
    "tower_patches_per_s": eng["tower_b64_patches_per_s"],
    "torch_patches_per_s": tch["torch_b64_patches_per_s"],
    "opencv_dnn_patches_per_s": dnn["opencv_dnn_b64_patches_per_s"],
    "sgemm_gflops": eng1["sgemm_gflops"],
    "ratio_vs_torch": round(eng["tower_b64_patches_per_s"] / tch["torch_b64_patches_per_s"], 2),
    "ratio_vs_opencv_dnn": round(eng["tower_b64_patches_per_s"] / dnn["opencv_dnn_b64_patches_per_s"], 2),
    "tower_b1_patches_per_s": eng["tower_b1_patches_per_s"],
    "tower_b256_patches_per_s": eng["tower_b256_patches_per_s"],
    "tower_patches_per_s_openblas_detected_core": eng0["tower_b64_patches_per_s"],
    "tower_patches_per_s_openblas_tuned_core": eng1["tower_b64_patches_per_s"],
    "metric_two_stage_pairs_per_s": eng["metric_two_stage_pairs_per_s"],
    "metric_plain_pairs_per_s": eng["metric_plain_pairs_per_s"],
    "torch_metric_pairs_per_s": tch["torch_metric_pairs_per_s"],
    "engine": eng["blas"], "blas_core_detected": default_core, "blas_core_tuned": tuned,
    "precision": "bf16" if "bfloat16" in eng["blas"] else "fp32",
    "other_precision": None if not eng_other else {
        "precision": other,
        "tower_b1_patches_per_s": eng_other["tower_b1_patches_per_s"],
        "tower_b64_patches_per_s": eng_other["tower_b64_patches_per_s"],
        "tower_b256_patches_per_s": eng_other["tower_b256_patches_per_s"],
        "ratio_vs_default_b64": round(eng_other["tower_b64_patches_per_s"] / eng["tower_b64_patches_per_s"], 2),
        "ratio_vs_opencv_dnn": round(eng_other["tower_b64_patches_per_s"] / dnn["opencv_dnn_b64_patches_per_s"], 2),
        "spread": [eng_other["tower_b64_min"], eng_other["tower_b64_max"]]},
    "opencv_dnn_max_abs_diff": dnn["opencv_dnn_vs_matchnet_max_abs_diff"],
    "match_ratio_vs_bfmatcher": mat["match_ratio_vs_bfmatcher"],
    "match_metric_ratio_vs_bfmatcher": mat["match_metric_ratio_vs_bfmatcher"],
    "end_to_end_ratio_vs_sift": mat["end_to_end_ratio_vs_sift"],
    "spreads": {"tower_patches_per_s": [eng["tower_b64_min"], eng["tower_b64_max"]],
                "opencv_dnn_patches_per_s": [dnn["opencv_dnn_b64_min"], dnn["opencv_dnn_b64_max"]],
                "match_ratio_vs_bfmatcher": mat["match_ratio_spread"],
                "end_to_end_ratio_vs_sift": mat["end_to_end_ratio_spread"]},
}
print("matching, %d x %d SIFT keypoints (box_in_scene 2x and a rotated view; shipped model): SIFT detect+compute "
      "%.0f ms, BFMatcher+ratio %.1f ms; MatchNet detect %.0f ms, describe %.0f ms, match %.1f ms (metric preset %.1f ms)"
      % (mat["keypoints"][0], mat["keypoints"][1], mat["sift_detect_compute_ms"], mat["bfmatcher_ratio_ms"],
         mat["mn_detect_ms"], mat["mn_describe_ms"], mat["mn_match_ms"], mat["mn_match_metric_ms"]))
print("match_ratio_vs_bfmatcher %.2f (repeats %.2f-%.2f; metric preset %.2f), end_to_end_ratio_vs_sift %.1f "
      "(repeats %.1f-%.1f)" % (mat["match_ratio_vs_bfmatcher"], mat["match_ratio_spread"][0], mat["match_ratio_spread"][1],
                               mat["match_metric_ratio_vs_bfmatcher"], mat["end_to_end_ratio_vs_sift"],
                               mat["end_to_end_ratio_spread"][0], mat["end_to_end_ratio_spread"][1]))
print("per-layer profile, one thread, us per patch (before: im2col path; after: %s blocked path)" % lay["blocked_isa"])
print("%-5s %-8s %-10s %7s %9s %9s %8s %8s %7s %7s" % ("layer", "kind", "output", "MMACs", "before us", "after us",
                                                     "GFLOP/s", "GFLOP/s", "share", "share"))
print("%-5s %-8s %-10s %7s %9s %9s %8s %8s %7s %7s" % ("", "", "", "", "", "", "before", "after", "before", "after"))
for l in lay["layers"]:
    gf = lambda us: "%8.1f" % (2 * l["macs"] / us * 1e-3) if l["macs"] else "%8s" % "-"
    print("%-5d %-8s %-10s %7.2f %9.1f %9.1f %s %s %6.1f%% %6.1f%%%s" % (
        l["layer"], l["kind"], l["shape"], l["macs"] * 1e-6, l["before_us"], l["after_us"], gf(l["before_us"]),
        gf(l["after_us"]), 100 * l["before_us"] / lay["before_us"], 100 * l["after_us"] / lay["after_us"],
        ("  " + l["path"]) if l.get("path") else ""))
macs = sum(l["macs"] for l in lay["layers"])
print("%-5s %-8s %-10s %7.2f %9.1f %9.1f %8.1f %8.1f  (%.2fx)" % (
    "total", "", "", macs * 1e-6, lay["before_us"], lay["after_us"], 2 * macs / lay["before_us"] * 1e-3,
    2 * macs / lay["after_us"] * 1e-3, lay["before_us"] / lay["after_us"]))
res["layers_one_thread_us"] = {"before": lay["before_us"], "after": lay["after_us"], "blocked_isa": lay["blocked_isa"]}
print(json.dumps(res))
PYEOF
