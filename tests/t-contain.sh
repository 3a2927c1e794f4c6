#!/bin/bash
# A parser that aborts.  The hive libhivex really aborted on
# (tests/crash-hive.py: a value listed twice, which hivex frees twice
# when it rewrites the key's values: the assertion in its
# mark_block_unused) is now refused before hivex writes.  The
# containment is tested with tests/abort-shim.c preloaded, which makes
# hivex_node_set_value abort on a hive marked for it.  Whatever the
# mode, the target that crashes the parser ends with exit 1 and one line
# naming it, its bytes unchanged, no temporary file left beside it or in
# TMPDIR, and the other targets of the run are patched.  Hive mode,
# --direct batches, and the appliance backend (one launch).
. "$(dirname "$0")/lib.sh"
# Everything the tool stages in $TMPDIR must be gone afterwards.  (The
# appliance stays cached where it was: libguestfs keeps it in $TMPDIR.)
export LIBGUESTFS_CACHEDIR="${LIBGUESTFS_CACHEDIR:-${TMPDIR:-/var/tmp}}"
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"

IMAGES=$FIXTURES/images
HIVES=$FIXTURES/hives
KEY1="$CLASS\\0001"
CONFIG=/Windows/System32/config
CRASHED="crashed the parser (SIGABRT: "

img_copy () { cp --sparse=always "$IMAGES/$1" "$WORK/$1"; echo "$WORK/$1"; }
extract () { sh "$TOP/tests/extract-hive.sh" "$@" 2>/dev/null; }
# crash_hive OUT: ws2019 marked for abort-shim.c
crash_hive () { marked_hive "$HIVES/ws2019.hive" "$1" "$KEY1"; }
abort_shim
SHIM=$WORK/abort.so
SHIM_LINE="abort-shim.c: hivex_node_set_value: injected abort"

tmp_empty () {
  [ -z "$(ls -A "$TMPDIR")" ] || { echo "left in TMPDIR:"; ls -la "$TMPDIR"; return 1; }
}
# no_temp_beside DIR: nothing of ours (.NAME.netvsc-patch.XXXXXX) in DIR
no_temp_beside () {
  if ls -A "$1" | grep 'netvsc-patch'; then echo "temporary files left in $1"; return 1; fi
}

# An image (win.raw) whose SYSTEM is the crashing hive, written into
# its NTFS partition with ntfs-3g's own tools (no netvsc-patch).
crash_image () {
  crash_hive "$WORK/S"
  cp --sparse=always "$IMAGES/win.raw" "$1"
  dd if="$1" of="$WORK/p" bs=512 skip=2048 count=129024 status=none
  ntfscp "$WORK/p" "$WORK/S" "$CONFIG/SYSTEM" >/dev/null
  dd if="$WORK/p" of="$1" bs=512 seek=2048 conv=notrunc status=none
  rm -f "$WORK/p"
}

# The crafted hive (a value listed twice) really aborts libhivex when it
# is written: hivex's own hivexregedit --merge of the same change dies by
# SIGABRT.  netvsc-patch refuses it before hivex writes, in one line,
# and reads it fine (--list, --dry-run).
values_listed_twice () {
  mkdir -p "$WORK/h"
  python3 "$TOP/tests/crash-hive.py" "$HIVES/ws2019.hive" "$WORK/h/SYSTEM" "$KEY1"
  cp "$WORK/h/SYSTEM" "$WORK/h/orig"
  printf 'Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\%s]\n"ReceiveBufferSize"=dword:00001000\n' \
    "$KEY1" >"$WORK/set.reg"
  cp "$WORK/h/SYSTEM" "$WORK/h/hx"
  rc=0; hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' "$WORK/h/hx" "$WORK/set.reg" \
    2>"$WORK/err" || rc=$?
  # perl reports a child's abort as 134 (128 + SIGABRT) or dies itself
  err_has "mark_block_unused: Assertion"
  [ "$rc" -ne 0 ]
  run 1 "$N" --hive "$WORK/h/SYSTEM" -r 4M -s 4M
  err_has "netvsc-patch: $WORK/h/SYSTEM: $KEY1: the key's values are damaged (a cell named twice among them, or a value or its data not a cell): nothing written"
  err_lines 1
  same_bytes "$WORK/h/SYSTEM" "$WORK/h/orig"
  no_temp_beside "$WORK/h"
  tmp_empty
  run 0 "$N" --list --hive "$WORK/h/SYSTEM"
  out_has "Microsoft Hyper-V Network Adapter"
  run 0 "$N" -n --hive "$WORK/h/SYSTEM" -r 4M
  out_has "would patch"
}

