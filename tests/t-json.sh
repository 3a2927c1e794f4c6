#!/bin/bash
# The --json contract (netvsc-patch(1), JSON OUTPUT): every object, whatever
# the outcome, has exactly the keys the man page lists (nested objects
# too), of the types it gives, "schema_version": 1, and a documented
# status with its documented exit code; every documented status is
# produced here at least once.  The key lists are read from the man page
# by tests/json-schema.py, and report.c's own list (its out-of-memory
# line) is compared with them: code and documentation cannot drift apart
# silently.  Hive mode, plus --direct for the image-only outcomes.
. "$(dirname "$0")/lib.sh"
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"

HIVES=$FIXTURES/hives
IMAGES=$FIXTURES/images
MAN=$TOP/man/netvsc-patch.1
SEEN=$WORK/seen
KEY1="$CLASS\\0001"
: >"$SEEN"

# jrun STATUS EXIT ARGS...: run with --json, exit EXIT, and every object
# printed follows the man page; the last one has STATUS.
jrun () {
  st=$1 code=$2; shift 2
  run "$code" "$N" --json "$@"
  python3 "$TOP/tests/json-schema.py" "$MAN" check "$WORK/out" "$st" "$code" "$SEEN"
}
jget () { python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).read().splitlines()[-1]); print(json.dumps(eval(sys.argv[2], {"o": o})))' "$WORK/out" "$1"; }

source_keys () {
  python3 "$TOP/tests/json-schema.py" "$MAN" source "$TOP/src/report.c" "$TOP/src/job.c"
}

hive_outcomes () {
  h=$(hive_copy ws2019); mkdir "$WORK/bk"
  jrun would-patch 0 --hive "$h" -r 2M -n
  [ "$(jget 'o["written"]')" = false ] && [ "$(jget 'o["output"]')" = null ]
  jrun differs 5 --hive "$h" -r 2M --check
  jrun patched 0 --hive "$h" -r 2M -s 2M --backup "$WORK/bk"
  [ "$(jget 'o["written"]')" = true ] && [ "$(jget 'o["writes"]')" = 2 ]
  [ "$(jget 'o["backup"] is not None and o["output"] is not None')" = true ]
  [ "$(hget "$h" "$KEY1" ReceiveBufferSize)" = 2048 ]
  jrun unchanged 0 --hive "$h" -r 2M -s 2M
  [ "$(jget 'o["writes"]')" = 0 ]
  jrun unchanged 0 --hive "$h" -r 2M --check
  # the hive-mode object still carries the image keys, null
  [ "$(jget '[o["format"], o["root"], o["hive"], o["defer"], o["replay"]]')" = "[null, null, null, null, null]" ]
}

list_outcome () {
  h=$(hive_copy advanced)
  jrun listed 0 --hive "$h" --list
  # advanced properties with choices and numeric bounds were checked too
  [ "$(jget 'sum(len(a["advanced"]) for a in o["adapters"] if a["advanced"])')" -gt 3 ]
  [ "$(jget 'any(p["choices"] for a in o["adapters"] for p in (a["advanced"] or []))')" = true ]
}

refusals () {
  h=$(hive_copy advanced); cp "$h" "$WORK/orig"
  jrun invalid-value 2 --hive "$h" --set '*JumboPacket=9000'
  [ "$(jget 'o["adapters"][0]["changes"][0]["refused"] is not None')" = true ]
  h2=$(hive_copy no-netvsc)
  jrun no-adapter 3 --hive "$h2" -r 2M
  [ "$(jget 'o["matched"]')" = 0 ]
  # errors: exit 1 (the hive cannot be used), exit 2 (the command line
  # does not fit it); nothing was planned, so the plan's keys are null
  h3=$(hive_copy bad-select)
  jrun error 1 --hive "$h3" -r 2M
  [ "$(jget '[o["matched"], o["writes"], o["written"], o["adapters"]]')" = "[null, null, null, null]" ]
  jrun error 2 --hive "$h" -r 2M -o "$h"
  jrun error 1 --hive "$WORK/no-such-hive" -r 2M
  same_bytes "$h" "$WORK/orig"
}

