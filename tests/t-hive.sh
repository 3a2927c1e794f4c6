#!/bin/bash
# Hive mode (--hive FILE): no image, no appliance.  Every result is read
# back with hivex tools and libregf's regfexport.
. "$(dirname "$0")/lib.sh"

KEY1="$CLASS\\0001"

patch_ws2019 () {
  h=$(hive_copy ws2019); cp "$h" "$WORK/orig"
  run 0 "$N" --hive "$h" -r 2M -s 0x800
  out_has "patched, 1 adapter matched"
  out_has "Microsoft Hyper-V Network Adapter"
  [ "$(hget "$h" "$KEY1" ReceiveBufferSize)" = 2048 ]
  [ "$(hget "$h" "$KEY1" SendBufferSize)" = 2048 ]
  [ "$(regf_value "$h" "$KEY1" ReceiveBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 2048" ]
  [ "$(regf_value "$h" "$KEY1" SendBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 2048" ]
  # everything else in the hive is as it was
  export_diff "$WORK/orig" "$h" >"$WORK/diff"
  cat >"$WORK/want" <<'W'
> "ReceiveBufferSize"=dword:00000800
> "SendBufferSize"=dword:00000800
W
  diff "$WORK/want" "$WORK/diff"
  # and the file is a clean hive: equal sequence numbers
  [ "$(od -An -tu4 -j4 -N4 "$h")" = "$(od -An -tu4 -j8 -N4 "$h")" ]
}

unchanged_writes_nothing () {
  h=$(hive_copy ws2019)
  run 0 "$N" --hive "$h" -r 2048 -s 2048
  cp "$h" "$WORK/once"
  touch -d '2001-01-01' "$h"
  run 0 "$N" --hive "$h" -r 2M -s 2M
  out_has "unchanged"
  same_bytes "$h" "$WORK/once"
  [ "$(stat -c %Y "$h")" = "$(date -d 2001-01-01 +%s)" ]
}

dry_run () {
  h=$(hive_copy ws2019); cp "$h" "$WORK/orig"
  run 0 "$N" --hive "$h" -r 4M --dry-run
  out_has "would patch"
  out_has "ReceiveBufferSize  (not set) -> 0x1000 (4096 KB)"
  same_bytes "$h" "$WORK/orig"
  [ -z "$(ls -A "$WORK" | grep netvsc-patch || true)" ]
}

check_mode () {
  h=$(hive_copy ws2019); cp "$h" "$WORK/orig"
  run 5 "$N" --hive "$h" -r 2M -s 2M --check
  same_bytes "$h" "$WORK/orig"
  run 0 "$N" --hive "$h" -r 2M -s 2M
  run 0 "$N" --hive "$h" -r 2M -s 2M --check
  run 5 "$N" --hive "$h" -r 4M --check
}

only_receive () {
  h=$(hive_copy ws2019)
  run 0 "$N" --hive "$h" -r 1M
  [ "$(hget "$h" "$KEY1" ReceiveBufferSize)" = 1024 ]
  hget_absent "$h" "$KEY1" SendBufferSize
}

no_adapter () {
  h=$(hive_copy no-netvsc); cp "$h" "$WORK/orig"
  run 3 "$N" --hive "$h" -r 2M -s 2M
  err_has "no network adapter matches 'netvsc'"
  err_has "$h"
  err_lines 1
  out_has "Intel(R) PRO/1000 MT Network Connection"
  same_bytes "$h" "$WORK/orig"
}

retype_reg_sz () {
  h=$(hive_copy regsz)
  run 0 "$N" --hive "$h" -r 2M -s 1M
  out_has 'REG_SZ "1024" -> 0x800 (2048 KB)  [type replaced by REG_DWORD]'
  out_has "SendBufferSize     0x400 (1024 KB)  unchanged"
  [ "$(regf_value "$h" "$KEY1" ReceiveBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 2048" ]
}

odd_types () {
  h=$(hive_copy oddtypes); cp "$h" "$WORK/orig"
  run 0 "$N" --hive "$h" --list
  out_has "ControlSet001  0000   yes    (4 bytes)     (2 bytes)"
  out_has "ControlSet001  0002   no"
  run 0 "$N" --hive "$h" -r 2M -s 2M
  out_has "2 adapters matched"
  out_has "ReceiveBufferSize  REG_BINARY (4 bytes) -> 0x800 (2048 KB)  [type replaced by REG_DWORD]"
  out_has "SendBufferSize     REG_DWORD (2 bytes) -> 0x800 (2048 KB)  [type replaced by REG_DWORD]"
  out_has "ReceiveBufferSize  REG_QWORD (8 bytes) -> 0x800"
  for k in 0000 0001; do
    [ "$(regf_value "$h" "$CLASS\\$k" ReceiveBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 2048" ]
    [ "$(regf_value "$h" "$CLASS\\$k" SendBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 2048" ]
  done
  hget_absent "$h" "$CLASS\\0002" ReceiveBufferSize
  # replaced values change in place; 0001 gains SendBufferSize
  export_diff "$WORK/orig" "$h" >"$WORK/diff"
  [ "$(grep -c '^<' "$WORK/diff")" -eq 3 ] && [ "$(grep -c '^>' "$WORK/diff")" -eq 4 ]
}