hive_mode () {
  mkdir -p "$WORK/h1"; crash_hive "$WORK/h1/SYSTEM"; cp "$WORK/h1/SYSTEM" "$WORK/orig"
  run 1 env LD_PRELOAD="$SHIM" "$N" --hive "$WORK/h1/SYSTEM" -r 4M -s 4M
  err_has "netvsc-patch: $WORK/h1/SYSTEM: the hive $CRASHED"
  err_has "$SHIM_LINE"
  err_has "); it was left as it was"
  err_lines 1
  [ ! -s "$WORK/out" ]
  same_bytes "$WORK/h1/SYSTEM" "$WORK/orig"
  no_temp_beside "$WORK/h1"
  tmp_empty
  # --json: one object, the same error
  run 1 env LD_PRELOAD="$SHIM" "$N" --json --hive "$WORK/h1/SYSTEM" -r 4M -s 4M
  python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["status"]=="error" and o["exit_code"]==1 and "crashed the parser (SIGABRT" in o["error"], o' "$WORK/out"
  err_lines 1
  # -o: the temp file beside the output is removed too
  mkdir -p "$WORK/o"
  run 1 env LD_PRELOAD="$SHIM" "$N" --hive "$WORK/h1/SYSTEM" -o "$WORK/o/NEW" -r 4M
  err_lines 1
  [ -z "$(ls -A "$WORK/o")" ] || { ls -la "$WORK/o"; exit 1; }
  same_bytes "$WORK/h1/SYSTEM" "$WORK/orig"
  tmp_empty
  # then a sound hive in the same places: patched, as ever
  cp "$HIVES/ws2019.hive" "$WORK/h1/GOOD"
  run 0 env LD_PRELOAD="$SHIM" "$N" --hive "$WORK/h1/GOOD" -r 4M -s 4M
  out_has "patched, 1 adapter matched"
  [ "$(hget "$WORK/h1/GOOD" "$KEY1" ReceiveBufferSize)" = 4096 ]
  no_temp_beside "$WORK/h1"
  tmp_empty
}

# SIGTERM to the tool's PID only (a supervisor's kill) while the child
# parses: forwarded, so the job stops as it always has.
hive_mode_sigterm () {
  big=$SHARED/real-hives/SYSTEM.xz
  if [ -f "$big" ]; then xz -dc "$big" >"$WORK/big"; match='pci\ven_8086&dev_100f'
  else cp "$HIVES/multi.hive" "$WORK/big"; match=netvsc; fi
  # Kill points spread over one run's own length (measured here, as the
  # second of two runs: a fast idle machine and a loaded one differ 3x),
  # so that some land between the handlers' installation and the write.
  for k in 1 2; do
    cp "$WORK/big" "$WORK/timed"
    t0=$(date +%s%N)
    "$N" -q --hive "$WORK/timed" --match "$match" -r 4M >/dev/null 2>&1
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  done
  rm -f "$WORK/timed"
  stopped=0 tried=0
  for i in 1 2 3 4 5 6 7 8 9; do
    tried=$((tried + 1))
    mkdir -p "$WORK/s$i"; cp "$WORK/big" "$WORK/s$i/SYSTEM"
    # a kill before the shell's redirections must not find the last
    # run's messages there
    rm -f "$WORK/out" "$WORK/err"; : >"$WORK/err"
    "$N" --hive "$WORK/s$i/SYSTEM" --match "$match" -r 4M >"$WORK/out" 2>"$WORK/err" &
    pid=$!
    at=$((ms * i / 10))
    sleep "$(printf '%d.%03d' $((at / 1000)) $((at % 1000)))"
    kill -TERM "$pid" 2>/dev/null || true
    rc=0; wait "$pid" || rc=$?
    if [ "$rc" -eq 1 ]; then
      err_has "interrupted by SIGTERM; nothing was written"
      err_lines 1
      same_bytes "$WORK/s$i/SYSTEM" "$WORK/big"
      stopped=$((stopped + 1))
    elif [ "$rc" -eq 143 ] && [ ! -s "$WORK/err" ]; then
      same_bytes "$WORK/s$i/SYSTEM" "$WORK/big"   # before its handlers were installed
    else
      [ "$rc" -eq 0 ] || { echo "exit $rc"; cat "$WORK/err"; exit 1; }
    fi
    # no child left behind, nothing left in the directory or TMPDIR
    if pgrep -f "$WORK/s$i/SYSTEM" >/dev/null; then echo "a child outlived the run"; exit 1; fi
    no_temp_beside "$WORK/s$i"
    tmp_empty
  done
  echo "# SIGTERM to the parent: $stopped of $tried runs stopped before writing (a run takes $ms ms)"
  [ "$stopped" -gt 0 ]
}