# A dirty hive (tests/mklog.c): refused with --no-replay, recovered by
# --replay-only; a clean one copied by --replay-only is "unchanged".
dirty_outcomes () {
  cp "$HIVES/ws2019.hive" "$WORK/clean"; cp "$WORK/clean" "$WORK/step"
  printf 'Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\LoggedOnly]\n"Start"=dword:00000003\n' >"$WORK/step.reg"
  hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' "$WORK/step" "$WORK/step.reg"
  "$MKLOG" -o "$WORK/SYSTEM" -1 "$WORK/SYSTEM.LOG1" -2 "$WORK/SYSTEM.LOG2" --entries 2 --split 1 \
    "$WORK/clean" "$WORK/step"
  cp "$WORK/SYSTEM" "$WORK/dirty"
  jrun refused 4 --hive "$WORK/SYSTEM" -r 2M --no-replay
  jrun recovered 0 --hive "$WORK/SYSTEM" --replay-only -o "$WORK/rec"
  [ "$(jget 'o["replay"]["entries"]')" = 2 ] && [ "$(jget 'o["matched"]')" = null ]
  [ "$(hget "$WORK/rec" 'ControlSet001\Services\LoggedOnly' Start)" = 3 ]
  jrun would-patch 0 --hive "$WORK/SYSTEM" -r 2M -n
  [ "$(jget 'o["replay"]["logs_emptied"]')" = 0 ]
  same_bytes "$WORK/SYSTEM" "$WORK/dirty"
  jrun unchanged 0 --hive "$WORK/clean" --replay-only -o "$WORK/rec2"
}

# The parser's crash in the contained child (tests/abort-shim.c makes
# hivex abort on a marked hive): the object the parent writes for it has
# every key too.
crash_outcome () {
  if ldd "$N" | grep -q libasan; then echo "# sanitizer build: shim not preloaded"; return 0; fi
  mkdir -p "$WORK/c"
  abort_shim
  marked_hive "$HIVES/ws2019.hive" "$WORK/c/SYSTEM" "$KEY1"
  run 1 env LD_PRELOAD="$WORK/abort.so" "$N" --json --hive "$WORK/c/SYSTEM" -r 4M
  python3 "$TOP/tests/json-schema.py" "$MAN" check "$WORK/out" error 1 "$SEEN"
  err_has "crashed the parser (SIGABRT: abort-shim.c: hivex_node_set_value: injected abort)"
}

# Images (--direct, no appliance): deferred and patched with the image
# keys filled in, differs, and an image that cannot be opened.
image_outcomes () {
  cp "$IMAGES/template.qcow2" "$WORK/t.qcow2"
  jrun deferred 0 --direct --defer -r 2M "$WORK/t.qcow2"
  [ "$(jget '[o["format"], o["defer"]["action"], o["written"]]')" = '["qcow2", "installed", true]' ]
  [ "$(jget 'o["root"] is not None and o["hive"] is not None')" = true ]
  jrun deferred 0 --direct --defer -r 2M "$WORK/t.qcow2"
  [ "$(jget '[o["defer"]["action"], o["written"]]')" = '["in-place", false]' ]
  # several targets: one object each, the exit status the highest
  cp "$IMAGES/win.qcow2" "$WORK/w.qcow2"
  jrun differs 5 --direct --check -r 4M "$WORK/nonexistent.qcow2" "$WORK/w.qcow2"
  [ "$(wc -l <"$WORK/out")" -eq 2 ]
  # in the order they finish: either may come first
  [ "$(grep -c '"status":"error","exit_code":1' "$WORK/out")" -eq 1 ]
  [ "$(grep -c '"status":"differs","exit_code":5' "$WORK/out")" -eq 1 ]
  grep '"status":"error"' "$WORK/out" | grep -q 'nonexistent.qcow2'
}

# The line written when the object cannot be built (out of memory):
# json_dumps made to fail by an LD_PRELOAD shim; the line still has
# every key, status error, exit 1, and the target is named on stderr.
oom_line () {
  command -v cc >/dev/null || { echo "# no cc: skipped"; return 0; }
  # ASan must come first among preloaded libraries: not with a sanitizer build
  if ldd "$N" | grep -q libasan; then echo "# sanitizer build: shim not preloaded"; return 0; fi
  printf '#include <stddef.h>\nchar *json_dumps (const void *j, size_t f) { (void) j; (void) f; return NULL; }\n' \
    >"$WORK/nodump.c"
  cc -shared -fPIC -o "$WORK/nodump.so" "$WORK/nodump.c"
  h=$(hive_copy ws2019)
  set +e
  LD_PRELOAD="$WORK/nodump.so" "$N" --json --hive "$h" -r 2M -n >"$WORK/out" 2>"$WORK/err"
  set -e
  python3 "$TOP/tests/json-schema.py" "$MAN" check "$WORK/out" error 1
  err_has "out of memory building the JSON report of $h"
  [ "$(jget '[o["mode"], o["target"], o["control_sets"]]')" = '["hive", null, []]' ]
}

coverage () {
  python3 "$TOP/tests/json-schema.py" "$MAN" coverage "$SEEN"
}

check "report.c's keys and job.c's statuses are the man page's" source_keys
check "hive: would-patch, differs, patched, unchanged" hive_outcomes
check "hive: listed, with advanced properties" list_outcome
check "hive: invalid-value, no-adapter, error (1 and 2)" refusals
check "dirty hive: refused, recovered" dirty_outcomes
check "parser crash in the contained child" crash_outcome
check "--direct images: deferred, differs, error" image_outcomes
check "the out-of-memory line has every key too" oom_line
check "every documented status produced" coverage
finish
