#!/bin/sh
# hv-kvm-hangs.sh: a hypervisor for LIBGUESTFS_HV that behaves like qemu
# on the hosts where KVM hangs (some nested-virtualisation hosts: cloud
# VMs, CI runners).  There /dev/kvm opens and qemu starts, but the
# appliance never boots: the serial console shows the BIOS banner and
# "Booting from ROM..." and then nothing, for ever.
#
# Asked to run the appliance with KVM (-kernel and accel=kvm... or
# -enable-kvm on the command line libguestfs builds), this prints that
# banner on the console (qemu's stdout) and runs the real qemu paused
# (-S, under TCG so that it starts on any host): it prints nothing more
# and never boots.  Anything else (libguestfs's qemu feature probes, and
# force_tcg launches) runs the real qemu unchanged.
#
# REAL_QEMU names the real binary (default: qemu-system-x86_64 on PATH).
# HV_LOG, if set, gets a line per appliance run: "hang" or "tcg".
# HV_KVM=slow runs those KVM launches under TCG instead, unpaused: a
# launch that is slow but shows progress (the bound must not end it).
real=${REAL_QEMU:-$(command -v qemu-system-x86_64)}
case " $* " in
*" -kernel "*) ;;
*) exec "$real" "$@" ;;
esac
case " $* " in
*accel=kvm*|*" -enable-kvm "*) ;;
*)
  [ -z "${HV_LOG:-}" ] || echo tcg >>"$HV_LOG"
  exec "$real" "$@" ;;
esac
[ -z "${HV_LOG:-}" ] || echo "${HV_KVM:-hang}" >>"$HV_LOG"
for a do
  shift
  case $a in
  -enable-kvm) continue ;;
  *accel=kvm*) a=$(printf '%s\n' "$a" | sed 's/accel=kvm:tcg/accel=tcg/; s/accel=kvm/accel=tcg/') ;;
  esac
  set -- "$@" "$a"
done
[ "${HV_KVM:-}" != slow ] || exec "$real" "$@"
printf 'SeaBIOS (version hv-kvm-hangs.sh)\r\nBooting from ROM...\r\n'
exec "$real" "$@" -S
