#!/bin/bash
# Image mode: each case launches the libguestfs appliance (about 12 s
# under TCG), so cases are few and each checks a lot.  Images come from
# tests/make-fixture-images.sh (built once per run) and are copied.
# Results are read back WITHOUT libguestfs: tests/extract-hive.sh
# (qemu-img + sfdisk + ntfscat), then hivexget/hivexregedit/regfexport.
. "$(dirname "$0")/lib.sh"

IMAGES=$FIXTURES/images
HIVES=$FIXTURES/hives
KEY1="$CLASS\\0001"

img_copy () { cp --sparse=always "$IMAGES/$1" "$WORK/$1"; echo "$WORK/$1"; }
extract () { sh "$TOP/tests/extract-hive.sh" "$@" 2>/dev/null; }

# patch_format IMAGE: patch with format detection, check the hive inside.
patch_format () {
  img=$(img_copy "$1")
  run 0 "$N" -r 4M -s 2M "$img"
  out_has "patched, 1 adapter matched"
  out_has "Microsoft Hyper-V Network Adapter"
  out_has "($2, /dev/sda1 /Windows/System32/config/SYSTEM)"
  extract "$img" "$WORK/SYSTEM"
  [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 4096 ]
  [ "$(regf_value "$WORK/SYSTEM" "$KEY1" SendBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 2048" ]
  export_diff "$HIVES/ws2019.hive" "$WORK/SYSTEM" >"$WORK/diff"
  printf '%s\n' '> "ReceiveBufferSize"=dword:00001000' '> "SendBufferSize"=dword:00000800' \
    | diff - "$WORK/diff"
  # the image is still a valid container of its format
  qemu-img check -q -f "$2" "$img" 2>/dev/null || [ "$2" = raw ] || [ "$2" = vpc ]
}

# VDI and QED (made here from win.raw) through the appliance: one launch
# for both, each detected by its magic, patched, read back with qemu-img.
vdi_and_qed () {
  for f in vdi qed; do
    qemu-img convert -f raw -O "$f" "$IMAGES/win.raw" "$WORK/win.$f"
  done
  run 0 "$N" -r 4M -s 2M "$WORK/win.vdi" "$WORK/win.qed"
  for f in vdi qed; do
    out_has "$WORK/win.$f ($f, /dev/sda1 /Windows/System32/config/SYSTEM): patched, 1 adapter matched"
    FORMAT=$f extract "$WORK/win.$f" "$WORK/SYSTEM"
    [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 4096 ]
    [ "$(regf_value "$WORK/SYSTEM" "$KEY1" SendBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 2048" ]
    qemu-img check -q -f "$f" "$WORK/win.$f"
  done
}

raw_dry_run_then_patch_then_unchanged () {
  img=$(img_copy win.raw); cp --sparse=always "$img" "$WORK/orig"
  run 0 "$N" --dry-run -r 2M -s 2M "$img"
  out_has "would patch"
  same_bytes "$img" "$WORK/orig"
  run 0 "$N" -r 2M -s 2M --json "$img"
  python3 - "$WORK/out" <<'PY'
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["mode"] == "image" and o["format"] == "raw" and o["status"] == "patched", o
assert o["root"] == "/dev/sda1" and o["hive"] == "/Windows/System32/config/SYSTEM", o
assert o["writes"] == 2 and o["written"] is True, o
PY
  # the appliance's object follows netvsc-patch(1), JSON OUTPUT, too
  python3 "$TOP/tests/json-schema.py" "$TOP/man/netvsc-patch.1" check "$WORK/out" patched 0
  extract "$img" "$WORK/SYSTEM"
  [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 2048 ]
  # no temporary file left in the guest's config directory
  sfdisk -J "$img" >/dev/null
  cp --sparse=always "$img" "$WORK/patched"
  run 0 "$N" -r 2M -s 2M "$img"
  out_has "unchanged"
  same_bytes "$img" "$WORK/patched"
}

