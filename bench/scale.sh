#!/usr/bin/env bash
# Scale benchmark of matchnet-colmap (issue 17): time and peak memory against
# the number of images N on a synthetic collection (bench/scale_views.py:
# 640x480 views of one large textured plane), with the descriptor store
# (--store, fixed --cache-mb), for 1 rank x 1 thread, 1 rank x 2 threads and
# 2 ranks x 1 thread (mpirun; 4 ranks oversubscribed with --four), plus the
# per-image and per-pair costs and an estimate for a large run.
#
#   bench/scale.sh [--sizes 20,40,80,...] [--quick | --full] [--four] [--configs 1x1,1x2,2x1,4x1]
#                  [--work DIR] [--exe PATH] [--cache-mb MB] [--max-keypoints N]
#                  [--retrieval K] [--exhaustive-max N] [--verify own|colmap]
#                  [--est-images N] [--est-nodes N] [--est-cores C] [--keep] [--no-pause]
#
# Pairs: exhaustive for N <= --exhaustive-max, retrieval:K (K = 10) beyond.
# Defaults: sizes 20,40,80,160, exhaustive up to 80 (11 minutes on 2 cores);
# --quick: 10,20,40 with --exhaustive-max 20 (a smoke test, about 2 minutes);
# --full: 100,200,500,1000,2000, exhaustive up to 200, and --four (3 to 4
# hours on 2 cores, estimated; see bench/README.md). Builds nothing: --exe
# defaults to build/apps/matchnet-colmap (cmake --build build --target
# matchnet-colmap); the mpirun configurations run when the program was
# built with MPI (MN_WITH_MPI) and mpirun is installed.
#
# Each configuration has its own store; for each N (ascending) a fresh
# database is made in two timed steps: "describe" (an empty pair list: the
# images not yet in the store are described - N minus the previous N - and
# all N are written to the database) and "match" (pair selection, reading
# the store through the cache, matching, --verify own, writing). Peak RSS is
# /usr/bin/time's maximum resident set size; under mpirun each rank is
# measured on its own and the table gives the largest rank (the JSON also
# the sum over ranks). For 1x1 a "register" step is also timed: the N
# images, all in the store, into another new database (what rank 0 does
# alone after the ranks have described). The writer's throughput (pairs
# written per second by rank 0) is timed by bench/scale_writer.py on the
# 1x1 databases: the matches and geometries replayed into the database as
# the describe step left it, 16 pairs to a transaction, as the program
# commits them.
#
# Writes WORK/scale.md (the tables and the estimate) and WORK/scale.json;
# WORK (default bench/out/scale) holds everything the run makes and must be
# empty or a previous run's (it is emptied). On success the views, stores and
# databases are deleted (unless --keep); on failure the script exits
# non-zero and leaves in WORK only the logs and timings of the runs
# (WORK/runs/*/n*/*.log): no scale.md / scale.json, views, stores or databases.
set -euo pipefail
caller=$PWD # --work and --exe are relative to it
cd "$(dirname "$0")/.."
root=$PWD
PY=/usr/bin/python3

sizes=20,40,80,160 exhaustive_max=80 retrieval_k=10 cache_mb=64 max_kp=1000 verify=own
four=0 keep=0 pause=1 only='' work=bench/out/scale exe=build/apps/matchnet-colmap
est_images=10000 est_nodes=100 est_cores=16
usage() {
    sed -n '9,12p' "$0" | sed 's/^# //' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
    --sizes) sizes=$2; shift 2 ;;
    --quick) sizes=10,20,40 exhaustive_max=20; shift ;;
    --full) sizes=100,200,500,1000,2000 exhaustive_max=200 four=1; shift ;;
    --four) four=1; shift ;;
    --configs) only=$2; shift 2 ;;
    --work) work=$(cd "$caller" && realpath -m -- "$2"); shift 2 ;;
    --exe) exe=$(cd "$caller" && realpath -m -- "$2"); shift 2 ;;
    --cache-mb) cache_mb=$2; shift 2 ;;
    --max-keypoints) max_kp=$2; shift 2 ;;
    --retrieval) retrieval_k=$2; shift 2 ;;
    --exhaustive-max) exhaustive_max=$2; shift 2 ;;
    --verify) verify=$2; shift 2 ;;
    --est-images) est_images=$2; shift 2 ;;
    --est-nodes) est_nodes=$2; shift 2 ;;
    --est-cores) est_cores=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --no-pause) pause=0; shift ;;
    *) usage ;;
    esac
