#!/bin/bash
# bench-direct.sh [HIVE MATCH CHANGE.REG]: a whole --direct patch of an
# image holding a big SYSTEM hive against `hivexregedit --merge` of the
# same values on the bare hive, in one run (tests/bench.sh section 5
# calls it with section 1's hive; alone, it takes the real 12 MB hive in
# ../shared).  Figures, never pass/fail.
#
# The image is the fixture win.raw with the hive put in its NTFS volume
# by ntfscp (no appliance), then made a fixed and a dynamic VHD by
# qemu-img.  Runs alternate (hivexregedit, fixed, dynamic, raw, ...) so
# that a busy machine weighs on all alike; medians of BENCH_DIRECT_RUNS
# (default 7).  Then netvsc-patch's peak memory (GNU time's max RSS) for
# batches of 1, 16 and 64 fixed VHDs.
set -eu
cd "$(dirname "$0")/.."
TOP=$PWD
N=$TOP/build/netvsc-patch
FIX=${FIXTURES:-$TOP/build/fixtures}
SHARED=${SHARED:-$(dirname "$TOP")/shared}
RUNS=${BENCH_DIRECT_RUNS:-7}
CLASS='HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Control\Class\{4d36e972-e325-11ce-bfc1-08002be10318}'
W=$(mktemp -d "${TMPDIR:-/tmp}/netvsc-bench-direct.XXXXXX")
trap 'rm -rf "$W"' EXIT

if [ $# -eq 3 ]; then
  hive=$1 match=$2 change=$3
else
  [ -f "$SHARED/real-hives/SYSTEM.xz" ] || { echo "bench-direct: no $SHARED/real-hives/SYSTEM.xz" >&2; exit 1; }
  xz -dc "$SHARED/real-hives/SYSTEM.xz" >"$W/big.hive"
  hive=$W/big.hive match='pci\ven_8086&dev_100f' change=$W/change.reg
  { echo "Windows Registry Editor Version 5.00"; echo
    for k in 0007 0012; do
      printf '[%s\\%s]\n"ReceiveBufferSize"=dword:00001000\n"SendBufferSize"=dword:00001000\n\n' "$CLASS" "$k"
    done; } >"$change"
fi

now () { date +%s.%N; }
timed () { local t0; t0=$(now); "$@" >/dev/null 2>&1 || echo FAILED >&2; echo "$(now) - $t0" | bc -l; }
median () { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# the image: win.raw's NTFS volume (sectors 2048-131071) with HIVE as SYSTEM
cp --sparse=always "$FIX/images/win.raw" "$W/big.raw"
dd if="$W/big.raw" of="$W/part" bs=512 skip=2048 count=129024 status=none
ntfscp -f -q "$W/part" "$hive" /Windows/System32/config/SYSTEM
dd if="$W/part" of="$W/big.raw" bs=512 seek=2048 conv=notrunc,sparse status=none
rm -f "$W/part"
qemu-img convert -f raw -O vpc -o subformat=fixed "$W/big.raw" "$W/big-fixed.vhd"
qemu-img convert -f raw -O vpc "$W/big.raw" "$W/big-dyn.vhd"

: >"$W/t.hx"; : >"$W/t.fixed"; : >"$W/t.dyn"; : >"$W/t.raw"
for i in $(seq 1 "$RUNS"); do
  cp "$hive" "$W/h.hive"
  timed hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' "$W/h.hive" "$change" >>"$W/t.hx"
  for f in fixed dyn raw; do
    src=$W/big-$f.vhd; [ $f = raw ] && src=$W/big.raw
    cp --sparse=always "$src" "$W/d.img"
    timed "$N" -q --direct --format "$([ $f = raw ] && echo raw || echo vpc)" --match "$match" \
      -r 4M -s 4M "$W/d.img" >>"$W/t.$f"
  done
done
# the last patched image holds what was asked (or the figures are void)
sh tests/extract-hive.sh "$W/d.img" "$W/d.hive" 2>/dev/null
key=$(grep -m1 '^\[' "$change" | sed 's/^\[HKEY_LOCAL_MACHINE\\SYSTEM//; s/\]$//')
ok=$(hivexget "$W/d.hive" "$key" ReceiveBufferSize 2>/dev/null || echo FAILED)

hx=$(median <"$W/t.hx")
echo "   a $(($(stat -c %s "$hive") / 1048576)) MB hive in an image, whole --direct patch vs hivexregedit --merge"
echo "   on the bare hive, median of $RUNS, alternating (value written: $ok):"
printf '   %-34s %.3f s\n' "hivexregedit --merge" "$hx"
for f in fixed dyn raw; do
  t=$(median <"$W/t.$f")
  case $f in
    fixed) what="fixed VHD (no qemu-nbd)" ;;
    dyn) what="dynamic VHD (qemu-nbd)" ;;
    raw) what="raw (no qemu-nbd)" ;;
  esac
  printf '   %-34s %.3f s   --direct image / hivexregedit %.2f%s\n' "--direct, $what" "$t" \
    "$(echo "$t / $hx" | bc -l)" "$([ $f = fixed ] && echo '   (target <= 1.5)')"
  # bench.sh's summary line
  if [ -n "${BENCH_RATIOS:-}" ]; then
    printf '%s %.2f\n' "$f" "$(echo "$t / $hx" | bc -l)" >>"$BENCH_RATIOS"
  fi
done
printf '   netvsc-patch peak memory, fixed VHDs in one call:'
for n in 1 16 64; do
  rm -rf "$W/batch"; mkdir "$W/batch"
  for i in $(seq 1 "$n"); do cp --sparse=always "$W/big-fixed.vhd" "$W/batch/img$i.vhd"; done
  peak=$(/usr/bin/time -f %M "$N" -q --direct --match "$match" -r 4M -s 4M "$W"/batch/*.vhd 2>&1 >/dev/null | tail -1)
  printf ' %d: %d MB' "$n" $((peak / 1024))
done
echo
