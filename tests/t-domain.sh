#!/bin/bash
# libvirt domains as targets (-d NAME, -c URI), through libvirt's test
# driver (no daemon): -c test:///ABS/node.xml, a node XML written here
# whose domains' disks are copies of fixture images.  In that driver a
# domain is running unless its XML says otherwise (test:runstate 5 is
# shut off; checked with virsh domstate where virsh is installed).
# One appliance launch (the patch of a shut-off domain whose data disk
# is its first disk); the rest with --direct or before any launch.
# Results are read back without the tool: tests/extract-hive.sh +
# hivexget; bytes compared with sha256.
. "$(dirname "$0")/lib.sh"
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"

IMAGES=$FIXTURES/images
KEY1="$CLASS\\0001"
extract () { sh "$TOP/tests/extract-hive.sh" "$@" 2>/dev/null; }

# disk_xml FILE FORMAT DEV [EXTRA]: one <disk> element.
disk_xml () {
  printf "<disk type='file' device='disk'><driver name='qemu' type='%s'/>" "$2"
  printf "<source file='%s'/><target dev='%s' bus='virtio'/>%s</disk>\n" "$1" "$3" "${4:-}"
}
# domain_xml NAME RUNSTATE DISKS...: a test-driver domain; RUNSTATE 5 is
# shut off, "" leaves the driver's default (running).
domain_xml () {
  local name=$1 state=$2
  shift 2
  echo "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>"
  echo "<name>$name</name><memory>1048576</memory><os><type>hvm</type></os><devices>"
  printf '%s\n' "$@"
  echo "</devices>"
  [ -z "$state" ] || echo "<test:runstate>$state</test:runstate>"
  echo "</domain>"
}

# A fresh $WORK/vm: data.raw (nowin.raw: no Windows) and win.qcow2, and
# $WORK/vm/node.xml defining "off" (shut off), "on" (running) and
# "paused", all with the data disk first, plus the odd domains the error
# cases need.
setup () {
  rm -rf "$WORK/vm"
  mkdir -p "$WORK/vm/other"
  cp --sparse=always "$IMAGES/nowin.raw" "$WORK/vm/data.raw"
  cp "$IMAGES/win.qcow2" "$WORK/vm/win.qcow2"
  cp "$IMAGES/win.qcow2" "$WORK/vm/other/base.qcow2"
  qemu-img create -q -f qcow2 -F qcow2 -b "$WORK/vm/other/base.qcow2" "$WORK/vm/overlay.qcow2"
  local data win
  data=$(disk_xml "$WORK/vm/data.raw" raw vda)
  win=$(disk_xml "$WORK/vm/win.qcow2" qcow2 vdb)
  {
    echo "<node>"
    domain_xml off 5 "$data" "$win"
    domain_xml on "" "$data" "$win"
    domain_xml paused 3 "$data" "$win"
    domain_xml datadisk 5 "$data"
    domain_xml nodisks 5
    domain_xml missing 5 "$(disk_xml "$WORK/vm/gone.qcow2" qcow2 vda)"
    domain_xml external 5 "$data" "$(disk_xml "$WORK/vm/overlay.qcow2" qcow2 vdb)"
    domain_xml wrongformat 5 "$data" "$(disk_xml "$WORK/vm/win.qcow2" raw vdb)"
    domain_xml network 5 "<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='nbd' name='x'><host name='localhost' port='10809'/></source><target dev='vda' bus='virtio'/></disk>"
    echo "</node>"
  } >"$WORK/vm/node.xml"
  URI="test://$WORK/vm/node.xml"
  sha256sum "$WORK/vm/data.raw" "$WORK/vm/win.qcow2" "$WORK/vm/other/base.qcow2" \
    "$WORK/vm/overlay.qcow2" >"$WORK/vm.sums"
}
unchanged () { sha256sum --quiet -c "$WORK/vm.sums"; }

# The test driver's view of the node, independently of the tool.
runstates () {
  setup
  command -v virsh >/dev/null || { echo "# virsh absent: runstates not checked"; return 0; }
  [ "$(virsh -c "$URI" domstate off | head -1)" = "shut off" ]
  [ "$(virsh -c "$URI" domstate on | head -1)" = running ]
  [ "$(virsh -c "$URI" domstate paused | head -1)" = paused ]
}

