#!/bin/bash
# Appliance launches that go wrong (src/launchwatch.c): KVM that hangs,
# KVM that aborts, and signals during a launch.  A hanging host is
# simulated with tests/hv-kvm-hangs.sh as LIBGUESTFS_HV (qemu starts,
# prints the BIOS banner and never boots, as on some nested hosts).
# LIBGUESTFS_BACKEND_SETTINGS is unset where the tool's own handling is
# tested.  Launches are few: the signal cases end theirs within seconds.
. "$(dirname "$0")/lib.sh"

IMAGES=$FIXTURES/images
KEY1="$CLASS\\0001"
HV=$TOP/tests/hv-kvm-hangs.sh
# libguestfs's temporary files under $WORK/tmp (its sockets stay in /tmp
# for root: found from the qemu command line); the appliance where it is.
export LIBGUESTFS_CACHEDIR=${LIBGUESTFS_CACHEDIR:-${TMPDIR:-/var/tmp}}
mkdir -p "$WORK/tmp"
export TMPDIR=$WORK/tmp

img_copy () { cp --sparse=always "$IMAGES/$1" "$WORK/$1"; echo "$WORK/$1"; }
extract () { sh "$TOP/tests/extract-hive.sh" "$@" 2>/dev/null; }
now () { date +%s.%N; }
since () { echo "$(now) - $1" | bc; }
kvm_usable () { [ -r /dev/kvm ] && [ -w /dev/kvm ]; }

# sockdir_of QEMU_PID: libguestfs's socket directory, from qemu's command line.
sockdir_of () {
  tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null |
    sed -n 's|.*path=\(/[^,]*\)/guestfsd\.sock.*|\1|p'
}

# appliance_of PID: wait (up to 120 s) for the appliance's qemu that the
# tool PID started (not one of libguestfs's qemu feature probes), print
# "QEMU_PID SOCKDIR".
appliance_of () {
  for _ in $(seq 600); do
    for q in $(pgrep -P "$1" qemu-system); do
      d=$(sockdir_of "$q")
      [ -n "$d" ] && { echo "$q $d"; return 0; }
    done
    kill -0 "$1" 2>/dev/null || { echo "the tool ended before its appliance started" >&2; return 1; }
    sleep 0.2
  done
  echo "no appliance after 120 s" >&2; return 1
}

# nothing_left [SOCKDIR]: no process of the run (tool, qemu, wrapper,
# libguestfs's recovery process: their command lines name $WORK), no
# temporary file or directory, no socket directory.
nothing_left () {
  if pgrep -f "$WORK/" >/dev/null; then
    echo "left running:"; pgrep -af "$WORK/"; return 1
  fi
  if [ -n "$(ls -A "$WORK/tmp")" ]; then
    echo "left in TMPDIR:"; ls -la "$WORK/tmp"; return 1
  fi
  if [ -n "${1:-}" ] && [ -e "$1" ]; then
    echo "socket directory $1 left"; return 1
  fi
}

# interrupt_launch SIGNAL IMAGE CMD...: start CMD, send SIGNAL while its
# launch runs, check the stop: within 15 s, exit 1, the one true line,
# image unchanged, nothing left.
interrupt_launch () {
  sig=$1 img=$2; shift 2
  cp "$img" "$WORK/orig"
  "$@" >"$WORK/out" 2>"$WORK/err" &
  pid=$!
  set -- $(appliance_of "$pid")
  [ -n "${2:-}" ] || { kill -KILL "$pid"; wait "$pid"; cat "$WORK/err"; return 1; }
  sock=$2
  sleep 2
  t0=$(now)
  kill -"$sig" "$pid"
  rc=0; wait "$pid" || rc=$?
  t=$(since "$t0")
  echo "# SIG$sig during the launch: exit after ${t} s"
  [ "$(echo "$t < 15" | bc)" -eq 1 ] || { echo "took $t s"; return 1; }
  [ "$rc" -eq 1 ] || { echo "exit $rc"; cat "$WORK/err"; return 1; }
  err_has "$img: interrupted by SIG$sig; nothing was written, the original is untouched"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
  nothing_left "$sock"
}

signals_during_hung_launch () {
  # The hung launch is ended by the signal long before the bound (60 s).
  img=$(img_copy win.qcow2)
  for sig in TERM INT; do
    interrupt_launch "$sig" "$img" env -u LIBGUESTFS_BACKEND_SETTINGS LIBGUESTFS_HV="$HV" \
      "$N" -r 2M "$img"
  done
}