system_reserved_two_nics () {
  img=$(img_copy sysres.raw)
  run 0 "$N" -r 4M -s 4M "$img"
  out_has "/dev/sda2"
  out_has "2 adapters matched"
  extract "$img" "$WORK/SYSTEM" 2
  [ "$(hget "$WORK/SYSTEM" "$CLASS\\0001" ReceiveBufferSize)" = 4096 ]
  [ "$(hget "$WORK/SYSTEM" "$CLASS\\0011" ReceiveBufferSize)" = 4096 ]
  hget_absent "$WORK/SYSTEM" "$CLASS\\0003" ReceiveBufferSize
  # the System Reserved volume is untouched
  extract "$img" "$WORK/p1" 1 && { echo "partition 1 has a SYSTEM hive?"; exit 1; }
  true
}

two_windows () {
  img=$(img_copy twowin.raw); cp --sparse=always "$img" "$WORK/orig"
  run 1 "$N" -r 2M "$img"
  err_has "2 Windows installations (/dev/sda1, /dev/sda2): choose one with --root DEVICE"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
  run 0 "$N" -r 2M --root /dev/sda2 "$img"
  out_has "Microsoft Virtual Machine Bus Network Adapter"
  extract "$img" "$WORK/SYSTEM" 2
  [ "$(hget "$WORK/SYSTEM" "$CLASS\\0007" ReceiveBufferSize)" = 2048 ]
  extract "$img" "$WORK/SYSTEM1" 1
  same_bytes "$WORK/SYSTEM1" "$HIVES/ws2019.hive"
}

# Names on the way to the hive (or its logs) that differ only in case,
# and an NTFS volume ntfs-3g cannot mount ($MFTMirr made to differ from
# $MFT), in one appliance: each refused (exit 1) with the message
# --direct gives for it, word for word; nothing written.
case_variants () {
  case_images
  cp --sparse=always "$IMAGES/win.raw" "$WORK/damaged.raw"
  python3 - "$WORK/damaged.raw" <<'P'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    base = 2048 * 512
    f.seek(base); bs = f.read(512)
    cluster = struct.unpack_from("<H", bs, 0x0b)[0] * bs[0x0d]
    at = base + struct.unpack_from("<Q", bs, 0x38)[0] * cluster + 0x100
    f.seek(at); b = f.read(1); f.seek(at); f.write(bytes([b[0] ^ 0xff]))
P
  cp --sparse=always "$WORK/damaged.raw" "$WORK/damaged.orig"
  imgs=$(printf '%s\n' "$CASE_NAMES" | while read -r i _; do printf '%s ' "$WORK/$i.raw"; done)
  # shellcheck disable=SC2086
  run 1 "$N" -r 2M $imgs "$WORK/damaged.raw"
  err_lines 6
  case_refused
  err_has "$WORK/damaged.raw: the NTFS filesystem on /dev/sda1 (Input/output error) cannot be read: it needs repair (chkdsk in Windows, or ntfsfix)"
  same_bytes "$WORK/damaged.raw" "$WORK/damaged.orig"
  sort "$WORK/err" >"$WORK/err.appliance"
  # shellcheck disable=SC2086
  run 1 "$N" --direct -r 2M $imgs "$WORK/damaged.raw"
  sort "$WORK/err" | diff "$WORK/err.appliance" -
}

batch_worst_exit () {
  # several images in one call: each gets its own result; exit = highest
  a=$(img_copy win.vmdk); b=$(img_copy nowin.raw); c=$(img_copy nopart.raw)
  cp --sparse=always "$b" "$WORK/b.orig"; cp --sparse=always "$c" "$WORK/c.orig"
  run 1 "$N" -r 2M --json "$a" "$b" "$c"
  [ "$(wc -l <"$WORK/out")" -eq 3 ]
  python3 - "$WORK/out" <<'PY'
import json, sys
# reported as batches finish: order by name
objs = sorted((json.loads(l) for l in open(sys.argv[1])), key=lambda o: o["target"])
assert [o["target"].rsplit("/", 1)[1] for o in objs] == ["nopart.raw", "nowin.raw", "win.vmdk"]
assert [o["status"] for o in objs] == ["error", "error", "patched"], objs
assert objs[2]["format"] == "vmdk"
assert "no Windows system volume" in objs[1]["error"], objs[1]
assert "no filesystems found" in objs[0]["error"], objs[0]
PY
  err_has "$b: no Windows system volume"
  err_has "$c: no filesystems found"
  same_bytes "$b" "$WORK/b.orig"
  same_bytes "$c" "$WORK/c.orig"
  extract "$a" "$WORK/SYSTEM"
  [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 2048 ]
}