w2008r2 () {
  h=$(hive_copy w2008r2)
  run 0 "$N" --hive "$h" -r 2M -s 2M
  out_has "Microsoft Virtual Machine Bus Network Adapter"
  [ "$(hget "$h" "$CLASS\\0007" ReceiveBufferSize)" = 2048 ]
}

two_adapters () {
  h=$(hive_copy multi); cp "$h" "$WORK/orig"
  run 0 "$N" --hive "$h" -r 2M -s 2M
  out_has "2 adapters matched"
  [ "$(hget "$h" "$CLASS\\0001" ReceiveBufferSize)" = 2048 ]
  [ "$(hget "$h" "$CLASS\\0011" SendBufferSize)" = 2048 ]
  hget_absent "$h" "$CLASS\\0003" ReceiveBufferSize
  # 0011 already had ReceiveBufferSize=0x800: three values added in all
  [ "$(export_diff "$WORK/orig" "$h" | wc -l)" -eq 3 ]
}

control_sets () {
  h=$(hive_copy split-cs)
  run 0 "$N" --hive "$h" -r 2M
  [ "$(hget "$h" 'ControlSet001\Control\Class\{4d36e972-e325-11ce-bfc1-08002be10318}\0001' ReceiveBufferSize)" = 2048 ]
  [ "$(hget "$h" 'ControlSet002\Control\Class\{4d36e972-e325-11ce-bfc1-08002be10318}\0002' ReceiveBufferSize)" = 2048 ]
  hget_absent "$h" 'ControlSet003\Control\Class\{4d36e972-e325-11ce-bfc1-08002be10318}\0001' ReceiveBufferSize
  run 0 "$N" --hive "$h" -r 2M --control-set all
  [ "$(hget "$h" 'ControlSet003\Control\Class\{4d36e972-e325-11ce-bfc1-08002be10318}\0001' ReceiveBufferSize)" = 2048 ]
  h2=$(hive_copy split-cs)
  run 0 "$N" --hive "$h2" -r 2M --control-set current
  hget_absent "$h2" 'ControlSet001\Control\Class\{4d36e972-e325-11ce-bfc1-08002be10318}\0001' ReceiveBufferSize
  [ "$(hget "$h2" 'ControlSet002\Control\Class\{4d36e972-e325-11ce-bfc1-08002be10318}\0002' ReceiveBufferSize)" = 2048 ]
}

output_elsewhere () {
  h=$(hive_copy ws2019); cp "$h" "$WORK/orig"
  run 0 "$N" --hive "$h" -r 2M -o "$WORK/new.hive"
  same_bytes "$h" "$WORK/orig"
  [ "$(hget "$WORK/new.hive" "$KEY1" ReceiveBufferSize)" = 2048 ]
}

list_mode () {
  h=$(hive_copy multi); cp "$h" "$WORK/orig"
  run 0 "$N" --hive "$h" --list
  out_has "ControlSet001  0001   yes"
  out_has "ControlSet001  0003   no"
  out_has "ControlSet001  0011   yes    0x800"
  same_bytes "$h" "$WORK/orig"
}

json_report () {
  h=$(hive_copy multi)
  run 0 "$N" --hive "$h" -r 2M -s 2M --json
  python3 - "$WORK/out" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
o = json.loads(lines[0])
assert o["mode"] == "hive" and o["status"] == "patched" and o["exit_code"] == 0, o
assert o["matched"] == 2 and o["writes"] == 3 and o["written"] is True, o
m = [a for a in o["adapters"] if a["matched"]]
assert [a["index"] for a in m] == ["0001", "0011"], m
acts = {(a["index"], c["name"]): c["action"] for a in m for c in a["changes"]}
assert acts[("0011", "ReceiveBufferSize")] == "unchanged", acts
assert acts[("0001", "SendBufferSize")] == "add", acts
assert m[1]["changes"][0]["old"] == {"type": "REG_DWORD", "kb": 2048, "dword": None, "text": None}, m[1]
assert o["control_sets"] == [{"name": "ControlSet001", "selected_as": "current, default"}]
PY
  h=$(hive_copy no-netvsc)
  run 3 "$N" --hive "$h" -r 2M --json
  python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["status"]=="no-adapter" and o["exit_code"]==3 and o["error"], o' "$WORK/out"
}

match_other_drivers () {
  h=$(hive_copy multi)
  run 0 "$N" --hive "$h" --match 'pci\ven_8086&dev_100f' -r 512
  [ "$(hget "$h" "$CLASS\\0003" ReceiveBufferSize)" = 512 ]
  hget_absent "$h" "$CLASS\\0001" ReceiveBufferSize
  run 0 "$N" --hive "$h" --match service:e1000 -s 512
  [ "$(hget "$h" "$CLASS\\0003" SendBufferSize)" = 512 ]
  run 3 "$N" --hive "$h" --match desc:Realtek -s 512
}