# The appliance: a shut-off domain whose first disk is a data disk
# (nowin.raw alone fails with "no Windows system volume") is patched on
# its second disk; the data disk is untouched.
appliance_patch () {
  setup
  run 0 "$N" -c "$URI" -d off -r 4M -s 4M
  out_has "off (qcow2, /dev/sdb1 /Windows/System32/config/SYSTEM): patched, 1 adapter matched"
  extract "$WORK/vm/win.qcow2" "$WORK/SYSTEM"
  [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 4096 ]
  [ "$(hget "$WORK/SYSTEM" "$KEY1" SendBufferSize)" = 4096 ]
  same_bytes "$WORK/vm/data.raw" "$IMAGES/nowin.raw"
}

# --direct: the same, then --check agrees; JSON names the domain.
direct_patch () {
  setup
  run 0 "$N" --direct -c "$URI" -d off -r 2M -s 3M
  out_has "off (qcow2, /dev/sdb1 /Windows/System32/config/SYSTEM): patched, 1 adapter matched"
  extract "$WORK/vm/win.qcow2" "$WORK/SYSTEM"
  [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 2048 ]
  [ "$(hget "$WORK/SYSTEM" "$KEY1" SendBufferSize)" = 3072 ]
  same_bytes "$WORK/vm/data.raw" "$IMAGES/nowin.raw"
  run 0 "$N" --direct --json --check -c "$URI" -d off -r 2M -s 3M
  out_has '"target":"off"'
  out_has '"root":"/dev/sdb1"'
  out_has '"status":"unchanged"'
}

# A running (or paused) domain: refused for writing by both backends before any
# launch (exit 4, one line naming it), nothing written.
running_refused () {
  setup
  for backend in "" --direct; do
    run 4 "$N" $backend -c "$URI" -d on -r 4M -s 4M
    err_has "netvsc-patch: domain on: refused: the domain is running (writing to the disks of a running VM corrupts them); shut it down first (virsh shutdown on); nothing was written"
    err_lines 1
    unchanged
  done
  run 4 "$N" --direct -c "$URI" -d paused -r 4M -s 4M
  err_has "netvsc-patch: domain paused: refused: the domain is paused (writing to the disks of a running VM corrupts them)"
  err_lines 1
  unchanged
}

# ... but read, as libguestfs allows read-only access to a live domain:
# --dry-run says what it would do, with one warning line.
running_dry_run () {
  setup
  run 0 "$N" --direct -n -c "$URI" -d on -r 4M -s 4M
  out_has "on (qcow2, /dev/sdb1 /Windows/System32/config/SYSTEM): would patch"
  err_has "netvsc-patch: warning: domain on is running: its disks are read as they are at this moment"
  err_lines 1
  unchanged
}

# Errors: one line naming the domain (and the file), exit 1, nothing
# changed; before any appliance launch where the appliance is named.
domain_errors () {
  setup
  run 1 "$N" -c "$URI" -d nosuch -r 4M
  err_has "netvsc-patch: domain nosuch: no such domain at $URI"
  err_lines 1
  run 1 "$N" -c "test://$WORK/vm/absent.xml" -d off -r 4M
  err_has "netvsc-patch: domain off: cannot connect to libvirt at test://$WORK/vm/absent.xml: "
  err_lines 1
  run 1 "$N" -c "$URI" -d nodisks -r 4M
  err_has "netvsc-patch: domain nodisks: the domain has no disks"
  err_lines 1
  run 1 "$N" -c "$URI" -d missing -r 4M
  err_has "netvsc-patch: domain missing: $WORK/vm/gone.qcow2: cannot open: No such file or directory"
  err_lines 1
  run 1 "$N" -c "$URI" -d network -r 4M
  err_has "netvsc-patch: domain network: disk vda is a 'network' disk: only local files and block devices can be opened"
  err_lines 1
  # the format the XML gives is checked against the file's own
  run 2 "$N" -c "$URI" -d wrongformat -r 4M
  err_has "netvsc-patch: domain wrongformat: $WORK/vm/win.qcow2: "
  err_has "which is qcow2"
  err_lines 1
  unchanged
}

