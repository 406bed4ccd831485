#!/bin/sh
# test_man_page_NAME: the program's --help and its man page (docs/man/NAME.1)
# list the same options, so that an option added, renamed or removed in one
# fails here until the other follows. Also: the page is that program's.
#
#   tests/test_man_page.sh PROGRAM MAN_PAGE
set -u
prog=$1
page=$2
name=$(basename "$prog")
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

help=$("$prog" --help) || { echo "FAIL: $prog --help exited with $?"; exit 1; }
# --help's option lines start with spaces and a dash ("  -o, --output PATH",
# "      --upright"); their names are the dash words before the first
# placeholder or the help text.
help_opts=$(printf '%s\n' "$help" | sed -n -E 's/^ +((-[A-Za-z0-9]|--[a-z0-9][a-z0-9-]*)(, (-[A-Za-z0-9]|--[a-z0-9][a-z0-9-]*))*).*/\1/p' |
    tr ',' '\n' | tr -d ' ' | sort -u)
[ -n "$help_opts" ] || fail "no options found in $name --help"

# The page's options: the tag line after each .TP in the OPTIONS section,
# with roff's \- read as a dash and font escapes (\fI, \fR) dropped.
page_opts=$(awk '
    /^\.SH/ { in_opts = ($0 ~ /^\.SH +"?OPTIONS"?/) }
    in_opts && tag { print; tag = 0; next }
    in_opts && /^\.TP/ { tag = 1 }
' "$page" | sed -e 's/\\-/-/g' -e 's/\\f[A-Z]//g' |
    grep -oE '(^|[ "])--?[A-Za-z0-9][a-z0-9-]*' | tr -d ' "' | sort -u)
[ -n "$page_opts" ] || fail "no options found in the OPTIONS section of $page"

for o in $help_opts; do
    printf '%s\n' "$page_opts" | grep -qxF -- "$o" || fail "$name --help lists $o, $page does not"
done
for o in $page_opts; do
    printf '%s\n' "$help_opts" | grep -qxF -- "$o" || fail "$page lists $o, $name --help does not"
done

upper=$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')
grep -qE "^\.TH \"?$upper\"? 1 " "$page" || fail "$page: no '.TH $upper 1' line"
awk '/^\.SH +"?NAME/ { getline; print; exit }' "$page" | sed 's/\\-/-/g' | grep -q "^$name - " ||
    fail "$page: the NAME section does not start with '$name - '"

n=$(printf '%s\n' "$help_opts" | wc -l)
if [ "$fails" -eq 0 ]; then
    echo "ok: $page and $name --help list the same $n options"
    exit 0
fi
exit 1