remove_values () {
  h=$(hive_copy regsz); cp "$h" "$WORK/orig"
  run 0 "$N" --hive "$h" --remove
  hget_absent "$h" "$KEY1" ReceiveBufferSize
  hget_absent "$h" "$KEY1" SendBufferSize
  [ "$(export_diff "$WORK/orig" "$h" | wc -l)" -eq 2 ]
  cp "$h" "$WORK/removed"
  run 0 "$N" --hive "$h" --remove
  out_has unchanged
  same_bytes "$h" "$WORK/removed"
}

backup () {
  h=$(hive_copy ws2019); cp "$h" "$WORK/orig"; mkdir "$WORK/bk"
  run 0 "$N" --hive "$h" -r 2M --backup "$WORK/bk"
  b=$(ls "$WORK/bk")
  [ "$(echo "$b" | wc -l)" -eq 1 ]
  same_bytes "$WORK/bk/$b" "$WORK/orig"
  out_has "original saved as"
  run 0 "$N" --hive "$h" -r 4M --backup "$WORK/bk"
  [ "$(ls "$WORK/bk" | wc -l)" -eq 2 ]
}

keeps_permissions () {
  h=$(hive_copy ws2019); chmod 640 "$h"
  run 0 "$N" --hive "$h" -r 2M
  [ "$(stat -c %a "$h")" = 640 ]
  [ -z "$(ls -A "$WORK" | grep '\.netvsc-patch\.' || true)" ]
}

# --- refusals and bad input: message, exit code, bytes unchanged -----------

dirty_hive () {
  h=$(hive_copy ws2019)
  printf '\x57\x06\x00\x00\x56\x06\x00\x00' | dd of="$h" bs=1 seek=4 conv=notrunc 2>/dev/null
  cp "$h" "$WORK/orig"
  run 4 "$N" --hive "$h" -r 2M
  err_has "$h: refused: the hive is dirty (sequence numbers differ (0x657 / 0x656)) and cannot be recovered from its transaction logs"
  err_lines 1
  run 4 "$N" --hive "$h" -r 2M --no-replay
  err_has "no .LOG1, .LOG2 or .LOG file beside it"
  : >"$h.LOG1"; : >"$h.LOG2"
  run 4 "$N" --hive "$h" -r 2M
  err_has "cannot be recovered from its transaction logs"
  err_has "no usable transaction log: ws2019.hive.LOG1: empty; ws2019.hive.LOG2: empty; ws2019.hive.LOG: missing"
  run 4 "$N" --hive "$h" -r 2M --dry-run --no-replay
  err_has "ws2019.hive.LOG1 and ws2019.hive.LOG2 exist beside it"
  same_bytes "$h" "$WORK/orig"
  [ ! -s "$h.LOG1" ] && [ ! -s "$h.LOG2" ]
}

bad_checksum () {
  h=$(hive_copy ws2019)
  printf '\x01\x02\x03\x04' | dd of="$h" bs=1 seek=508 conv=notrunc 2>/dev/null
  cp "$h" "$WORK/orig"
  run 4 "$N" --hive "$h" -r 2M
  err_has "base block checksum is wrong"
  same_bytes "$h" "$WORK/orig"
}

bad_inputs () {
  : >"$WORK/empty"
  head -c 65536 /dev/urandom >"$WORK/random"
  printf 'regf' >"$WORK/short"
  head -c 20000 "$FIXTURES/hives/ws2019.hive" >"$WORK/truncated"
  mkdir "$WORK/dir"
  for f in "$WORK/missing" "$WORK/dir" "$WORK/empty" "$WORK/random" "$WORK/short" \
           "$WORK/truncated" /etc/passwd; do
    [ -e "$f" ] && [ -f "$f" ] && cp "$f" "$WORK/before"
    run 1 "$N" --hive "$f" -r 2M
    err_has "netvsc-patch: $f: "
    err_lines 1
    if [ -f "$f" ]; then same_bytes "$f" "$WORK/before"; fi
  done
  run 1 "$N" --hive "$WORK/missing" -r 2M; err_has "No such file"
  run 1 "$N" --hive "$WORK/dir" -r 2M; err_has "not a regular file"
  run 1 "$N" --hive "$WORK/random" -r 2M; err_has "not a registry hive"
  [ -z "$(ls -A "$WORK" | grep '\.netvsc-patch\.' || true)" ]
  # larger than a hive can be (2 GB of cells), or saying so: refused
  # from the base block, before hivex copies the file into memory (GNU
  # time's peak memory: a few MB, not the file's size)
  cp "$FIXTURES/hives/ws2019.hive" "$WORK/huge"
  truncate -s $((4096 + 2147483648 + 4096)) "$WORK/huge"
  run 1 /usr/bin/time -f '%M' -o "$WORK/huge.kb" "$N" --hive "$WORK/huge" -r 2M
  err_has "$WORK/huge: not a registry hive: larger than the 2 GB a hive's cells can address (2147491840 bytes"
  kb=$(tail -1 "$WORK/huge.kb")
  [ "$kb" -lt 65536 ] || { echo "peak memory $kb KB"; return 1; }
  [ "$(stat -c %s "$WORK/huge")" = 2147491840 ]
  cmp -n "$(stat -c %s "$FIXTURES/hives/ws2019.hive")" "$WORK/huge" "$FIXTURES/hives/ws2019.hive"
  rm -f "$WORK/huge"
  cp "$FIXTURES/hives/ws2019.hive" "$WORK/declared"
  printf '\x00\x00\x00\x90' | dd of="$WORK/declared" bs=1 seek=40 conv=notrunc 2>/dev/null
  cp "$WORK/declared" "$WORK/before"
  run 1 "$N" --hive "$WORK/declared" -r 2M
  err_has "$WORK/declared: not a registry hive: larger than the 2 GB a hive's cells can address"
  err_has "2415919104 declared"
  same_bytes "$WORK/declared" "$WORK/before"
}

