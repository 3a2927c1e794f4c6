#!/bin/bash
# Replay the inputs kept in testdata/fuzz/ (crashers found by make fuzz,
# and a few seeds) through the real binary: whatever the input, the tool
# must end with one of its own exit codes and a message, never a crash
# or a sanitizer report (make check runs this under ASan+UBSan too).
. "$(dirname "$0")/lib.sh"

own_code () { case $1 in 0|1|2|3|4) return 0 ;; *) return 1 ;; esac; }

replay_hives () {
  n=0
  for f in "$TOP"/testdata/fuzz/hive/*; do
    [ -f "$f" ] || continue
    cp "$f" "$WORK/in"; cp "$f" "$WORK/orig"
    set +e; "$N" --hive "$WORK/in" -r 2M -s 4M -o "$WORK/out.hive" >/dev/null 2>"$WORK/err"; rc=$?; set -e
    own_code $rc || { echo "$f: exit $rc"; cat "$WORK/err"; exit 1; }
    same_bytes "$WORK/in" "$WORK/orig"
    set +e; "$N" --hive "$WORK/in" --list --control-set all >/dev/null 2>"$WORK/err"; rc=$?; set -e
    own_code $rc || { echo "$f (--list): exit $rc"; cat "$WORK/err"; exit 1; }
    rm -f "$WORK/out.hive"
    n=$((n + 1))
  done
  echo "$n hive inputs replayed"; [ "$n" -gt 0 ]
}

# One input through the tool: ARGS are NUL-separated in FILE.  Run
# directly (not through xargs, which reports every exit 1-125 as 123 and
# would hide a sanitizer's exit 99).
replay_options () {
  n=0
  mkdir -p "$WORK/empty"
  for f in "$TOP"/testdata/fuzz/options/* "$TOP"/testdata/fuzz/size/*; do
    [ -f "$f" ] || continue
    case $f in
      */size/*) set +e; "$N" --hive /nonexistent -r "$(tr -d '\0' <"$f")" >/dev/null 2>"$WORK/err"; rc=$?; set -e ;;
      *) mapfile -d '' -t args < <(tr '\n' '\0' <"$f")
         set +e; (cd "$WORK/empty" && "$N" "${args[@]}" </dev/null) >/dev/null 2>"$WORK/err"; rc=$?; set -e ;;
    esac
    own_code $rc || { echo "$f: exit $rc"; cat "$WORK/err"; exit 1; }
    n=$((n + 1))
  done
  echo "$n option inputs replayed"; [ "$n" -gt 0 ]
}

# The kept inputs through the fuzz targets' own entry points (built with
# the sanitizers by make check; FUZZ_BIN names their directory).  Any
# sanitizer report exits 99 and fails the case.
replay_targets () {
  [ -n "${FUZZ_BIN:-}" ] || { echo "FUZZ_BIN not set"; exit 1; }
  n=0
  for t in "$TOP"/testdata/fuzz/*/; do
    t=$(basename "$t")
    [ -x "$FUZZ_BIN/fuzz_$t" ] || { echo "no target fuzz_$t in $FUZZ_BIN"; exit 1; }
    set -- "$TOP/testdata/fuzz/$t"/*
    [ -f "$1" ] || continue
    "$FUZZ_BIN/fuzz_$t" "$@" >"$WORK/err" 2>&1 || { echo "fuzz_$t: exit $?"; tail -30 "$WORK/err"; exit 1; }
    n=$((n + $#))
  done
  echo "$n inputs through the fuzz targets"; [ "$n" -gt 0 ]
}

# Image metadata (layers.c): each input as an image, both as what its
# magic says and as every format, listing with --direct: refused or
# opened, never a crash, the input unchanged.
replay_layers () {
  n=0
  mkdir -p "$WORK/l"
  for f in "$TOP"/testdata/fuzz/layers/*; do
    [ -f "$f" ] || continue
    cp "$f" "$WORK/l/img"; cp "$f" "$WORK/orig"
    for fmt in "" qcow2 vmdk vpc vhdx; do
      set +e; "$N" --direct --list ${fmt:+--format $fmt} "$WORK/l/img" >/dev/null 2>"$WORK/err"
      rc=$?; set -e
      own_code $rc || { echo "$f ($fmt): exit $rc"; cat "$WORK/err"; exit 1; }
      same_bytes "$WORK/l/img" "$WORK/orig"
    done
    n=$((n + 1))
  done
  echo "$n image metadata inputs replayed"; [ "$n" -gt 0 ]
}

check "fuzz regressions: hive inputs" replay_hives
check "fuzz regressions: option and size inputs" replay_options
if [ -n "${FUZZ_BIN:-}" ]; then
  check "fuzz regressions: kept inputs through the fuzz targets" replay_targets
else
  skip "fuzz regressions: kept inputs through the fuzz targets" "FUZZ_BIN unset (make sanitize-check sets it)"
fi
check "fuzz regressions: image metadata inputs" replay_layers
finish
