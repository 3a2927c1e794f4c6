#!/bin/sh
# make-fixture-hives.sh MKHIVE OUTDIR
#
# Build OUTDIR/<name>.hive for every testdata/hives/<name>.reg: an empty
# hive from MKHIVE (tests/mkhive.c) with the .reg merged in by
# hivexregedit.  software.reg is merged under HKEY_LOCAL_MACHINE\SOFTWARE,
# everything else under HKEY_LOCAL_MACHINE\SYSTEM.
#
# Notes on hivexregedit --merge:
#  * --prefix is stripped from each [key] path; without it the keys would
#    be created as "HKEY_LOCAL_MACHINE\SYSTEM\..." under the hive root
#    (and fail, since that parent does not exist).
#  * it never creates missing parents, so every ancestor key is listed in
#    the .reg files, as a real regedit export does;
#  * each [key] block must end with a blank line, and a ";" comment line
#    inside a block ends it;
#  * unmarked strings are written as UTF-16LE (the default --encoding);
#  * the merge is committed at the end only: on error the hive is left
#    as mkhive made it, so we build into a temp file and rename.
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 MKHIVE OUTDIR" >&2
    exit 2
fi
mkhive=$1
outdir=$2
srcdir=$(cd "$(dirname "$0")/.." && pwd)/testdata/hives

case $mkhive in
    */*) ;;
    *) mkhive=./$mkhive ;;
esac
if [ ! -x "$mkhive" ]; then
    echo "$0: $mkhive: not an executable (build tests/mkhive.c first)" >&2
    exit 1
fi
command -v hivexregedit >/dev/null 2>&1 || {
    echo "$0: hivexregedit not found (package libwin-hivex-perl)" >&2
    exit 1
}

mkdir -p "$outdir"
n=0
for reg in "$srcdir"/*.reg; do
    name=$(basename "$reg" .reg)
    case $name in
        software) prefix='HKEY_LOCAL_MACHINE\SOFTWARE' root=ROOT ;;
        *)        prefix='HKEY_LOCAL_MACHINE\SYSTEM'   root=ROOT ;;
    esac
    out=$outdir/$name.hive
    tmp=$out.tmp.$$
    "$mkhive" "$tmp" "$root"
    if ! hivexregedit --merge --prefix "$prefix" --encoding UTF-16LE \
            "$tmp" "$reg"; then
        rm -f "$tmp"
        echo "$0: merging $reg failed" >&2
        exit 1
    fi
    mv -f "$tmp" "$out"
    n=$((n + 1))
done
echo "make-fixture-hives: $n hives in $outdir"