# A dirty hive whose logs hold a change not yet in the primary (made by
# the suite's own log writer, tests/mklog.c): the change is recovered,
# then patched, and the logs are emptied.
replay_logs () {
  cp "$FIXTURES/hives/ws2019.hive" "$WORK/clean"
  printf 'Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\LoggedOnly]\n"Start"=dword:00000003\n' >"$WORK/step.reg"
  cp "$WORK/clean" "$WORK/step"
  hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' "$WORK/step" "$WORK/step.reg"
  "$MKLOG" -o "$WORK/SYSTEM" -1 "$WORK/SYSTEM.LOG1" -2 "$WORK/SYSTEM.LOG2" --entries 2 --split 1 \
    "$WORK/clean" "$WORK/step"
  cp "$WORK/SYSTEM" "$WORK/dirty"; cp "$WORK/SYSTEM.LOG1" "$WORK/log1"
  hget_absent "$WORK/dirty" 'ControlSet001\Services\LoggedOnly' Start
  # dry run and --no-replay write nothing
  run 0 "$N" --hive "$WORK/SYSTEM" -r 2M --dry-run
  out_has "the hive was dirty: replayed 2 log entries"
  out_has "from SYSTEM.LOG1 then SYSTEM.LOG2"
  run 4 "$N" --hive "$WORK/SYSTEM" -r 2M --no-replay
  same_bytes "$WORK/SYSTEM" "$WORK/dirty"; same_bytes "$WORK/SYSTEM.LOG1" "$WORK/log1"
  # --replay-only writes the recovered hive elsewhere
  run 0 "$N" --hive "$WORK/SYSTEM" --replay-only -o "$WORK/rec"
  [ "$(hget "$WORK/rec" 'ControlSet001\Services\LoggedOnly' Start)" = 3 ]
  export_diff "$WORK/step" "$WORK/rec" | { ! grep -q .; }
  same_bytes "$WORK/SYSTEM" "$WORK/dirty"
  # the real run: recovered, patched, logs emptied
  mkdir "$WORK/bk-replay"
  run 0 "$N" --hive "$WORK/SYSTEM" -r 2M -s 2M --json --backup "$WORK/bk-replay"
  python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); r=o["replay"]; assert o["status"]=="patched" and r["entries"]==2 and r["logs_emptied"]==2, o' "$WORK/out"
  [ "$(hget "$WORK/SYSTEM" 'ControlSet001\Services\LoggedOnly' Start)" = 3 ]
  [ "$(regf_value "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 2048" ]
  [ "$(od -An -tu4 -j4 -N4 "$WORK/SYSTEM")" = "$(od -An -tu4 -j8 -N4 "$WORK/SYSTEM")" ]
  [ ! -s "$WORK/SYSTEM.LOG1" ] && [ ! -s "$WORK/SYSTEM.LOG2" ]
  # the backup holds the dirty primary and both logs as they were
  same_bytes "$WORK/bk-replay/$(ls "$WORK/bk-replay" | grep 'SYSTEM$')" "$WORK/dirty"
  same_bytes "$WORK/bk-replay/$(ls "$WORK/bk-replay" | grep 'LOG1$')" "$WORK/log1"
  # a broken entry: replay stops before it, and what came before is kept
  "$MKLOG" -o "$WORK/S2" -1 "$WORK/S2.LOG1" --entries 2 --bad-hash1 2 "$WORK/clean" "$WORK/step"
  run 0 "$N" --hive "$WORK/S2" --replay-only -o "$WORK/rec2"
  out_has "replayed 1 log entry"
}

# --- old-format (Windows XP to 7) logs: one transaction, all or nothing ----

