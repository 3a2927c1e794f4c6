#!/bin/sh
# make demo: build a small Windows-like VHD (an NTFS volume whose SYSTEM
# hive has a Hyper-V network adapter), show its adapters, patch it, show
# them again.  Everything lives in build/demo.
set -eu
cd "$(dirname "$0")/.."
B=build
D=$B/demo
mkdir -p "$D"

if [ -z "${LIBGUESTFS_BACKEND_SETTINGS+x}" ]; then
  echo "demo: does the appliance run under KVM here? (one launch; a minute where KVM hangs)"
fi
if [ -z "${LIBGUESTFS_BACKEND_SETTINGS+x}" ] && [ "$(sh tests/accel-env.sh)" = force_tcg ]; then
  echo "demo: KVM is not usable here: using software emulation (slower)"
  LIBGUESTFS_BACKEND_SETTINGS=force_tcg
  export LIBGUESTFS_BACKEND_SETTINGS
fi

echo "demo: building fixture hives and a sample image (first run builds the appliance)"
sh tests/make-fixture-hives.sh $B/tests/mkhive "$D/hives" >/dev/null
sh tests/make-fixture-images.sh "$D/hives" "$D/images" >/dev/null
cp "$D/images/win-dyn.vhd" "$D/sample.vhd"

echo
echo "\$ netvsc-patch --list $D/sample.vhd"
$B/netvsc-patch --list "$D/sample.vhd"
echo
echo "\$ netvsc-patch -r 4M -s 4M $D/sample.vhd"
$B/netvsc-patch -r 4M -s 4M "$D/sample.vhd"
echo
echo "\$ netvsc-patch --check -r 4M -s 4M $D/sample.vhd && echo up to date"
$B/netvsc-patch --check -q -r 4M -s 4M "$D/sample.vhd" && echo "up to date"
echo
echo "\$ netvsc-patch --list $D/sample.vhd"
$B/netvsc-patch --list "$D/sample.vhd"