# The files a domain's XML names are its owner's choice (anywhere); what
# those images name inside them must be beside them, as for an image on
# the command line: a backing file in another directory is refused
# before qemu opens anything (strace: never opened), --allow-external
# allows it.
external_layer () {
  setup
  strace -f -e trace=open,openat -o "$WORK/trace" \
    "$N" --direct -c "$URI" -d external -r 4M >"$WORK/out" 2>"$WORK/err" && return 1
  grep -qF "domain external: $WORK/vm/overlay.qcow2: " "$WORK/err"
  grep -qF "base.qcow2" "$WORK/err"
  [ "$(wc -l <"$WORK/err")" -eq 1 ]
  if grep -F "other/base.qcow2" "$WORK/trace" | grep -v ENOENT | grep -q .; then
    echo "the backing file was opened:"; grep -F base.qcow2 "$WORK/trace"; return 1
  fi
  unchanged
  run 0 "$N" --direct -n -c "$URI" -d external --allow-external "$WORK/vm/other/base.qcow2" -r 4M
  out_has "external (qcow2, /dev/sdb1 /Windows/System32/config/SYSTEM): would patch"
  unchanged
}

# Windows searched across every disk: none on the only disk; --root
# names a domain's disk as the guest would (/dev/sdb1 is the second).
search_and_root () {
  setup
  run 1 "$N" --direct -c "$URI" -d datadisk -r 4M
  err_has "netvsc-patch: domain datadisk: no Windows system volume on any of its 1 disk: $WORK/vm/data.raw: no Windows system volume"
  err_lines 1
  run 0 "$N" --direct -n --root /dev/sdb1 -c "$URI" -d off -r 4M
  out_has "off (qcow2, /dev/sdb1 /Windows/System32/config/SYSTEM): would patch"
  run 1 "$N" --direct -n --root /dev/sda1 -c "$URI" -d off -r 4M
  err_has "netvsc-patch: domain off: $WORK/vm/data.raw: /dev/sda1 is not a Windows system volume"
  run 1 "$N" --direct -n --root /dev/sdc1 -c "$URI" -d off -r 4M
  err_has "netvsc-patch: domain off: --root /dev/sdc1: the domain's 2 disks are /dev/sda to /dev/sdb"
  unchanged
}

# Several domains and an image in one run: each its own result, the
# exit status the highest (4: the running one).
several () {
  setup
  cp "$IMAGES/win.raw" "$WORK/vm/plain.raw"
  run 4 "$N" --direct -c "$URI" -d off -d on "$WORK/vm/plain.raw" -r 4M
  out_has "$WORK/vm/plain.raw (raw, /dev/sda1 /Windows/System32/config/SYSTEM): patched"
  out_has "off (qcow2, /dev/sdb1 /Windows/System32/config/SYSTEM): patched"
  err_has "netvsc-patch: domain on: refused: the domain is running"
  same_bytes "$WORK/vm/data.raw" "$IMAGES/nowin.raw"
}

usage_errors () {
  run 2 "$N" -c test:///default -r 4M "$WORK/x.raw"
  err_has "-c/--connect goes with -d/--domain"
  run 2 "$N" --hive "$WORK/x" -d off -r 4M
  err_has "--hive and -d/--domain exclude each other"
  run 2 "$N" --format raw -d off -r 4M
  err_has "--format is for images: a domain's disk formats are in its XML"
}

check "test driver run states (virsh)" runstates
check "shut-off domain, data disk first (appliance)" appliance_patch
check "shut-off domain (--direct), --check, --json" direct_patch
check "running domain refused for writing" running_refused
check "running domain, --dry-run" running_dry_run
check "unknown domain, no connection, no disks, missing disk, network disk, format" domain_errors
check "a disk's backing file outside its directory" external_layer
check "Windows across disks, --root" search_and_root
check "several domains and an image in one run" several
check "usage errors" usage_errors
finish