# A dirty SYSTEM whose old-format LOG1 holds 57 new DWORDs spread over
# the hive (tests/mklog.c --old), in $WORK/old: SYSTEM, SYSTEM.LOG1, and
# clean/step (the hive before and after).
make_old_dirty () {
  mkdir -p "$WORK/old"; cp "$FIXTURES/hives/ws2019.hive" "$WORK/old/clean"
  {
    printf 'Windows Registry Editor Version 5.00\n'
    i=0
    for k in Services\\kdnic Services\\NdisWan Services\\netvsc Services\\PptpMiniport \
             Services\\RasAgileVpn Services\\Rasl2tp Services\\RasPppoe Services\\RasSstp \
             Services\\Tcpip Control; do
      printf '\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\%s]\n' "$k"
      for j in 1 2 3 4 5 6; do
        i=$((i + 1)); [ $i -le 57 ] || break
        printf '"Logged%02d"=dword:%08x\n' $i $((0x1000 + i))
      done
    done
  } >"$WORK/old/step.reg"
  cp "$WORK/old/clean" "$WORK/old/step"
  hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' "$WORK/old/step" "$WORK/old/step.reg"
  "$MKLOG" --old "$@" -o "$WORK/old/SYSTEM" -1 "$WORK/old/SYSTEM.LOG1" "$WORK/old/clean" "$WORK/old/step"
}

# How many of the 57 logged DWORDs hive FILE holds.
logged_dwords () {
  hivexregedit --export "$1" '\ControlSet001' | grep -c '^"Logged[0-9][0-9]"=dword:000010'
}

# refused_unchanged WANT ARGS...: exit 4 with WANT in the message, the
# hive and every log byte-identical, no output, no temporary file left.
refused_unchanged () {
  expect=$1; shift
  ( cd "$WORK/old" && sha256sum SYSTEM* ) >"$WORK/sums"
  run 4 "$N" --hive "$WORK/old/SYSTEM" "$@"
  err_has "$WORK/old/SYSTEM: refused: the hive is dirty (sequence numbers differ"
  err_has "$expect"
  err_lines 1
  ( cd "$WORK/old" && sha256sum -c --quiet "$WORK/sums" )
  [ ! -e "$WORK/old/rec" ]
  [ -z "$(ls -A "$WORK/old" | grep 'netvsc-patch' || true)" ]
  if grep -q 'netvsc-patch-recovered' "$WORK/err"; then echo "names a temp file"; return 1; fi
}

old_log_cut () {
  make_old_dirty
  log=$WORK/old/SYSTEM.LOG1; cp "$log" "$WORK/old/full.LOG1"
  size=$(stat -c %s "$log")
  hbins=$(od -An -tu4 -j40 -N4 "$log" | tr -d ' ')
  start=$(( (512 + 4 + hbins / 4096 + 511) / 512 * 512 ))
  pages=$(( (size - start) / 512 ))
  [ "$(logged_dwords "$WORK/old/step")" -eq 57 ]
  [ "$(logged_dwords "$WORK/old/SYSTEM")" -eq 0 ]
  # cut at 0, in the base block, in the bitmap, after it, in page k, one
  # byte short: each refused, naming LOG1 and the rule, nothing changed
  half=$(( start + pages / 2 * 512 + 100 ))
  for cut in "0 SYSTEM.LOG1: empty" \
             "300 SYSTEM.LOG1: too short for a log (300 bytes)" \
             "520 SYSTEM.LOG1 is cut short inside its dirty vector" \
             "$start SYSTEM.LOG1 holds 0 of $pages dirty pages: cut short" \
             "$half SYSTEM.LOG1 holds $((pages / 2)) of $pages dirty pages: cut short ($half bytes, $size needed)" \
             "$((size - 1)) SYSTEM.LOG1 holds $((pages - 1)) of $pages dirty pages: cut short"; do
    head -c "${cut%% *}" "$WORK/old/full.LOG1" >"$log"
    refused_unchanged "${cut#* }" -r 2M
    refused_unchanged "${cut#* }" --replay-only -o "$WORK/old/rec"
    refused_unchanged "${cut#* }" -r 2M --dry-run
  done
  # bitmaps that do not match the pages: a bit more, a bit fewer, a
  # block more (eight pages the file lacks)
  first_clean=$(od -An -tu1 -v -j516 -N$((hbins / 4096)) "$WORK/old/full.LOG1" | tr -s ' ' '\n' |
                grep -v '^$' | grep -n '^0$' | head -1 | cut -d: -f1)
  first_dirty=$(od -An -tu1 -v -j516 -N$((hbins / 4096)) "$WORK/old/full.LOG1" | tr -s ' ' '\n' |
                grep -v '^$' | grep -n '^255$' | head -1 | cut -d: -f1)
  for m in "$first_clean \\001 is 0x01 where Windows writes 0x00 or 0xff" \
           "$first_dirty \\177 is 0x7f where Windows writes 0x00 or 0xff" \
           "$first_clean \\377 SYSTEM.LOG1 holds $pages of $((pages + 8)) dirty pages: cut short"; do
    set -- $m
    cp "$WORK/old/full.LOG1" "$log"
    printf "$2" | dd of="$log" bs=1 seek=$((516 + $1 - 1)) conv=notrunc status=none
    refused_unchanged "${m#* * }" -r 2M
  done
  # the whole log: all 57 values recovered, then patched, log emptied
  cp "$WORK/old/full.LOG1" "$log"
  run 0 "$N" --hive "$WORK/old/SYSTEM" -r 2M
  out_has "the hive was dirty: replayed the old-format log SYSTEM.LOG1 whole (sequence"
  out_has "$pages dirty pages of 512 bytes"
  [ "$(logged_dwords "$WORK/old/SYSTEM")" -eq 57 ]
  [ "$(hget "$WORK/old/SYSTEM" "$KEY1" ReceiveBufferSize)" = 2048 ]
  [ "$(regfexport "$WORK/old/SYSTEM" 2>/dev/null | grep -c '^Value: [0-9]* Logged[0-9][0-9]$')" -eq 57 ]
  [ ! -s "$log" ]
  echo "# old-format log: $pages pages, refused at 6 cut points and 3 bitmap mutations"
}

