# netvsc-patch shell test library: sourced by tests/t-*.sh.
#
# Each test file calls `check NAME CMD...` per case; the case passes when
# CMD (a shell function) returns 0.  Results are counted and the runner
# prints "N passed, N failed".  Verification never trusts the tool: hives
# are read back with hivexget/hivexregedit (hivex) and regfexport
# (libregf, an independent implementation).

set -u
: "${NETVSC_PATCH:?set NETVSC_PATCH to the binary}"
: "${FIXTURES:?set FIXTURES to the fixture directory}"
N=$NETVSC_PATCH
TOP=$(cd "$(dirname "$0")/.." && pwd)
MKLOG=${MKLOG:-$TOP/build/tests/mklog}       # tests/mklog.c: dirty hives + logs
SHARED=${SHARED:-$(dirname "$TOP")/shared}
RESULTS=${RESULTS:-/dev/null}
CLASS='ControlSet001\Control\Class\{4d36e972-e325-11ce-bfc1-08002be10318}'

WORK=$(mktemp -d "${TMPDIR:-/tmp}/netvsc-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

_pass=0 _fail=0 _skip=0

check () {
  name=$1; shift
  out=$WORK/case.log
  # Not inside `if`: errexit is ignored in a tested context, and each
  # case relies on it to stop at its first failing assertion.
  ( set -e; "$@" ) >"$out" 2>&1
  if [ $? -eq 0 ]; then
    _pass=$((_pass + 1)); echo "PASS: $name"; echo pass >>"$RESULTS"
    grep '^# ' "$out" || true     # figures a case reports
  else
    _fail=$((_fail + 1)); echo "FAIL: $name"; sed 's/^/    | /' "$out" | tail -25
    echo fail >>"$RESULTS"
  fi
}

skip () {
  _skip=$((_skip + 1)); echo "SKIP: $1 ($2)"; echo skip >>"$RESULTS"
}

finish () {
  echo "$(basename "$0"): $_pass passed, $_fail failed, $_skip skipped"
  [ "$_fail" -eq 0 ]
}

# run EXPECTED_EXIT CMD...: run, keep stdout/stderr in $WORK/out, $WORK/err.
run () {
  want=$1; shift
  set +e
  "$@" >"$WORK/out" 2>"$WORK/err"
  got=$?
  set -e
  if [ "$got" -ne "$want" ]; then
    echo "exit $got, expected $want: $*"; echo "stdout:"; cat "$WORK/out"
    echo "stderr:"; cat "$WORK/err"; return 1
  fi
}

# Assertions on the last run's output.
out_has () { grep -qF -- "$1" "$WORK/out" || { echo "stdout lacks: $1"; cat "$WORK/out"; return 1; }; }
err_has () { grep -qF -- "$1" "$WORK/err" || { echo "stderr lacks: $1"; cat "$WORK/err"; return 1; }; }
err_lines () {
  n=$(wc -l <"$WORK/err")
  [ "$n" -eq "$1" ] || { echo "stderr has $n lines, expected $1:"; cat "$WORK/err"; return 1; }
}

# A fresh copy of fixture hive NAME at $WORK/NAME.hive (path on stdout).
hive_copy () {
  cp "$FIXTURES/hives/$1.hive" "$WORK/$1.hive"; echo "$WORK/$1.hive"
}

sum () { sha256sum "$1" | cut -d' ' -f1; }
same_bytes () {
  [ "$(sum "$1")" = "$(sum "$2")" ] || { echo "$1 and $2 differ"; return 1; }
}

# hivexget FILE KEYPATH VALUE -> value as hivexget prints it.
hget () { hivexget "$1" "\\$2" "$3"; }

# regf_value FILE KEYPATH VALUE -> "TYPE DATA" read by libregf's regfexport.
regf_value () {
  regfexport -K "$2" "$1" 2>/dev/null | awk -v name="$3" '
    $1 == "Value:" { hit = ($3 == name && NF == 3) }
    hit && $1 == "Type:" { t = $NF; gsub(/[()]/, "", t) }
    hit && $1 == "Data:" { print t, $2; exit }'
}

# The lines that differ between the full exports of two hives.
export_diff () {
  hivexregedit --export "$1" '\' >"$WORK/a.reg"
  hivexregedit --export "$2" '\' >"$WORK/b.reg"
  diff "$WORK/a.reg" "$WORK/b.reg" | grep '^[<>]' || true
}

# hget_absent FILE KEYPATH VALUE: the value must not exist.  (A bare
# `! cmd` never stops a case under errexit, so it is not used.)
hget_absent () {
  if hivexget "$1" "\\$2" "$3" >/dev/null 2>&1; then
    echo "$2 $3 exists in $1, expected absent"; return 1
  fi
}

# ntfs_spelt PART PATH: PATH as spelt in the NTFS partition file PART,
# found one component at a time ignoring case (ntfscat is case-sensitive,
# Windows is not; extract-hive.sh resolves the same way); fails if absent.
ntfs_spelt () {
  local rest=${2#/} cur= comp match
  while [ -n "$rest" ]; do
    comp=${rest%%/*}
    case $rest in */*) rest=${rest#*/} ;; *) rest= ;; esac
    match=$(ntfsls -p "${cur:-/}" "$1" 2>/dev/null |
            awk -v c="$comp" 'tolower($0) == tolower(c) { print; exit }')
    [ -n "$match" ] || return 1
    cur=$cur/$match
  done
  printf '%s\n' "$cur"
}

# timeline CMD...: run CMD and print each line of its stderr after the
# microseconds since it started, then "US end": where to aim SIGKILLs.
timeline () {
  python3 - "$@" <<'PY'
import subprocess, sys, time
t0 = time.monotonic()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
for line in p.stderr:
    print(int((time.monotonic() - t0) * 1e6), line, end="")
p.wait()
print(int((time.monotonic() - t0) * 1e6), "end")
PY
}

# Images whose way to the hive holds names that differ only in case
# (Windows would open one of them, we cannot tell which: both backends
# refuse them, exit 1): the fixtures casewin/casesys/casecfg.raw, and
# win.raw with a second hive (system) or log (system.log1) beside the
# first, written with ntfscp.  case_images copies or makes them in $WORK
# (IMAGE.raw, and IMAGE.orig to compare with), after checking with
# ntfsls that both names are really there; CASE_NAMES says which.
CASE_NAMES='casewin / WINDOWS Windows
casesys /Windows SYSTEM32 System32
casecfg /Windows/System32 Config config
casehive /Windows/System32/config SYSTEM system
caselog /Windows/System32/config SYSTEM.LOG1 system.log1'
case_images () {
  local img dir a b n
  for n in casewin casesys casecfg; do
    cp --sparse=always "$FIXTURES/images/$n.raw" "$WORK/$n.raw"
  done
  for n in hive:system log:system.log1; do
    dd if="$FIXTURES/images/win.raw" of="$WORK/case.part" bs=512 skip=2048 status=none
    head -c 4096 /dev/urandom >"$WORK/case.junk"
    ntfscp "$WORK/case.part" "$WORK/case.junk" "/Windows/System32/config/${n#*:}" >/dev/null
    cp --sparse=always "$FIXTURES/images/win.raw" "$WORK/case${n%%:*}.raw"
    dd if="$WORK/case.part" of="$WORK/case${n%%:*}.raw" bs=512 seek=2048 conv=notrunc \
       status=none
  done
  printf '%s\n' "$CASE_NAMES" | while read -r img dir a b; do
    dd if="$WORK/$img.raw" of="$WORK/case.part" bs=512 skip=2048 status=none
    ntfsls -p "$dir" "$WORK/case.part" >"$WORK/case.ls"
    grep -qxF -- "$a" "$WORK/case.ls" && grep -qxF -- "$b" "$WORK/case.ls" ||
      { echo "$img: $dir lacks $a or $b"; return 1; }
    cp --sparse=always "$WORK/$img.raw" "$WORK/$img.orig"
  done
  rm -f "$WORK/case.part" "$WORK/case.junk" "$WORK/case.ls"
}
# case_refused: after a run on them (its exit checked by run), each image
# of case_images was refused with the message naming the device and the
# two names in full, and is byte-identical.
case_refused () {
  local img dir a b
  printf '%s\n' "$CASE_NAMES" | while read -r img dir a b; do
    dir=${dir%/}
    err_has "$WORK/$img.raw: /dev/sda1: $dir/$a and $dir/$b differ only in case (Windows would open one of them, which one is not defined): rename or remove one" ||
      return 1
    same_bytes "$WORK/$img.raw" "$WORK/$img.orig" || return 1
  done
}

# abort_shim: $WORK/abort.so (tests/abort-shim.c), preloaded by the
# containment tests: libhivex's hivex_node_set_value aborts on a key
# holding a value named NetvscPatchTestAbort (marked_hive makes one).
abort_shim () {
  [ -f "$WORK/abort.so" ] ||
    cc -shared -fPIC -o "$WORK/abort.so" "$TOP/tests/abort-shim.c" -lhivex
}
# marked_hive IN OUT KEY: IN with NetvscPatchTestAbort=1 added to KEY
# (a path below SYSTEM), by hivexregedit.
marked_hive () {
  printf 'Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\%s]\n"NetvscPatchTestAbort"=dword:00000001\n' \
    "$3" >"$WORK/mark.reg"
  cp "$1" "$2"
  hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' "$2" "$WORK/mark.reg"
}