sigterm_during_tcg_launch () {
  # A normal launch (software emulation: the kernel is booting when the
  # signal comes) is ended as quickly.
  img=$(img_copy win-dyn.vhd)
  interrupt_launch TERM "$img" env LIBGUESTFS_BACKEND_SETTINGS=force_tcg "$N" -r 2M "$img"
}

hang_then_tcg_once () {
  # Two images, one appliance each, one after the other: the first
  # launch hangs under KVM, is ended after the bound and retried under
  # TCG; the second goes straight to TCG (one warning, one KVM attempt).
  a=$(img_copy win.qcow2); b=$(img_copy win-dyn.vhd)
  t0=$(now)
  run 0 env -u LIBGUESTFS_BACKEND_SETTINGS LIBGUESTFS_HV="$HV" HV_LOG="$WORK/hv.log" \
    "$N" --isolate -j 1 --launch-timeout 10 -r 4M -s 2M "$a" "$b"
  echo "# hung launch ended, two images patched under TCG in $(since "$t0") s"
  err_has "netvsc-patch: warning: $a: the appliance made no progress for 10 s with hardware acceleration; retrying with LIBGUESTFS_BACKEND_SETTINGS=force_tcg"
  err_lines 1
  [ "$(grep -c '^hang$' "$WORK/hv.log")" -eq 1 ] || { cat "$WORK/hv.log"; return 1; }
  [ "$(grep -c '^tcg$' "$WORK/hv.log")" -eq 2 ] || { cat "$WORK/hv.log"; return 1; }
  for img in "$a" "$b"; do
    extract "$img" "$WORK/SYSTEM"
    [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 4096 ]
    [ "$(hget "$WORK/SYSTEM" "$KEY1" SendBufferSize)" = 2048 ]
  done
  nothing_left
}

abort_then_tcg_once () {
  # This host's own kind, whatever it is: where qemu aborts under KVM
  # (accel-env.sh says force_tcg) one warning for two appliances; where
  # KVM works, none.  The bound is short so that a hanging host is quick.
  a=$(img_copy win.vhdx); b=$(img_copy win.raw)
  run 0 env -u LIBGUESTFS_BACKEND_SETTINGS "$N" --isolate -j 1 --launch-timeout 20 \
    -r 2M -s 4M "$a" "$b"
  if [ "$(sh "$TOP/tests/accel-env.sh")" = force_tcg ]; then
    err_has "netvsc-patch: warning: $a: the appliance "
    err_has "with hardware acceleration; retrying with LIBGUESTFS_BACKEND_SETTINGS=force_tcg"
    err_lines 1
  else
    err_lines 0
  fi
  for img in "$a" "$b"; do
    extract "$img" "$WORK/SYSTEM"
    [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 2048 ]
    [ "$(hget "$WORK/SYSTEM" "$KEY1" SendBufferSize)" = 4096 ]
  done
  nothing_left
}

launch_timeout_usage () {
  img=$(img_copy win.qcow2); cp "$img" "$WORK/orig"
  for v in x -5 1.5 86401 ''; do
    run 2 "$N" --launch-timeout "$v" --list "$img"
    err_has "--launch-timeout '$v': expected a number of seconds from 0 (never) to 86400"
  done
  run 2 env NETVSC_PATCH_LAUNCH_TIMEOUT=soon "$N" --list "$img"
  err_has "NETVSC_PATCH_LAUNCH_TIMEOUT='soon': expected a number of seconds"
  same_bytes "$img" "$WORK/orig"
}

check "--launch-timeout and NETVSC_PATCH_LAUNCH_TIMEOUT: bad values" launch_timeout_usage
check "SIGTERM during a normal launch: stops within seconds, nothing left" sigterm_during_tcg_launch
if kvm_usable; then
  check "SIGTERM/SIGINT during a launch that hangs under KVM" signals_during_hung_launch
  check "KVM hangs: ended after the bound, TCG, remembered for the run" hang_then_tcg_once
else
  skip "launches that hang under KVM" "no usable /dev/kvm: libguestfs does not try KVM"
fi
check "this host's KVM: at most one fallback for two appliances" abort_then_tcg_once
finish