# With an invalid base block, the first hive bin's timestamp stands for
# the hive's: the report and the refusal say so.
old_log_first_bin () {
  make_old_dirty --bad-checksum
  run 0 "$N" --hive "$WORK/old/SYSTEM" --replay-only -o "$WORK/old/rec"
  out_has "its base block was invalid (wrong checksum) and was rebuilt from SYSTEM.LOG1's copy, the log matched by the first hive bin's timestamp"
  [ "$(logged_dwords "$WORK/old/rec")" -eq 57 ]
  rm -rf "$WORK/old"
  make_old_dirty --bad-checksum --ts-mismatch
  ( cd "$WORK/old" && sha256sum SYSTEM* ) >"$WORK/sums"
  run 4 "$N" --hive "$WORK/old/SYSTEM" -r 2M
  err_has "refused: the hive is dirty (base block checksum is wrong"
  err_has "its base block is invalid (wrong checksum), so the logs were matched against its first hive bin's timestamp ("
  err_has "SYSTEM.LOG1: written at another time ("
  err_has ") than the hive's first hive bin ("
  ( cd "$WORK/old" && sha256sum -c --quiet "$WORK/sums" )
}

# Windows XP / 2003: the single system.LOG, old format, found in any
# case; replayed, backed up, emptied.  An empty .LOG beside new-format
# LOG1/LOG2 (Vista and later) is left alone.
xp_single_log () {
  make_old_dirty
  mv "$WORK/old/SYSTEM" "$WORK/old/system"; mv "$WORK/old/SYSTEM.LOG1" "$WORK/old/system.LOG"
  cp "$WORK/old/system" "$WORK/old/dirty"; cp "$WORK/old/system.LOG" "$WORK/old/log"
  run 4 "$N" --hive "$WORK/old/system" -r 2M --no-replay
  err_has "system.LOG exists beside it"
  mkdir "$WORK/bk-xp"
  run 0 "$N" --hive "$WORK/old/system" -r 2M --backup "$WORK/bk-xp"
  out_has "replayed the old-format log system.LOG whole"
  out_has "emptied 1 transaction log"
  [ "$(logged_dwords "$WORK/old/system")" -eq 57 ]
  [ ! -s "$WORK/old/system.LOG" ]
  [ ! -e "$WORK/old/system.LOG1" ] && [ ! -e "$WORK/old/SYSTEM.LOG" ]
  same_bytes "$WORK/bk-xp/$(ls "$WORK/bk-xp" | grep 'SYSTEM$')" "$WORK/old/dirty"
  same_bytes "$WORK/bk-xp/$(ls "$WORK/bk-xp" | grep 'SYSTEM.LOG$')" "$WORK/old/log"
  # Vista and later: new-format logs, an empty .LOG kept as it is
  make_new_dirty "$WORK/new" SYSTEM.LOG1 SYSTEM.LOG2
  : >"$WORK/new/SYSTEM.LOG"; touch -d 2001-01-01 "$WORK/new/SYSTEM.LOG"
  run 0 "$N" --hive "$WORK/new/SYSTEM" -r 2M
  out_has "from SYSTEM.LOG1 then SYSTEM.LOG2"
  out_has "emptied 2 transaction logs"
  [ "$(stat -c %Y "$WORK/new/SYSTEM.LOG")" = "$(date -d 2001-01-01 +%s)" ]
}

# make_new_dirty DIR NAME1 NAME2: a dirty SYSTEM in DIR whose new-format
# entries are split over two logs named NAME1 and NAME2.
make_new_dirty () {
  mkdir -p "$1"; cp "$FIXTURES/hives/ws2019.hive" "$1/clean"
  printf 'Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\LoggedOnly]\n"Start"=dword:00000003\n' >"$1/step.reg"
  cp "$1/clean" "$1/step"
  hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' "$1/step" "$1/step.reg"
  "$MKLOG" -o "$1/SYSTEM" -1 "$1/$2" -2 "$1/$3" --entries 2 --split 1 "$1/clean" "$1/step"
}