clones_batch () {
  # identical clones (same NTFS serials, same disk signature) plus broken
  # images, in one invocation and one appliance (-j 1), listed via --from
  for i in 1 2 3; do cp --sparse=always "$IMAGES/win-dyn.vhd" "$WORK/clone$i.vhd"; done
  cp --sparse=always "$IMAGES/nowin.raw" "$WORK/nowin.raw"
  head -c 1536 "$IMAGES/win-dyn.vhd" >"$WORK/broken.vhd"
  cp "$WORK/nowin.raw" "$WORK/nowin.orig"; cp "$WORK/broken.vhd" "$WORK/broken.orig"
  printf '%s\n' "# template library" "$WORK/clone1.vhd" "$WORK/broken.vhd" "" \
    "$WORK/clone2.vhd	vpc" "$WORK/nowin.raw	raw" "$WORK/clone3.vhd" >"$WORK/list"
  run 1 "$N" -j 1 -v --json -r 4M -s 4M --from - <"$WORK/list"
  err_has "5 images, 1 batch of up to 5, 1 worker"
  err_has "opening 4 images in one appliance"
  python3 - "$WORK/out" "$WORK" <<'PY'
import json, sys
objs = {o["target"].rsplit("/", 1)[1]: o for o in map(json.loads, open(sys.argv[1]))}
assert len(objs) == 5, objs.keys()
for c in ("clone1.vhd", "clone2.vhd", "clone3.vhd"):
    assert objs[c]["status"] == "patched" and objs[c]["root"] == "/dev/sda1", objs[c]
    assert objs[c]["format"] == "vpc"
assert objs["broken.vhd"]["status"] == "error" and "truncated" in objs["broken.vhd"]["error"]
assert objs["nowin.raw"]["status"] == "error"
assert "no Windows system volume" in objs["nowin.raw"]["error"]
assert "/dev/sda1 (ntfs)" in objs["nowin.raw"]["error"]
PY
  for i in 1 2 3; do
    sh "$TOP/tests/extract-hive.sh" "$WORK/clone$i.vhd" "$WORK/S$i" 2>/dev/null
    [ "$(hget "$WORK/S$i" "$KEY1" ReceiveBufferSize)" = 4096 ]
  done
  same_bytes "$WORK/nowin.raw" "$WORK/nowin.orig"
  same_bytes "$WORK/broken.vhd" "$WORK/broken.orig"
}

dirty_in_image () {
  img=$(img_copy dirty.qcow2); cp "$img" "$WORK/orig"
  # its logs are empty: nothing to recover from, so refused either way
  # named twice: worked on once (two appliances would fight over qemu's lock)
  run 4 "$N" -r 2M "$img" "$img"
  err_has "$img: named again in this run: worked on once"
  [ "$(grep -c 'refused: the hive is dirty' "$WORK/err")" = 1 ]
  err_has "refused: the hive is dirty (sequence numbers differ"
  err_has "cannot be recovered from its transaction logs"
  err_has "$img:/dev/sda1:/Windows/System32/config/SYSTEM"
  same_bytes "$img" "$WORK/orig"
  run 4 "$N" -r 2M --no-replay "$img"
  err_has "SYSTEM.LOG1 and SYSTEM.LOG2 exist beside it"
  same_bytes "$img" "$WORK/orig"
}

hibernated () {
  img=$(img_copy hiber.qcow2); cp "$img" "$WORK/orig"
  run 4 "$N" -r 2M "$img"
  err_has "refused: Windows on /dev/sda1 is hibernated or was stopped with Fast Startup"
  err_has "shutdown /s /t 0"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
}

