#!/bin/sh
# Install everything netvsc-patch needs to build, test and demo, from Debian's
# packages.  Idempotent: packages already present are skipped, so `make deps`
# costs a dpkg query on a machine that has them.  Must run as root (apt-get).
set -eu

PACKAGES="
  gcc make pkg-config
  libguestfs-dev libhivex-dev check libnbd-dev ntfs-3g-dev
  libguestfs-tools guestfish libhivex-bin libwin-hivex-perl
  qemu-utils qemu-system-x86 ntfs-3g linux-image-amd64
  libregf-utils xz-utils python3 clang libclang-rt-14-dev util-linux bc procps time
"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  echo "install-deps: all dependencies present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages:$missing" >&2
  echo "install-deps: run as root (or: sudo $0)" >&2
  exit 1
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
