#!/bin/bash
# Hive mode on real Windows SYSTEM hives from ../shared/real-hives (CI
# has them; a fresh clone may not: then these cases say they skipped).
. "$(dirname "$0")/lib.sh"

REAL=$SHARED/real-hives
INTEL_0007="$CLASS\\0007"
INTEL_0012="$CLASS\\0012"

unpack () { xz -dc "$REAL/$1.xz" >"$WORK/$2"; }

real_no_adapter () {
  unpack SYSTEM SYSTEM; cp "$WORK/SYSTEM" "$WORK/orig"
  run 3 "$N" --hive "$WORK/SYSTEM" -r 2M -s 2M
  err_has "no network adapter matches 'netvsc' (13 network instances found)"
  out_has "Intel(R) PRO/1000 MT Network Connection"
  out_has "WAN Miniport (SSTP)"
  same_bytes "$WORK/SYSTEM" "$WORK/orig"
}

real_intel () {
  unpack SYSTEM SYSTEM; cp "$WORK/SYSTEM" "$WORK/orig"
  run 0 "$N" --hive "$WORK/SYSTEM" --match 'pci\ven_8086&dev_100f' -r 4M -s 2M
  out_has "2 adapters matched"
  out_has "\\0007"
  out_has "\\0012"
  [ "$(regf_value "$WORK/SYSTEM" "$INTEL_0007" ReceiveBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 4096" ]
  [ "$(regf_value "$WORK/SYSTEM" "$INTEL_0012" SendBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 2048" ]
  [ "$(hget "$WORK/SYSTEM" "$INTEL_0012" ReceiveBufferSize)" = 4096 ]
  # the rest of an 11 MB real hive is unchanged, value for value
  export_diff "$WORK/orig" "$WORK/SYSTEM" >"$WORK/diff"
  [ "$(grep -c '^>' "$WORK/diff")" -eq 4 ]
  [ "$(grep -c '^<' "$WORK/diff")" -eq 0 ]
  # libregf reads the whole patched hive as well as the original
  [ "$(regfexport "$WORK/SYSTEM" 2>&1 | grep -c '^Key path:')" -eq \
    "$(regfexport "$WORK/orig" 2>&1 | grep -c '^Key path:')" ]
}

real_dirty () {
  for f in SYSTEM_B SYSTEM_B.LOG1 SYSTEM_B.LOG2; do unpack "$f" "$f"; done
  mv "$WORK/SYSTEM_B" "$WORK/SYSTEM"; mv "$WORK/SYSTEM_B.LOG1" "$WORK/SYSTEM.LOG1"
  mv "$WORK/SYSTEM_B.LOG2" "$WORK/SYSTEM.LOG2"
  cp "$WORK/SYSTEM" "$WORK/orig"
  run 4 "$N" --hive "$WORK/SYSTEM" -r 2M --no-replay
  err_has "refused: the hive is dirty (sequence numbers differ (0x656 / 0x655))"
  err_has "SYSTEM.LOG1 and .LOG2 exist beside it"
  same_bytes "$WORK/SYSTEM" "$WORK/orig"
  # recovered from its logs, then patched: nothing Windows logged is lost
  run 0 "$N" --hive "$WORK/SYSTEM" --match 'pci\ven_8086&dev_1502' -r 4M
  out_has "replayed 24 log entries (sequence 0x83b..0x852, 315 pages) from SYSTEM.LOG1 then SYSTEM.LOG2"
  out_has "emptied 2 transaction logs"
  [ "$(regf_value "$WORK/SYSTEM" "$CLASS\\0001" ReceiveBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 4096" ]
  # libregf reads 35,595 keys where the stale primary had 33,123
  [ "$(regfexport "$WORK/orig" 2>/dev/null | grep -c '^Key path:')" -eq 33123 ]
  [ "$(regfexport "$WORK/SYSTEM" 2>/dev/null | grep -c '^Key path:')" -eq 35595 ]
  [ ! -s "$WORK/SYSTEM.LOG1" ] && [ ! -s "$WORK/SYSTEM.LOG2" ]
}

real_corrupted () {
  unpack corrupted_system_hive SYSTEM; cp "$WORK/SYSTEM" "$WORK/orig"
  run 1 "$N" --hive "$WORK/SYSTEM" -r 2M
  err_has "$WORK/SYSTEM: "
  err_lines 1
  same_bytes "$WORK/SYSTEM" "$WORK/orig"
}

if [ -d "$REAL" ]; then
  check "real SYSTEM: no netvsc adapter, exit 3, bytes unchanged" real_no_adapter
  check "real SYSTEM: --match the two Intel adapters" real_intel
  check "real dirty SYSTEM: refused with --no-replay, else recovered and patched" real_dirty
  check "real corrupted hive: exit 1, bytes unchanged" real_corrupted
else
  for c in real-no-adapter real-intel real-dirty real-corrupted; do
    skip "$c" "no $REAL"
  done
fi
finish