garbage_hive_in_image () {
  img=$(img_copy badhive.qcow2); cp "$img" "$WORK/orig"
  run 1 "$N" -r 2M "$img"
  err_has "$img:/dev/sda1:/Windows/System32/config/SYSTEM: not a registry hive"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
}

interrupted () {
  img=$(img_copy win.qcow2); cp "$img" "$WORK/orig"
  before=$(ls "${TMPDIR:-/tmp}" | grep -c '^netvsc-patch\.' || true)
  "$N" -r 2M "$img" >"$WORK/out" 2>"$WORK/err" &
  pid=$!
  sleep 3
  kill -INT "$pid" || { echo "the run ended before the signal:"; cat "$WORK/err"; exit 1; }
  rc=0; wait "$pid" || rc=$?
  [ "$rc" -eq 1 ] || { echo "exit $rc"; cat "$WORK/err"; exit 1; }
  err_has "interrupted by SIGINT; nothing was written, the original is untouched"
  same_bytes "$img" "$WORK/orig"
  [ "$(ls "${TMPDIR:-/tmp}" | grep -c '^netvsc-patch\.' || true)" -eq "$before" ]
}

missing_parent () {
  qemu-img create -q -f qcow2 -b "$IMAGES/win.qcow2" -F qcow2 "$WORK/overlay.qcow2"
  cp "$IMAGES/win.qcow2" "$WORK/base.qcow2"
  qemu-img rebase -q -u -b "$WORK/base.qcow2" -F qcow2 "$WORK/overlay.qcow2"
  rm "$WORK/base.qcow2"; cp "$WORK/overlay.qcow2" "$WORK/orig"
  run 1 "$N" -r 2M "$WORK/overlay.qcow2"
  err_has "$WORK/overlay.qcow2: cannot open the parent of this differencing image"
  err_lines 1
  same_bytes "$WORK/overlay.qcow2" "$WORK/orig"
}

list_image () {
  img=$(img_copy win.qcow2); cp "$img" "$WORK/orig"
  # -x: libguestfs's API trace and the tool's steps on stderr; -q hides
  # neither the trace nor --list's output (what was asked for)
  run 0 "$N" -x -q --list "$img"
  out_has "ControlSet001  0001   yes"
  out_has "WAN Miniport"
  err_has "libguestfs: trace: add_drive \"$img\" \"readonly:true\" \"format:qcow2\""
  err_has "libguestfs: trace: launch"
  err_has "netvsc-patch: trace: $img: find the Windows volume"
  same_bytes "$img" "$WORK/orig"
}

kvm_fallback () {
  # The tool's own retry: with the variable unset, a host whose KVM is
  # broken gets a warning and a TCG launch; a host with working KVM none.
  img=$(img_copy win-fixed.vhd)
  run 0 env -u LIBGUESTFS_BACKEND_SETTINGS "$N" -r 2M "$img"
  if [ "$(sh "$TOP/tests/accel-env.sh")" = force_tcg ]; then
    err_has "retrying with LIBGUESTFS_BACKEND_SETTINGS=force_tcg"
  fi
  extract "$img" "$WORK/SYSTEM"
  [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 2048 ]
}

# Bad input that is caught before the appliance starts: fast.
bad_images () {
  : >"$WORK/empty.img"; mkdir "$WORK/dir.img"
  head -c 1536 "$IMAGES/win-dyn.vhd" >"$WORK/truncated.vhd"
  head -c 300000 "$IMAGES/win.vhdx" >"$WORK/truncated.vhdx"
  for f in "$WORK/missing.img" "$WORK/dir.img" "$WORK/empty.img" "$WORK/truncated.vhd" \
           "$WORK/truncated.vhdx"; do
    [ -f "$f" ] && cp "$f" "$WORK/before"
    run 1 "$N" -r 2M "$f"
    err_has "netvsc-patch: $f: "
    err_lines 1
    if [ -f "$f" ]; then same_bytes "$f" "$WORK/before"; fi
  done
  img=$(img_copy win.qcow2); cp "$img" "$WORK/orig"
  run 2 "$N" -r 2M --format vhdx "$img"
  err_has "--format vhdx does not match the file, which is qcow2"
  run 2 "$N" -r 2M --format raw "$img"
  same_bytes "$img" "$WORK/orig"
  run 2 "$N" -r 2M --root /dev/sda1 --hive "$img"
}

