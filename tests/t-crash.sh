#!/bin/bash
# Crash safety: SIGKILL netvsc-patch at many moments while it patches,
# in hive mode and in image mode.  Afterwards the hive must be either
# the original, byte for byte, or the fully patched hive (same export as
# an uninterrupted run: the base block's timestamp differs between
# runs), must open cleanly, and a rerun must succeed.
. "$(dirname "$0")/lib.sh"

export_of () { hivexregedit --export "$1" '\' ; }

# kill_at FILE_ARGS... : run the tool in the background, SIGKILL it after
# $delay seconds (fractional).
kill_after () {
  delay=$1; shift
  "$@" >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# classify HIVE ORIG PATCHED_EXPORT -> "old" / "new" / fails
classify () {
  if same_bytes "$1" "$2" >/dev/null; then echo old; return; fi
  export_of "$1" >"$WORK/now.reg" || { echo "hive does not open"; return 1; }
  if cmp -s "$WORK/now.reg" "$3"; then
    [ "$(od -An -tu4 -j4 -N4 "$1")" = "$(od -An -tu4 -j8 -N4 "$1")" ] || { echo "dirty"; return 1; }
    echo new; return
  fi
  echo "neither the original nor the patched hive"; return 1
}

hive_mode_kills () {
  src=$FIXTURES/hives/multi.hive
  big=$SHARED/real-hives/SYSTEM.xz
  match=netvsc
  if [ -f "$big" ]; then
    # a real 11 MB hive makes the write window wide enough to hit often
    xz -dc "$big" >"$WORK/big"; src=$WORK/big; match='pci\ven_8086&dev_100f'
  fi
  cp "$src" "$WORK/ref"; "$N" -q --hive "$WORK/ref" --match "$match" -r 4M -s 4M
  export_of "$WORK/ref" >"$WORK/ref.reg"
  start=$(date +%s%N); cp "$src" "$WORK/t"; "$N" -q --hive "$WORK/t" --match "$match" -r 4M -s 4M
  span=$(( ($(date +%s%N) - start) / 1000 ))   # microseconds
  old=0 new=0
  for i in $(seq 1 40); do
    mkdir -p "$WORK/k$i"; cp "$src" "$WORK/k$i/SYSTEM"
    d=$(( span * i / 32 ))
    kill_after "$(printf '0.%06d' "$d")" "$N" -q --hive "$WORK/k$i/SYSTEM" --match "$match" -r 4M -s 4M
    r=$(classify "$WORK/k$i/SYSTEM" "$src" "$WORK/ref.reg") || { echo "kill $i after ${d}us: $r"; exit 1; }
    [ "$r" = old ] && old=$((old + 1)) || new=$((new + 1))
    run 0 "$N" -q --hive "$WORK/k$i/SYSTEM" --match "$match" -r 4M -s 4M
    rm -rf "$WORK/k$i"
  done
  echo "# hive mode: a run takes ${span}us; 40 kills: $old left the original, $new the patched hive"
  [ "$old" -gt 0 ] && [ "$new" -gt 0 ]
}

image_mode_kills () {
  img=$FIXTURES/images/win.qcow2
  sh "$TOP/tests/extract-hive.sh" "$img" "$WORK/orig.hive" 2>/dev/null
  cp "$img" "$WORK/ref.qcow2"
  start=$(date +%s); "$N" -q -r 4M -s 4M "$WORK/ref.qcow2"; span=$(( $(date +%s) - start ))
  sh "$TOP/tests/extract-hive.sh" "$WORK/ref.qcow2" "$WORK/ref.hive" 2>/dev/null
  export_of "$WORK/ref.hive" >"$WORK/ref.reg"
  old=0 new=0 n=8
  for i in $(seq 1 $n); do
    cp "$img" "$WORK/k.qcow2"
    # spread over the second half of the run, where the write happens
    d=$(( span * 1000 * (n + i) / (2 * n) ))
    kill_after "$(printf '%d.%03d' $((d / 1000)) $((d % 1000)))" "$N" -q -r 4M -s 4M "$WORK/k.qcow2"
    # libguestfs's recovery process kills qemu once it sees us gone
    for _ in $(seq 1 30); do
      qemu-img info "$WORK/k.qcow2" >/dev/null 2>&1 && break; sleep 0.5
    done
    qemu-img check -q "$WORK/k.qcow2"
    sh "$TOP/tests/extract-hive.sh" "$WORK/k.qcow2" "$WORK/k.hive" 2>/dev/null ||
      { echo "kill $i after ${d}ms: SYSTEM unreadable"; exit 1; }
    r=$(classify "$WORK/k.hive" "$WORK/orig.hive" "$WORK/ref.reg") ||
      { echo "kill $i after ${d}ms: $r"; exit 1; }
    [ "$r" = old ] && old=$((old + 1)) || new=$((new + 1))
  done
  echo "# image mode: a run takes ${span}s; $n kills: $old left the original, $new the patched hive"
  # the last image, whatever it holds, must still be patchable
  run 0 "$N" -q -r 4M -s 4M "$WORK/k.qcow2"
  sh "$TOP/tests/extract-hive.sh" "$WORK/k.qcow2" "$WORK/k.hive" 2>/dev/null
  r=$(classify "$WORK/k.hive" "$WORK/orig.hive" "$WORK/ref.reg")
  [ "$r" = new ]
}

check "SIGKILL at 40 moments in hive mode" hive_mode_kills
check "SIGKILL at 8 moments in image mode" image_mode_kills
finish
