#!/bin/sh
# Install everything netvsc-patch needs to build, test and demo, from Debian's
# packages.  Idempotent: packages already present are skipped, so `make deps`
# costs a dpkg query on a machine that has them.  Must run as root (apt-get).
set -eu

PACKAGES="
  gcc make pkg-config
  libguestfs-dev libhivex-dev check libnbd-dev ntfs-3g-dev libjansson-dev
  libvirt-dev libxml2-dev libvirt-clients
  libguestfs-tools guestfish libhivex-bin libwin-hivex-perl
  qemu-utils qemu-system-x86 qemu-block-extra ntfs-3g linux-image-amd64
  libregf-utils xz-utils python3 clang libclang-rt-14-dev util-linux fdisk bc procps time
  acl attr
  openssh-server openssh-client libnss-wrapper openssl ca-certificates
"
# (openssh-server, openssh-client, libnss-wrapper: t-uri's ssh:// case, a
# private sshd; nss_wrapper gives libssh, which finds ~/.ssh with
# getpwuid(), a home in the test's directory; openssl, ca-certificates:
# its https:// case, a test CA put in place of the system trust store in
# a private mount namespace)

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing="$missing $p"
  fi
done

# Test-only: Node.js runs tests/ps-syntax.cjs, a PowerShell parser for
# the script --defer writes.  Debian's nodejs and npm, unless a node and
# an npm are already there (another distribution of Node would conflict).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing="$missing nodejs npm"
fi

if [ -n "$missing" ]; then
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
else
  echo "install-deps: all packages present"
fi

# The PowerShell grammar, from the npm registry, into build/ps-syntax
# (pinned versions; once).  Without it the unit test says it skipped the
# syntax check; with it, a script that does not parse fails make check.
ps=$(cd "$(dirname "$0")/.." && pwd)/build/ps-syntax
if [ ! -f "$ps/node_modules/tree-sitter-powershell/tree-sitter-powershell.wasm" ] ||
   [ ! -d "$ps/node_modules/web-tree-sitter" ]; then
  mkdir -p "$ps"
  if npm install --silent --no-audit --no-fund --prefix "$ps" \
       tree-sitter-powershell@0.26.4 web-tree-sitter@0.27.2 >/dev/null; then
    echo "install-deps: PowerShell grammar installed in $ps"
  else
    echo "install-deps: warning: npm could not install the PowerShell grammar;" \
         "the --defer script's syntax check will be skipped" >&2
  fi
fi