# Logs spelt in another case (copies from Windows disks keep any case)
# are found; two spellings of one log are refused as ambiguous.
log_names_any_case () {
  make_new_dirty "$WORK/c" system.log1 System.Log2
  cp "$WORK/c/SYSTEM" "$WORK/c/dirty"
  run 0 "$N" --hive "$WORK/c/SYSTEM" -r 2M --dry-run
  out_has "replayed 2 log entries"
  out_has "from system.log1 then System.Log2"
  cp "$WORK/c/system.log1" "$WORK/c/SYSTEM.LOG1"
  ( cd "$WORK/c" && sha256sum SYSTEM* system* ) >"$WORK/sums"
  run 4 "$N" --hive "$WORK/c/SYSTEM" -r 2M
  err_has "and its transaction logs are ambiguous: "
  # (in directory order)
  grep -qE 'ambiguous: (SYSTEM.LOG1 and system.log1|system.log1 and SYSTEM.LOG1) both exist beside it' "$WORK/err"
  ( cd "$WORK/c" && sha256sum -c --quiet "$WORK/sums" )
  rm "$WORK/c/SYSTEM.LOG1"
  run 0 "$N" --hive "$WORK/c/SYSTEM" -r 2M
  out_has "emptied 2 transaction logs"
  [ "$(hget "$WORK/c/SYSTEM" 'ControlSet001\Services\LoggedOnly' Start)" = 3 ]
  [ ! -s "$WORK/c/system.log1" ] && [ ! -s "$WORK/c/System.Log2" ]
  [ ! -e "$WORK/c/SYSTEM.LOG1" ] && [ ! -e "$WORK/c/SYSTEM.LOG2" ]
}

# --replay-only on hives that are not SYSTEM (no Select, no adapters):
# NTUSER.DAT with old-format logs, SOFTWARE with new-format ones.
replay_only_any_hive () {
  mkdir "$WORK/u"; cp "$FIXTURES/hives/software.hive" "$WORK/u/clean"
  printf 'Windows Registry Editor Version 5.00\n\n[HKEY_CURRENT_USER\\LoggedOnly]\n"Theme"=dword:00000002\n' >"$WORK/u/step.reg"
  cp "$WORK/u/clean" "$WORK/u/step"
  hivexregedit --merge --prefix 'HKEY_CURRENT_USER' "$WORK/u/step" "$WORK/u/step.reg"
  "$MKLOG" --old -o "$WORK/u/NTUSER.DAT" -1 "$WORK/u/ntuser.dat.LOG1" "$WORK/u/clean" "$WORK/u/step"
  "$MKLOG" -o "$WORK/u/SOFTWARE" -1 "$WORK/u/SOFTWARE.LOG1" "$WORK/u/clean" "$WORK/u/step"
  ( cd "$WORK/u" && sha256sum NTUSER.DAT ntuser.dat.LOG1 SOFTWARE SOFTWARE.LOG1 ) >"$WORK/sums"
  for h in NTUSER.DAT SOFTWARE; do
    run 0 "$N" --hive "$WORK/u/$h" --replay-only -o "$WORK/u/$h.rec"
    out_has "$WORK/u/$h: recovered from the transaction logs"
    out_has "written to $WORK/u/$h.rec"
    [ "$(hget "$WORK/u/$h.rec" 'LoggedOnly' Theme)" = 2 ]
    export_diff "$WORK/u/step" "$WORK/u/$h.rec" | { ! grep -q .; }
  done
  ( cd "$WORK/u" && sha256sum -c --quiet "$WORK/sums" )
  # refused: the message names the user's files
  truncate -s 3000 "$WORK/u/ntuser.dat.LOG1"
  run 4 "$N" --hive "$WORK/u/NTUSER.DAT" --replay-only -o "$WORK/u/x"
  err_has "$WORK/u/NTUSER.DAT: refused: the hive is dirty"
  err_has "ntuser.dat.LOG1 holds 3 of 24 dirty pages: cut short"
  if grep -q 'netvsc-patch-recovered' "$WORK/err"; then echo "names a temp file"; return 1; fi
  [ ! -e "$WORK/u/x" ]
  # a recovered SYSTEM without Select: the error names the user's hive
  mkdir "$WORK/ns"; cp "$FIXTURES/hives/no-select.hive" "$WORK/ns/clean"
  cp "$WORK/ns/clean" "$WORK/ns/step"
  printf 'Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\LoggedOnly]\n"Start"=dword:00000003\n' >"$WORK/ns/step.reg"
  hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' "$WORK/ns/step" "$WORK/ns/step.reg"
  "$MKLOG" -o "$WORK/ns/SYSTEM" -1 "$WORK/ns/SYSTEM.LOG1" "$WORK/ns/clean" "$WORK/ns/step"
  ( cd "$WORK/ns" && sha256sum SYSTEM SYSTEM.LOG1 ) >"$WORK/sums"
  run 1 "$N" --hive "$WORK/ns/SYSTEM" -r 2M
  err_has "$WORK/ns/SYSTEM (as recovered from its transaction logs): no Select key"
  if grep -q 'netvsc-patch-recovered' "$WORK/err"; then echo "names a temp file"; return 1; fi
  ( cd "$WORK/ns" && sha256sum -c --quiet "$WORK/sums" )
  # ... and --replay-only recovers it all the same
  run 0 "$N" --hive "$WORK/ns/SYSTEM" --replay-only -o "$WORK/ns/rec"
  [ "$(hget "$WORK/ns/rec" 'LoggedOnly' Start)" = 3 ]
}

