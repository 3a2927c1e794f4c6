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
  err_has "SYSTEM.LOG1 and SYSTEM.LOG2 exist beside it"
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

# An old-format log (Windows 7 / 2008 R2 style, made by tests/mklog.c)
# holding 57 Start DWORDs changed in place (the hive does not grow) on
# services spread over the real 11.8 MB SYSTEM: cut in the middle, it was
# applied in part before (a clean-looking hive missing half of them); now
# it is refused whole, nothing changed; whole, all 57 are recovered.
real_old_log_cut () {
  unpack SYSTEM clean
  # the file offsets of the Start values (hivex value handles), every 7th
  perl -MWin::Hivex -e '
    my $h = Win::Hivex->open($ARGV[0]);
    my $sv = $h->node_get_child ($h->node_get_child ($h->root, "ControlSet001"), "Services");
    for my $n ($h->node_children ($sv)) {
      my $v = eval { $h->node_get_value ($n, "Start") } or next;
      my ($t, $len) = $h->value_type ($v);
      print "$v ", $h->node_name ($n), "\n" if $t == 4 && $len == 4;
    }' "$WORK/clean" | awk 'NR % 7 == 1' | head -57 >"$WORK/starts"
  [ "$(wc -l <"$WORK/starts")" -eq 57 ]
  # an inline DWORD: its data at cell + 12 ("vk" at cell + 4)
  cp "$WORK/clean" "$WORK/step"; n=0
  while read -r off svc; do
    [ "$(dd if="$WORK/clean" bs=1 skip=$((off + 4)) count=2 status=none)" = vk ]
    n=$((n + 1))
    printf "\\x$(printf %02x $((0x40 + n)))\\x01\\x00\\x00" |
      dd of="$WORK/step" bs=1 seek=$((off + 12)) conv=notrunc status=none
  done <"$WORK/starts"
  [ "$(export_diff "$WORK/clean" "$WORK/step" | grep -c '^>')" -eq 57 ]
  "$MKLOG" --old -o "$WORK/SYSTEM" -1 "$WORK/full.LOG1" "$WORK/clean" "$WORK/step"
  size=$(stat -c %s "$WORK/full.LOG1")
  hbins=$(od -An -tu4 -j40 -N4 "$WORK/full.LOG1" | tr -d ' ')
  start=$(( (512 + 4 + hbins / 4096 + 511) / 512 * 512 ))     # pages after the bitmap
  pages=$(( (size - start) / 512 )) cut=$(( size / 2 + 100 ))
  head -c $cut "$WORK/full.LOG1" >"$WORK/SYSTEM.LOG1"
  sha256sum "$WORK/SYSTEM" "$WORK/SYSTEM.LOG1" >"$WORK/sums"
  run 4 "$N" --hive "$WORK/SYSTEM" -r 2M
  err_has "SYSTEM.LOG1 holds $(( (cut - start) / 512 )) of $pages dirty pages: cut short ($cut bytes, $size needed)"
  err_has "(an old-format log is applied whole or not at all)"
  err_lines 1
  run 4 "$N" --hive "$WORK/SYSTEM" --replay-only -o "$WORK/rec"
  sha256sum -c --quiet "$WORK/sums"
  [ ! -e "$WORK/rec" ]
  cp "$WORK/full.LOG1" "$WORK/SYSTEM.LOG1"
  run 0 "$N" --hive "$WORK/SYSTEM" --replay-only -o "$WORK/rec"
  out_has "replayed the old-format log SYSTEM.LOG1 whole"
  export_diff "$WORK/step" "$WORK/rec" | { ! grep -q .; }
  [ "$(export_diff "$WORK/clean" "$WORK/rec" | grep -c '^>')" -eq 57 ]
  echo "# real SYSTEM, old-format log of $pages pages (57 DWORDs): cut at $cut bytes refused, whole recovered"
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
  check "real SYSTEM, old-format log of 57 DWORDs: cut refused whole, whole recovered" real_old_log_cut
else
  for c in real-no-adapter real-intel real-dirty real-corrupted real-old-log-cut; do
    skip "$c" "no $REAL"
  done
fi
finish
