#!/bin/sh
# Print "force_tcg" if qemu cannot run guests under KVM on this host (no
# /dev/kvm, or qemu aborts under it as on some nested hosts), else
# nothing.  The test suite exports LIBGUESTFS_BACKEND_SETTINGS from this
# so that each appliance launch does not first fail under KVM; one test
# leaves it unset to exercise netvsc-patch's own fallback.
[ -e /dev/kvm ] || { echo force_tcg; exit 0; }
out=$( { timeout 5 qemu-system-x86_64 -machine accel=kvm -cpu max -m 64 -nodefaults \
          -display none -no-reboot -S -qmp stdio </dev/null; echo "rc=$?"; } 2>&1)
rc=$(printf '%s' "$out" | sed -n 's/^rc=//p')
# A working KVM leaves qemu paused until the timeout (124).
if [ "$rc" != 124 ] || printf '%s' "$out" | grep -q 'failed to set MSR\|Could not access KVM'; then
  echo force_tcg
fi