done
die() {
    echo "bench/scale.sh: $*" >&2
    exit 1
}
[[ "$sizes" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--sizes: a comma-separated list of image counts, e.g. 25,50,100"
for v in "$exhaustive_max" "$retrieval_k" "$cache_mb" "$max_kp" "$est_images" "$est_nodes" "$est_cores"; do
    [[ "$v" =~ ^[0-9]+$ ]] || die "not a number: $v"
done
case "$verify" in own | colmap) ;; *) die "--verify: own or colmap" ;; esac
IFS=, read -r -a size_list <<<"$sizes"
mapfile -t size_list < <(printf '%s\n' "${size_list[@]}" | sort -n -u)
max_n=${size_list[-1]}
[ "${size_list[0]}" -ge 2 ] || die "--sizes: at least 2 images"

[ -x "$exe" ] || die "$exe missing: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build --target matchnet-colmap"
exe=$(realpath "$exe")
[ -x /usr/bin/time ] || die "/usr/bin/time missing (Debian package 'time')"
"$PY" -c "import cv2, numpy" 2>/dev/null || die "$PY: cv2 and numpy needed (python3-opencv, python3-numpy)"
export MATCHNET_MODEL=${MATCHNET_MODEL:-$root/models/matchnet.mnw}
[ -s "$MATCHNET_MODEL" ] || die "model $MATCHNET_MODEL missing"

all_configs=("1 1" "1 2")
# (not ldd | grep -q: grep's early exit would fail the pipeline under pipefail)
if command -v mpirun >/dev/null && [[ "$(ldd "$exe")" == *libmpi* ]]; then
    all_configs+=("2 1" "4 1")
else
    echo "bench/scale.sh: no MPI build or no mpirun: 1-rank configurations only" >&2
fi
[ -n "$only" ] || only=1x1,1x2,2x1
[ "$four" = 1 ] && only=$only,4x1
configs=()
for conf in "${all_configs[@]}"; do
    [[ ",$only," == *",${conf/ /x},"* ]] && configs+=("$conf")
done
[ "${#configs[@]}" -gt 0 ] || die "--configs $only: none of 1x1, 1x2, 2x1, 4x1 available"

# The work folder: only an empty one or one this script made is used (and
# emptied), so that a wrong --work deletes nothing else.
if [ -e "$work" ]; then
    [ -d "$work" ] || die "--work $work is not a folder"
    if [ -n "$(ls -A "$work")" ]; then
        [ -e "$work/.scale-bench" ] || die "--work $work is not empty and not made by bench/scale.sh; refusing to use it"
        find "$work" -mindepth 1 -delete
    fi
fi
mkdir -p "$work"
work=$(realpath "$work")
: >"$work/.scale-bench"

# Free disk, before anything is written: the views (about 0.1 MB each),
# one store per configuration (about 0.53 MB an image at 1,000 keypoints:
# 16 bytes a keypoint + 2 x 256 float16), the largest database (about 0.1 MB
# an image + 4 kB a pair) and its copy for the writer's replay, and 512 MB to spare.
max_pairs=0
for n in "${size_list[@]}"; do
    if [ "$n" -le "$exhaustive_max" ]; then p=$((n * (n - 1) / 2)); else p=$((n * retrieval_k)); fi
    [ "$p" -gt "$max_pairs" ] && max_pairs=$p
