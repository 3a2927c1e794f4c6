#!/bin/sh
# Print "force_tcg" if the libguestfs appliance cannot run under KVM on
# this host, else nothing.  The test suite, the fixture builder, the demo
# and the benchmark export LIBGUESTFS_BACKEND_SETTINGS from this, so that
# their launches (guestfish's included, which has no fallback) do not
# first fail or hang under KVM; t-image and t-launch leave it unset to
# exercise netvsc-patch's own fallback.
#
# Decided as netvsc-patch decides (src/launchwatch.c): an appliance is
# launched with KVM allowed (guestfish -a /dev/null run); KVM is unusable
# if there is no usable /dev/kvm, if the launch fails (qemu aborts under
# KVM on some hosts: "failed to set MSR"), or if it goes
# $NETVSC_PATCH_LAUNCH_TIMEOUT seconds (default 60) without any output
# (on some nested-virtualisation hosts qemu starts but the guest never
# boots: the console stops after "Booting from ROM...").  A hung launch
# is ended the way netvsc-patch ends it: its qemu is killed, and
# libguestfs cleans up after the failed launch.
#
# A launch costs seconds (60 on a hanging host), so the verdict is kept
# in build/accel-verdict for this boot of the host, this qemu binary and
# this LIBGUESTFS_HV.
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo force_tcg; exit 0; }

bound=${NETVSC_PATCH_LAUNCH_TIMEOUT:-60}
case $bound in ''|*[!0-9]*|0) bound=60 ;; esac
qemu=$(command -v qemu-system-x86_64 || true)
key="$(cat /proc/sys/kernel/random/boot_id 2>/dev/null) $qemu $(stat -Lc '%s %Y' "$qemu" 2>/dev/null) hv=${LIBGUESTFS_HV:-}"
cache=$(cd "$(dirname "$0")/.." && pwd)/build/accel-verdict
if [ -f "$cache" ] && [ "$(head -n 1 "$cache")" = "$key" ]; then
  sed -n 2p "$cache"
  exit 0
fi

verdict=$(env -u LIBGUESTFS_BACKEND_SETTINGS python3 - "$bound" <<'PY'
import os, select, signal, subprocess, sys, time

bound = float(sys.argv[1])
p = subprocess.Popen(["guestfish", "-v", "--format=raw", "-a", "/dev/null", "run"],
                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, start_new_session=True)
fd = p.stdout.fileno()
last = time.monotonic()
hung = False

def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []

def exe(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None

while True:
    r, _, _ = select.select([fd], [], [], 0.5)
    if r:
        if not os.read(fd, 65536):
            break
        last = time.monotonic()
        continue
    if hung or time.monotonic() - last < bound:
        continue
    # No output for the bound: kill qemu (guestfish's child that is not
    # a copy of guestfish, which is libguestfs's recovery process, nor
    # supermin building the appliance), as netvsc-patch does; guestfish
    # then fails and cleans up.
    own = exe(p.pid)
    qemu = [c for c, e in ((c, exe(c)) for c in children(p.pid))
            if e not in (None, own) and not os.path.basename(e).startswith("supermin")]
    if not qemu:                # still building the appliance
        last = time.monotonic()
        continue
    for c in qemu:
        os.kill(c, signal.SIGKILL)
    hung = True
try:
    rc = p.wait(timeout=30)
except subprocess.TimeoutExpired:
    os.killpg(p.pid, signal.SIGKILL)
    rc = p.wait()
print("hang" if hung else "ok" if rc == 0 else "fail")
PY
)
case $verdict in
ok) out= ;;
*) out=force_tcg ;;
esac
if mkdir -p "$(dirname "$cache")" 2>/dev/null &&
   printf '%s\n%s\n' "$key" "$out" >"$cache.$$" 2>/dev/null; then
  mv -f "$cache.$$" "$cache"
else
  rm -f "$cache.$$"
fi
[ -z "$out" ] || echo "$out"