read_only () {
  # as an unprivileged user, since root may write anything
  ro=$(mktemp -d /tmp/netvsc-ro.XXXXXX); chmod 755 "$ro"
  mkdir "$ro/mine"; cp "$FIXTURES/hives/ws2019.hive" "$ro/mine/SYSTEM"
  chown -R 65534:65534 "$ro/mine"; chmod 444 "$ro/mine/SYSTEM"
  cp "$ro/mine/SYSTEM" "$WORK/orig"
  as_nobody () { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
  run 1 as_nobody "$N" --hive "$ro/mine/SYSTEM" -r 2M
  err_has "$ro/mine/SYSTEM: the hive is read-only (Permission denied)"
  same_bytes "$ro/mine/SYSTEM" "$WORK/orig"
  # a writable file in a directory we may not write: no temp file possible
  mkdir "$ro/theirs"; cp "$WORK/orig" "$ro/theirs/SYSTEM"
  chown 65534:65534 "$ro/theirs/SYSTEM"; chmod 644 "$ro/theirs/SYSTEM"
  run 1 as_nobody "$N" --hive "$ro/theirs/SYSTEM" -r 2M
  err_has "cannot create a temporary file in $ro/theirs: Permission denied"
  same_bytes "$ro/theirs/SYSTEM" "$WORK/orig"
  rm -rf "$ro"
}

no_select () {
  h=$(hive_copy no-select); cp "$h" "$WORK/orig"
  run 1 "$N" --hive "$h" -r 2M
  err_has "no Select key"
  same_bytes "$h" "$WORK/orig"
  run 0 "$N" --hive "$h" -r 2M --control-set 1
  h=$(hive_copy bad-select); cp "$h" "$WORK/orig"
  run 1 "$N" --hive "$h" -r 2M
  err_has "Select\\Current points at ControlSet005, which does not exist"
  same_bytes "$h" "$WORK/orig"
}

usage_errors () {
  h=$(hive_copy ws2019); cp "$h" "$WORK/orig"
  for args in "" "-r" "-r 0" "-r -1" "-r 1.5M" "-r 5G" "-r 4294967296" "-r abc" \
              "-r 2M --format iso" "-r 2M --match e1000" "-r 2M --control-set x" \
              "-r 2M --dry-run --check" "--remove -r 2M" "-r 2M --bogus" "-r 2M extra.img"; do
    # shellcheck disable=SC2086
    run 2 "$N" --hive "$h" $args
    err_has "netvsc-patch: "
  done
  run 2 "$N" -r 2M
  err_has "no image given"
  run 2 "$N" -r 2M -o x img
  same_bytes "$h" "$WORK/orig"
}

help_version () {
  run 0 "$N" --help
  out_has "Usage: netvsc-patch"
  # every long option main.c declares
  opts=$(sed -n 's/^  { "\([a-z-]*\)", .*/--\1/p' "$TOP/src/main.c")
  [ "$(echo "$opts" | wc -l)" -ge 25 ]
  for o in $opts; do
    out_has "$o"
    grep -qF -- "$(echo "$o" | sed 's/-/\\-/g')" "$TOP/man/netvsc-patch.1" || { echo "man page lacks $o"; exit 1; }
  done
  run 0 "$N" --version
  out_has "netvsc-patch "
}

check "patch ws2019, only two values differ" patch_ws2019
check "second run: unchanged, file untouched" unchanged_writes_nothing
check "--dry-run writes nothing" dry_run
check "--check exit codes" check_mode
check "only -r sets only ReceiveBufferSize" only_receive
check "no netvsc adapter: exit 3, lists what was found" no_adapter
check "REG_SZ value replaced by REG_DWORD" retype_reg_sz
check "values of unexpected types" odd_types
check "2008 R2 adapter (upper-case id)" w2008r2
check "two netvsc adapters, Intel untouched" two_adapters
check "Current and Default control sets; --control-set" control_sets
check "-o writes elsewhere, original untouched" output_elsewhere
check "--list" list_mode
check "--json" json_report
check "--match for other drivers" match_other_drivers
check "--remove" remove_values
check "--backup" backup
check "permissions kept, no temp files left" keeps_permissions
check "dirty hive refused (exit 4)" dirty_hive
check "bad checksum refused (exit 4)" bad_checksum
check "bad input files (exit 1, bytes unchanged)" bad_inputs
check "missing or broken Select" no_select
check "read-only hive, read-only directory" read_only
check "dirty hive recovered from its logs, patched, logs emptied" replay_logs
check "old-format log cut or its bitmap mutated: refused whole (exit 4), nothing changed" old_log_cut
check "old-format log, invalid base block: first hive bin's timestamp, said so" old_log_first_bin
check "XP's single system.LOG replayed; Vista's empty .LOG left alone" xp_single_log
check "logs found in any case; two spellings refused as ambiguous" log_names_any_case
check "--replay-only on NTUSER.DAT and SOFTWARE (no Select)" replay_only_any_hive
check "usage errors (exit 2)" usage_errors
check "--help, --version and the man page list every option" help_version
finish
