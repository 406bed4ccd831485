# cli_lib.sh - what the matchnet-match shell tests (test_cli.sh,
# test_hostile.sh) share; sourced after they set exe (the program), src
# (the source tree) and name (for the summary line).
#
# Sets tmp (removed on exit), box and scene (the bundled sample pair),
# python; counts checks and failures.
python=/usr/bin/python3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
checks=0
failures=0
box="$src/samples/data/box.png"
scene="$src/samples/data/box_in_scene.png"
# Files that a failed run must not leave behind (removed when found).
leftovers=""

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# expect_error STATUS DESCRIPTION ARGS...: exit status STATUS, exactly one
# line on stderr starting with "matchnet-match:", nothing on stdout, none of
# $leftovers.
expect_error() {
    want=$1
    what=$2
    shift 2
    checks=$((checks + 1))
    "$exe" "$@" >"$tmp/stdout" 2>"$tmp/stderr"
    rc=$?
    [ "$rc" -eq "$want" ] || fail "$what: exit status $rc, want $want (args: $*)"
    if [ "$(wc -l <"$tmp/stderr")" -ne 1 ] || ! grep -q '^matchnet-match: ' "$tmp/stderr"; then
        fail "$what: stderr is not one line starting with 'matchnet-match:' (args: $*):"
        cat "$tmp/stderr" >&2
    fi
    [ -s "$tmp/stdout" ] && fail "$what: wrote to stdout"
    for f in $leftovers; do
        [ -e "$f" ] && fail "$what: left $f" && rm -f "$f"
    done
    echo "  $what -> $rc: $(head -n 1 "$tmp/stderr")"
}

# finish: the summary line; the exit status says whether all passed.
finish() {
    echo "$name: $checks checks, $failures failed"
    [ "$failures" -eq 0 ]
}