direct_batch () {
  crash_image "$WORK/bad.raw"; cp --sparse=always "$WORK/bad.raw" "$WORK/bad.orig"
  a=$(img_copy win-dyn.vhd); b=$(img_copy win.qcow2)
  run 1 env LD_PRELOAD="$SHIM" "$N" --direct -j 2 -r 4M -s 2M "$a" "$WORK/bad.raw" "$b"
  err_has "netvsc-patch: $WORK/bad.raw: its NTFS volume or SYSTEM hive $CRASHED"
  err_has "); the image was left as it was"
  err_lines 1
  [ "$(grep -c ': patched, 1 adapter matched' "$WORK/out")" -eq 2 ]
  same_bytes "$WORK/bad.raw" "$WORK/bad.orig"
  for i in "$a" "$b"; do
    extract "$i" "$WORK/SYSTEM"
    [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 4096 ]
    [ "$(hget "$WORK/SYSTEM" "$KEY1" SendBufferSize)" = 2048 ]
  done
  tmp_empty
  # one worker, the crashing image first: the others still go through;
  # --json: one object per image
  a=$(img_copy win-dyn.vhd); b=$(img_copy win.vhdx)
  run 1 env LD_PRELOAD="$SHIM" "$N" --direct -j 1 --json -r 4M "$WORK/bad.raw" "$a" "$b"
  python3 - "$WORK/out" <<'PY'
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1])]
assert len(objs) == 3, objs
by = {o["target"].rsplit("/", 1)[1]: o for o in objs}
assert by["bad.raw"]["status"] == "error" and by["bad.raw"]["exit_code"] == 1, by
assert "crashed the parser (SIGABRT" in by["bad.raw"]["error"]
assert by["win-dyn.vhd"]["status"] == "patched" and by["win.vhdx"]["status"] == "patched", by
PY
  err_lines 1
  same_bytes "$WORK/bad.raw" "$WORK/bad.orig"
  tmp_empty
}

# The appliance backend (one launch): the downloaded hive is rehearsed
# in a child, which dies; the other image of the batch is patched.
appliance_batch () {
  crash_image "$WORK/bad.raw"; cp --sparse=always "$WORK/bad.raw" "$WORK/bad.orig"
  a=$(img_copy win-dyn.vhd)
  run 1 env LD_PRELOAD="$SHIM" "$N" -j 1 -r 4M -s 2M "$WORK/bad.raw" "$a"
  err_has "netvsc-patch: $WORK/bad.raw: the SYSTEM hive $CRASHED"
  err_has "the image was left as it was"
  err_lines 1
  out_has "win-dyn.vhd (vpc, /dev/sda1 /Windows/System32/config/SYSTEM): patched, 1 adapter matched"
  same_bytes "$WORK/bad.raw" "$WORK/bad.orig"
  extract "$a" "$WORK/SYSTEM"
  [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 4096 ]
  [ "$(regf_value "$WORK/SYSTEM" "$KEY1" SendBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 2048" ]
  tmp_empty
}

check "a value listed twice: aborts libhivex (hivexregedit); refused before hivex writes, reads fine" values_listed_twice
check "hive mode: exit 1, one line, unchanged, no temp files; next run patches" hive_mode
check "hive mode: SIGTERM to the parent only is forwarded" hive_mode_sigterm
check "--direct batch: the crashing image fails alone, the others patched" direct_batch
check "appliance batch (one launch): crashing hive fails alone, other patched" appliance_batch
finish
