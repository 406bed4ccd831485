#!/usr/bin/env bash
# Engine benchmark: libmatchnet against PyTorch and OpenCV DNN on the same
# network and weights, on this machine, in one run. Installs nothing (see
# tools/setup.sh --bench); builds what it needs into build-bench/.
#
#   bench/run.sh [--repeats R] [--threads N] [--arch original|pytorch|bottleneck]
#
# Prints a table and, as its last line, one JSON object with medians and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
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
    command -v "$need" >/dev/null || { echo "bench/run.sh: $need missing; run tools/setup.sh --bench" >&2; exit 1; }
done
"$PY" -c "import torch, numpy" 2>/dev/null || { echo "bench/run.sh: python3-torch missing; run tools/setup.sh --bench" >&2; exit 1; }

build=build-bench out=bench/out
mkdir -p "$out"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DMN_BUILD_BENCH=ON -DMN_BUILD_TESTS=OFF -DMN_BUILD_SAMPLES=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
model=$out/$arch.mnw onnx=$out/$arch.onnx
if [ ! -s "$model" ] || [ ! -s "$onnx" ]; then
    "$PY" tools/export.py --arch "$arch" --seed 0 -o "$model" --onnx "$onnx" 2>/dev/null >&2
fi

# Debian 12's OpenBLAS (0.3.21) does not know CPUs newer than its release
# and falls back to generic SSE3 kernels ("Prescott"), several times slower.
# Unless OPENBLAS_CORETYPE is already set, measure the engine both with the
# detected core and with the core the CPU supports, and run the peers with
# the latter too (they hardly use OpenBLAS, but then every program sees the
# same environment).
default_core=$("$build/bench/bench_engine" --blas-core)
tuned_core=""
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    case "$default_core" in
    Prescott|Core2|Nehalem|Sandybridge|Katmai|Northwood)
        if grep -qw avx512f /proc/cpuinfo; then tuned_core=SkylakeX
        elif grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then tuned_core=Haswell; fi ;;
    esac
fi
run_env=()
[ -n "$tuned_core" ] && run_env=(env OPENBLAS_CORETYPE="$tuned_core")

echo "bench: $arch model, $threads threads, $repeats repeats, OpenBLAS core $default_core${tuned_core:+ (also $tuned_core)}" >&2
eng_default=$("$build/bench/bench_engine" "$model" --threads "$threads" --blas-threads "$threads" --repeats "$repeats")
eng="$eng_default"
if [ -n "$tuned_core" ]; then
    eng=$("${run_env[@]}" "$build/bench/bench_engine" "$model" --threads "$threads" --blas-threads "$threads" --repeats "$repeats")
fi
dnn=$("${run_env[@]}" "$build/bench/bench_dnn" "$model" "$onnx" --threads "$threads" --repeats "$repeats")
tch=$("${run_env[@]}" "$PY" bench/bench_torch.py "$model" --threads "$threads" --repeats "$repeats")

"$PY" - "$eng" "$eng_default" "$dnn" "$tch" "$default_core" "$tuned_core" "$arch" <<'PYEOF'
import json, sys
eng, eng0, dnn, tch = (json.loads(a) for a in sys.argv[1:5])
default_core, tuned_core, arch = sys.argv[5], sys.argv[6], sys.argv[7]
rows = [
    ("tower batch 1", "tower_b1_patches_per_s", "torch_b1_patches_per_s", "opencv_dnn_b1_patches_per_s"),
    ("tower batch 64", "tower_b64_patches_per_s", "torch_b64_patches_per_s", "opencv_dnn_b64_patches_per_s"),
    ("tower batch 256", "tower_b256_patches_per_s", "torch_b256_patches_per_s", "opencv_dnn_b256_patches_per_s"),
]
core = tuned_core or default_core
print("%-22s %12s %12s %12s %12s %9s %9s" % ("patches/s (median)", "matchnet", "matchnet*", "pytorch", "opencv-dnn",
                                            "vs torch", "vs dnn"))
for name, e, t, d in rows:
    print("%-22s %12.1f %12.1f %12.1f %12.1f %8.2fx %8.2fx" % (
        name, eng[e], eng0[e], tch[t], dnn[d], eng[e] / tch[t], eng[e] / dnn[d]))
print("* with OpenBLAS's detected core (%s); first column: core %s" % (default_core, core))
print("%-22s %12.0f %12.0f %12.0f" % ("metric pairs/s", eng["metric_two_stage_pairs_per_s"],
                                      eng["metric_plain_pairs_per_s"], tch["torch_metric_pairs_per_s"]))
print("  (two-stage, plain concatenation, PyTorch plain)")
print("sgemm %.1f GFLOP/s (%d threads, core %s); batch-64 spread: matchnet %.0f-%.0f, torch %.0f-%.0f, dnn %.0f-%.0f" % (
    eng["sgemm_gflops"], eng["sgemm_threads"], core, eng["tower_b64_min"], eng["tower_b64_max"],
    tch["torch_b64_min"], tch["torch_b64_max"], dnn["opencv_dnn_b64_min"], dnn["opencv_dnn_b64_max"]))
print("OpenCV DNN vs libmatchnet descriptors: max abs diff %.3g (max |descriptor| %.3g)" % (
    dnn["opencv_dnn_vs_matchnet_max_abs_diff"], dnn["descriptor_max_abs"]))
macs = 93.7e6 if arch != "pytorch" else None
res = {
    "arch": arch,
    "tower_patches_per_s": eng["tower_b64_patches_per_s"],
    "torch_patches_per_s": tch["torch_b64_patches_per_s"],
    "opencv_dnn_patches_per_s": dnn["opencv_dnn_b64_patches_per_s"],
    "sgemm_gflops": eng["sgemm_gflops"],
    "ratio_vs_torch": round(eng["tower_b64_patches_per_s"] / tch["torch_b64_patches_per_s"], 2),
    "ratio_vs_opencv_dnn": round(eng["tower_b64_patches_per_s"] / dnn["opencv_dnn_b64_patches_per_s"], 2),
    "tower_b1_patches_per_s": eng["tower_b1_patches_per_s"],
    "tower_b256_patches_per_s": eng["tower_b256_patches_per_s"],
    "tower_patches_per_s_detected_core": eng0["tower_b64_patches_per_s"],
    "metric_two_stage_pairs_per_s": eng["metric_two_stage_pairs_per_s"],
    "metric_plain_pairs_per_s": eng["metric_plain_pairs_per_s"],
    "torch_metric_pairs_per_s": tch["torch_metric_pairs_per_s"],
    "blas_core": core, "blas_core_detected": default_core,
    "opencv_dnn_max_abs_diff": dnn["opencv_dnn_vs_matchnet_max_abs_diff"],
}
print(json.dumps(res))
PYEOF