done
kp_kb=$(((max_kp * (16 + 512) + 1023) / 1024))
need_mb=$(((max_n * 100 + ${#configs[@]} * max_n * kp_kb + 2 * (max_n * 100 + max_pairs * 4)) / 1024 + 512))
avail_mb=$(($(df -Pk "$work" | awk 'NR == 2 {print $4}') / 1024))
echo "bench/scale.sh: sizes ${size_list[*]}, ${#configs[@]} configurations; needs about $need_mb MB on $work, $avail_mb MB free" >&2
if [ "$avail_mb" -lt "$need_mb" ]; then
    rm -f "$work/.scale-bench"
    rmdir "$work" 2>/dev/null || true
    die "too little free disk under $work: $avail_mb MB free, about $need_mb MB needed (fewer --sizes, or another --work)"
fi

# Background training would share the cores: stopped for the benchmark.
# (--no-pause: the caller has paused it and resumes it, as CI does.)
[ "$pause" = 1 ] && scripts/training.sh pause
ok=0
cleanup() {
    [ "$pause" = 1 ] && { scripts/training.sh resume || true; }
    if [ "$ok" != 1 ]; then
        rm -f "$work/scale.md" "$work/scale.json" "$work/rows.tsv.tmp" "$work/scale.md.tmp" "$work/scale.json.tmp"
        # Only the logs and timings stay: no views, stores or databases.
        rm -rf "$work/views" "$work"/runs/*/store "$work"/runs/*/n*/images "$work"/runs/*/n*/*.db
        echo "bench/scale.sh: FAILED; logs under $work/runs" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mpi_env=(env OMPI_MCA_btl_vader_single_copy_mechanism=none)
mpi_args=(--oversubscribe --bind-to none)
if [ "$(id -u)" = 0 ]; then mpi_args+=(--allow-run-as-root); fi

echo "bench/scale.sh: rendering $max_n views" >&2
"$PY" bench/scale_views.py "$work/views" "$max_n"
: >"$work/empty.pairs"

# timed OUT_PREFIX RANKS THREADS LOG ARGS...: run matchnet-colmap, write
# OUT_PREFIX.0 .. OUT_PREFIX.(RANKS-1) with "wall_s max_rss_kb user_s sys_s"
# per process and OUT_PREFIX.wall with the whole run's wall time.
timed() {
    local pre=$1 ranks=$2 threads=$3 log=$4
    shift 4
    local t0 t1 rc=0
    t0=$(date +%s.%N)
    if [ "$ranks" = 1 ]; then
        /usr/bin/time -f "%e %M %U %S" -o "$pre.0" "$exe" --threads "$threads" --max-keypoints "$max_kp" \
            --progress never "$@" >"$log" 2>&1 || rc=$?
    else
        # shellcheck disable=SC2016 # expanded by the shell of each rank
        "${mpi_env[@]}" mpirun "${mpi_args[@]}" -n "$ranks" sh -c \
            'exec /usr/bin/time -f "%e %M %U %S" -o "$0.$OMPI_COMM_WORLD_RANK" "$@"' "$pre" \
            "$exe" --threads "$threads" --max-keypoints "$max_kp" --progress never "$@" >"$log" 2>&1 || rc=$?
    fi
    t1=$(date +%s.%N)
    if [ "$rc" != 0 ]; then
        tail -n 20 "$log" >&2
        die "matchnet-colmap failed (exit $rc): see $log"
    fi
    "$PY" -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$t1" >"$pre.wall"
}

# One row per (configuration, N): tab-separated, read by scale_report.py.
rows=$work/rows.tsv.tmp
: >"$rows"
bytes() { du -sb "$1" | cut -f1; }
for conf in "${configs[@]}"; do
    read -r ranks threads <<<"$conf"
    cname="${ranks}x${threads}"
    store=$work/runs/$cname/store
    mkdir -p "$store"
    prev=0
    for n in "${size_list[@]}"; do
        d=$work/runs/$cname/n$n
        mkdir -p "$d/images"
        for ((k = 0; k < n; k++)); do
            ln -s "$work/views/$(printf 'view%05d.jpg' "$k")" "$d/images/"
        done
        if [ "$n" -le "$exhaustive_max" ]; then spec=exhaustive; else spec=retrieval:$retrieval_k; fi
        echo "bench/scale.sh: $cname N=$n ($spec)" >&2
        common=(--images "$d/images" --database "$d/database.db" --store "$store" --cache-mb "$cache_mb")
        timed "$d/describe" "$ranks" "$threads" "$d/describe.log" "${common[@]}" --pairs "$work/empty.pairs"
        db_images=$(bytes "$d/database.db")
        register_s=-1
        if [ "$cname" = 1x1 ]; then
            cp "$d/database.db" "$d/images.db"
            # Registering alone: all N images already in the store, into a
            # new database (what rank 0 does after the ranks described).
            timed "$d/register" 1 1 "$d/register.log" --images "$d/images" --database "$d/register.db" \
                --store "$store" --cache-mb "$cache_mb" --pairs "$work/empty.pairs"
            register_s=$(cat "$d/register.wall")
            rm -f "$d/register.db"
        fi
        timed "$d/match" "$ranks" "$threads" "$d/match.log" "${common[@]}" --pairs "$spec" --verify "$verify"
        db_all=$(bytes "$d/database.db")
        pairs=$(sed -n 's/.* images (.*), \([0-9]*\) pairs (\([0-9]*\) matched now.*/\1 \2/p' "$d/match.log" | tail -n 1)
        [ -n "$pairs" ] || die "no summary line in $d/match.log"
        read -r pairs matched <<<"$pairs"
        [ "$pairs" = "$matched" ] || die "$cname N=$n: $matched of $pairs pairs matched (a stale database?)"
        writer_pairs=-1 writer_s=-1
        if [ "$cname" = 1x1 ]; then
            read -r writer_pairs writer_s _ < <("$PY" bench/scale_writer.py "$d/database.db" "$d/images.db") ||
                die "scale_writer.py failed on $d"
            [ -n "$writer_s" ] || die "scale_writer.py failed on $d"
        fi
        "$PY" - "$d" "$ranks" >>"$rows" <<PYEOF
import sys
d, ranks = sys.argv[1], int(sys.argv[2])
def per_rank(step):
    return [list(map(float, open("%s/%s.%d" % (d, step, r)).read().split()[-4:])) for r in range(ranks)]
out = ["$cname", "$ranks", "$threads", "$n", "$spec", "$pairs", str($n - $prev)]
for step in ("describe", "match"):
    rr = per_rank(step)
    out += [open("%s/%s.wall" % (d, step)).read().strip(), "%d" % max(r[1] for r in rr), "%d" % sum(r[1] for r in rr),
            "%.2f" % (rr[0][2] + rr[0][3]), "%.2f" % sum(r[2] + r[3] for r in rr)]
out += ["$(bytes "$store")", "$db_images", "$db_all", "$register_s", "$writer_pairs", "$writer_s"]
print("\t".join(out))
PYEOF
        rm -f "$d/database.db" "$d/images.db" "$d/register.db"
        prev=$n
    done
    [ "$keep" = 1 ] || rm -rf "$store"
done

cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
"$PY" bench/scale_report.py "$rows" "$work/scale.md.tmp" "$work/scale.json.tmp" --cpu "$cpu" --cores "$(nproc)" \
    --cache-mb "$cache_mb" --max-keypoints "$max_kp" --verify "$verify" --retrieval "$retrieval_k" \
    --est-images "$est_images" --est-nodes "$est_nodes" --est-cores "$est_cores"
mv "$work/scale.md.tmp" "$work/scale.md"
mv "$work/scale.json.tmp" "$work/scale.json"
mv "$rows" "$work/rows.tsv"
[ "$keep" = 1 ] || rm -rf "$work/views" "$work"/runs/*/n*/images
cat "$work/scale.md"
ok=1