differencing_vhd () {
  # qemu reads a differencing VHD (disk type 4) without its parent: refuse
  cp --sparse=always "$IMAGES/win-dyn.vhd" "$WORK/diff.vhd"
  python3 - "$WORK/diff.vhd" <<'PY'
import struct, sys
p = sys.argv[1]; d = bytearray(open(p, "rb").read())
for off in (0, len(d) - 512):
    f = d[off:off + 512]
    f[60:64] = struct.pack(">I", 4); f[64:68] = b"\0\0\0\0"
    f[64:68] = struct.pack(">I", ~sum(f) & 0xffffffff)
    d[off:off + 512] = f
h = struct.unpack(">Q", d[16:24])[0]
name = "parent.vhd".encode("utf-16-be")
d[h + 64:h + 64 + len(name)] = name
open(p, "wb").write(d)
PY
  cp "$WORK/diff.vhd" "$WORK/orig"
  run 1 "$N" -r 2M "$WORK/diff.vhd"
  err_has "$WORK/diff.vhd: a differencing VHD (parent: parent.vhd): qemu cannot read VHD parents"
  err_lines 1
  same_bytes "$WORK/diff.vhd" "$WORK/orig"
  run 1 "$N" --direct -r 2M "$WORK/diff.vhd"
  same_bytes "$WORK/diff.vhd" "$WORK/orig"
}

read_only_image () {
  ro=$(mktemp -d /tmp/netvsc-ro.XXXXXX); chmod 755 "$ro"
  cp "$IMAGES/win.qcow2" "$ro/win.qcow2"; chown 65534:65534 "$ro/win.qcow2"
  chmod 444 "$ro/win.qcow2"; cp "$ro/win.qcow2" "$WORK/orig"
  run 1 setpriv --reuid=65534 --regid=65534 --clear-groups "$N" -r 2M "$ro/win.qcow2"
  err_has "$ro/win.qcow2: the image is read-only (Permission denied)"
  err_lines 1
  same_bytes "$ro/win.qcow2" "$WORK/orig"
  rm -rf "$ro"
}

locked_image () {
  # A running VM holds qemu's lock on its disk: refuse with a clear line.
  img=$(img_copy win.qcow2); cp "$img" "$WORK/orig"
  qemu-io -f qcow2 -c 'sleep 20000' "$img" >/dev/null 2>&1 &
  holder=$!
  sleep 1
  run 1 "$N" -r 2M "$img"
  kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null || true
  err_has "the image is in use by another process (is the VM running?)"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
}

check "bad image files: exit 1/2 before launch, bytes unchanged" bad_images
check "locked image (running VM) refused" locked_image
check "differencing image with a missing parent" missing_parent
check "read-only image file (unprivileged user)" read_only_image
check "differencing VHD refused" differencing_vhd
check "dynamic VHD, detected, patched" patch_format win-dyn.vhd vpc
check "VHDX, detected, patched" patch_format win.vhdx vhdx
check "qcow2, detected, patched" patch_format win.qcow2 qcow2
check "VDI and QED, detected, patched (one launch)" vdi_and_qed
check "raw: dry run, patch (JSON), unchanged rerun" raw_dry_run_then_patch_then_unchanged
check "fixed VHD via the tool's own KVM->TCG fallback" kvm_fallback
check "System Reserved + Windows, two netvsc NICs" system_reserved_two_nics
check "two Windows installations: --root" two_windows
check "batch: vmdk + no Windows + no partitions" batch_worst_exit
check "names differing only in case, unmountable NTFS: refused as --direct does" case_variants
check "batch: 3 identical clones + 2 broken images, one appliance, --from -" clones_batch
check "dirty hive inside an image refused" dirty_in_image
check "--list on an image is read-only" list_image
check "hibernated Windows refused (exit 4)" hibernated
check "SYSTEM in the image is not a hive" garbage_hive_in_image
check "SIGINT: clean stop, untouched, no temp files" interrupted
finish
