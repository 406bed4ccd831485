#!/bin/sh
# Pause or resume background training runs (python/train.py) on this
# machine, so that CI and benchmarks get the cores to themselves:
#
#   scripts/training.sh pause | resume | status
#
# pause sends SIGSTOP to every running python/train.py, resume SIGCONT;
# train.py leaves stops of over a minute out of its training time.
# .ci/run and bench/run.sh pause on start and resume on exit. Harmless when
# no training runs.
set -u
pids=$(pgrep -f "python[0-9.]* .*python/train\.py" 2>/dev/null || true)
case "${1:-status}" in
pause) [ -n "$pids" ] && kill -STOP $pids && echo "training.sh: paused $(echo $pids | wc -w) training process(es)" ;;
resume) [ -n "$pids" ] && kill -CONT $pids && echo "training.sh: resumed $(echo $pids | wc -w) training process(es)" ;;
status) for p in $pids; do echo "$p $(ps -o stat= -p "$p")"; done ;;
*) echo "usage: scripts/training.sh pause|resume|status" >&2; exit 2 ;;
esac
exit 0
