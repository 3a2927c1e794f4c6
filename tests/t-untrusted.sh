#!/bin/bash
# Images from other people (issue 11): whatever other file an image names
# (VMDK extents and parent, qcow2 backing and external data file, json:
# and protocol names) must be beside it, or the image is refused before
# qemu opens anything.  Each attack is run with both backends under
# strace: exit 1, a message naming the file, the canary (a host file the
# image names) and the image byte-identical, and the canary never
# opened.  Legit multi-file images still patch (--direct, and one
# appliance run), read back with tests/extract-hive.sh.
. "$(dirname "$0")/lib.sh"
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"

IMAGES=$FIXTURES/images
KEY1="$CLASS\\0001"
OUT=$WORK/outside
CANARY=$OUT/canary

extract () { sh "$TOP/tests/extract-hive.sh" "$@" 2>/dev/null; }

# fresh DIR for a case, and a canary outside it with random bytes
fresh () {
  rm -rf "$WORK/d" "$OUT"; mkdir -p "$WORK/d" "$OUT"
  head -c 65536 /dev/urandom >"$CANARY"
  D=$WORK/d
}

# A monolithicFlat VMDK: D/NAME.vmdk, its NAME-flat.vmdk holding win.raw.
flat_vmdk () {
  qemu-img create -q -f vmdk -o subformat=monolithicFlat "$D/$1.vmdk" 64M
  cp --sparse=always "$IMAGES/win.raw" "$D/$1-flat.vmdk"
}

# refused IMAGE FILE_NAMED [PHRASE]: with both backends, under strace:
# exit 1, one line naming FILE_NAMED, image and canary unchanged, the
# canary never opened by any process.
refused () {
  img=$1 named=$2 phrase=${3:-}
  local before_img before_can
  before_img=$(sum "$img"); before_can=$(sum "$CANARY")
  for backend in --direct ""; do
    run 1 strace -f -qq -e trace=open,openat,openat2,execve -o "$WORK/strace.log" \
      "$N" $backend -r 4M -s 4M "$img"
    err_has "$img: "; err_has "\"$named\""
    [ -z "$phrase" ] || err_has "$phrase"
    err_lines 1
    # never opened, by us or anything we started (read or write)
    ! grep -F "$CANARY" "$WORK/strace.log" || { echo "canary opened ($backend)"; return 1; }
    # refused before any qemu (qemu-img, qemu-nbd, the appliance) ran
    ! grep 'execve(.*qemu' "$WORK/strace.log" || { echo "qemu ran ($backend)"; return 1; }
    [ "$(sum "$img")" = "$before_img" ] || { echo "image changed"; return 1; }
    [ "$(sum "$CANARY")" = "$before_can" ] || { echo "canary changed"; return 1; }
  done
}

vmdk_extent_outside () {
  fresh; flat_vmdk x
  # the attack from the issue: a host file between two extents of a real disk
  sed "s|^RW 131072 FLAT \"x-flat.vmdk\" 0|RW 100000 FLAT \"x-flat.vmdk\" 0\\
RW 8 FLAT \"$CANARY\" 0\\
RW 30984 FLAT \"x-flat.vmdk\" 100008|" "$D/x.vmdk" >"$D/evil.vmdk"
  grep -q "$CANARY" "$D/evil.vmdk"
  refused "$D/evil.vmdk" "$CANARY" "is outside the image's directory"
  # relative, through ..
  sed "s|\"x-flat.vmdk\"|\"../outside/canary\"|" "$D/x.vmdk" >"$D/dots.vmdk"
  refused "$D/dots.vmdk" "../outside/canary" "outside"
}

vmdk_extent_devices () {
  fresh; flat_vmdk x
  sed 's|"x-flat.vmdk"|"/dev/null"|' "$D/x.vmdk" >"$D/null.vmdk"
  refused "$D/null.vmdk" /dev/null
  mkfifo "$D/fifo"
  sed 's|"x-flat.vmdk"|"fifo"|' "$D/x.vmdk" >"$D/fifo.vmdk"
  refused "$D/fifo.vmdk" fifo "not a regular file"
  ln -s /dev/zero "$D/zero-link"
  sed 's|"x-flat.vmdk"|"zero-link"|' "$D/x.vmdk" >"$D/link.vmdk"
  refused "$D/link.vmdk" zero-link "symlink leading out"
  sed 's|"x-flat.vmdk"|"nbd:localhost:10809"|' "$D/x.vmdk" >"$D/nbd.vmdk"
  refused "$D/nbd.vmdk" nbd:localhost:10809 "protocol"
  sed 's|"x-flat.vmdk"|"gone-flat.vmdk"|' "$D/x.vmdk" >"$D/gone.vmdk"
  refused "$D/gone.vmdk" gone-flat.vmdk "is missing"
}

vmdk_parent_outside () {
  fresh; flat_vmdk x
  cp "$D/x.vmdk" "$D/delta.vmdk"
  printf 'parentFileNameHint="%s"\n' "$CANARY" >>"$D/delta.vmdk"
  refused "$D/delta.vmdk" "$CANARY" "VMDK parent"
}

qcow2_data_file_outside () {
  fresh
  qemu-img create -q -f qcow2 -o data_file="$CANARY",data_file_raw=on "$D/df.qcow2" 64M
  head -c 65536 /dev/urandom >"$CANARY"   # create made it: give it content
  refused "$D/df.qcow2" "$CANARY" "external data file"
}

qcow2_json_backing () {
  fresh
  cp "$IMAGES/win.qcow2" "$D/base.qcow2"
  qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$D/ov.qcow2"
  qemu-img rebase -q -u -F raw \
    -b "json:{\"driver\":\"raw\",\"file\":{\"filename\":\"$CANARY\"}}" "$D/ov.qcow2"
  refused "$D/ov.qcow2" "json:{\"driver\":\"raw\",\"file\":{\"filename\":\"$CANARY\"}}" \
    "json: option string"
}

qcow2_backing_escapes () {
  fresh
  # a symlink beside the image leading out of the directory
  ln -s "$CANARY" "$D/link.raw"
  qemu-img create -q -f qcow2 -b link.raw -F raw -u "$D/sym.qcow2" 64M
  refused "$D/sym.qcow2" link.raw "symlink leading out"
  # a backing file in a subdirectory (the canary this time)
  mkdir "$D/sub"; mv "$CANARY" "$D/sub/base.raw"; CANARY=$D/sub/base.raw
  qemu-img create -q -f qcow2 -b sub/base.raw -F raw -u "$D/subdir.qcow2" 64M
  refused "$D/subdir.qcow2" sub/base.raw "another directory"
  CANARY=$OUT/canary
}

qcow2_backing_loop () {
  fresh
  qemu-img create -q -f qcow2 -u -b loop.qcow2 -F qcow2 "$D/loop.qcow2" 64M
  refused "$D/loop.qcow2" loop.qcow2 "a loop"
  # two files naming each other
  qemu-img create -q -f qcow2 -u -b b.qcow2 -F qcow2 "$D/a.qcow2" 64M
  qemu-img create -q -f qcow2 -u -b a.qcow2 -F qcow2 "$D/b.qcow2" 64M
  refused "$D/a.qcow2" a.qcow2 "a loop"
}

# The qcow2 header's backing format extension (0xE2792ACA) made an
# unknown one: the chain no longer says what format its backing file is.
drop_backing_format () {
  local hl
  hl=$(od -An -tu1 -j100 -N4 "$1" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')
  [ "$(od -An -tx1 -j"$hl" -N4 "$1" | tr -d ' ')" = e2792aca ]
  printf '\000\000\000\001' | dd of="$1" bs=1 seek="$hl" conv=notrunc status=none
}

unrecorded_backing_format () {
  fresh
  cp "$IMAGES/win.qcow2" "$D/base.qcow2"
  qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$D/ov.qcow2"
  drop_backing_format "$D/ov.qcow2"
  cp "$D/ov.qcow2" "$WORK/orig"; cp "$D/base.qcow2" "$WORK/orig-base"
  # the appliance would let qemu probe it: refused, saying how to record it
  run 1 "$N" -r 4M -s 4M "$D/ov.qcow2"
  err_has "$D/ov.qcow2: refused: the image does not record its backing file's format"
  err_has "qemu-img rebase -u -F qcow2"
  same_bytes "$D/ov.qcow2" "$WORK/orig"
  same_bytes "$D/base.qcow2" "$WORK/orig-base"
  # --direct gives qemu-nbd every layer's format itself
  run 0 "$N" --direct -r 4M -s 4M "$D/ov.qcow2"
  same_bytes "$D/base.qcow2" "$WORK/orig-base"
  FORMAT=qcow2 extract "$D/ov.qcow2" "$WORK/sys"
  [ "$(hget "$WORK/sys" "$KEY1" ReceiveBufferSize)" = 4096 ]
}

# QED (issue 16) names a backing file as qcow2 does: outside the image's
# directory it is refused and never opened; beside it, it patches; its
# format, which a QED records only as raw, must not be left to qemu's
# probe (the appliance refuses; --direct names every layer's format).
qed_backing () {
  fresh
  qemu-img create -q -f qed -b "$CANARY" -F raw -u "$D/abs.qed" 64M
  refused "$D/abs.qed" "$CANARY" "is outside the image's directory"
  qemu-img create -q -f qed -b ../outside/canary -F raw -u "$D/dots.qed" 64M
  refused "$D/dots.qed" ../outside/canary "outside"
  ln -s "$CANARY" "$D/link.raw"
  qemu-img create -q -f qed -b link.raw -F raw -u "$D/sym.qed" 64M
  refused "$D/sym.qed" link.raw "symlink leading out"
  # beside it, raw (recorded): --direct, through qemu-nbd's explicit chain
  cp --sparse=always "$IMAGES/win.raw" "$D/base.raw"; cp "$D/base.raw" "$WORK/orig-base"
  qemu-img create -q -f qed -b base.raw -F raw "$D/ov.qed"
  run 0 strace -f -qq -e trace=execve -s 4096 -o "$WORK/strace.log" \
    "$N" --direct -r 4M -s 4M "$D/ov.qed"
  grep -F 'qemu-nbd' "$WORK/strace.log" |
    grep -F '{\"driver\":\"qed\",\"file\":{\"driver\":\"file\"' |
    grep -F '\"backing\":{\"driver\":\"raw\"' >/dev/null
  same_bytes "$D/base.raw" "$WORK/orig-base"
  FORMAT=qed extract "$D/ov.qed" "$WORK/sys"
  [ "$(hget "$WORK/sys" "$KEY1" ReceiveBufferSize)" = 4096 ]
  # a qcow2 backing: the QED cannot record it; the appliance refuses
  # (before any qemu runs), --direct patches
  cp "$IMAGES/win.qcow2" "$D/base.qcow2"; cp "$D/base.qcow2" "$WORK/orig-base"
  qemu-img create -q -f qed -b base.qcow2 -F qcow2 "$D/q.qed"; cp "$D/q.qed" "$WORK/orig"
  run 1 strace -f -qq -e trace=execve -o "$WORK/strace.log" "$N" -r 4M -s 4M "$D/q.qed"
  err_has "$D/q.qed: refused: the image does not record its backing file's format (a QED can record raw only), which qemu would then guess; use --direct, which gives qemu every layer's format"
  err_lines 1
  ! grep 'execve(.*qemu' "$WORK/strace.log" || { echo "qemu ran"; return 1; }
  same_bytes "$D/q.qed" "$WORK/orig"
  run 0 "$N" --direct -r 2M -s 2M "$D/q.qed"
  same_bytes "$D/base.qcow2" "$WORK/orig-base"
  FORMAT=qed extract "$D/q.qed" "$WORK/sys"
  [ "$(hget "$WORK/sys" "$KEY1" ReceiveBufferSize)" = 2048 ]
}

# A differencing VDI names its parent by UUID only: nothing to check,
# and qemu cannot follow it; refused by name, before any qemu runs.
vdi_differencing () {
  fresh
  qemu-img convert -f raw -O vdi "$IMAGES/win.raw" "$D/diff.vdi"
  # image type 4 (differencing) and a parent UUID, as VirtualBox writes
  printf '\004\000\000\000' | dd of="$D/diff.vdi" bs=1 seek=$((0x4c)) conv=notrunc status=none
  printf '\021\042\063\104\125\146\167\210\231\252\273\314\335\356\377\001' |
    dd of="$D/diff.vdi" bs=1 seek=$((0x1b8)) conv=notrunc status=none
  cp "$D/diff.vdi" "$WORK/orig"
  for backend in --direct ""; do
    run 1 strace -f -qq -e trace=execve -o "$WORK/strace.log" "$N" $backend -r 4M "$D/diff.vdi"
    err_has "netvsc-patch: $D/diff.vdi: a differencing VDI (parent UUID 44332211-6655-8877-99aa-bbccddeeff01): a VDI names its parent by UUID only, which qemu cannot follow, so it cannot be patched safely; make it standalone first (e.g. VBoxManage clonemedium) and patch the result"
    err_lines 1
    ! grep 'execve(.*qemu' "$WORK/strace.log" || { echo "qemu ran ($backend)"; return 1; }
    same_bytes "$D/diff.vdi" "$WORK/orig"
  done
  # qemu agrees it cannot open it alone
  ! qemu-img info -f vdi "$D/diff.vdi" >/dev/null 2>&1
}

legit_flat_vmdk () {
  fresh; flat_vmdk win
  cp "$D/win.vmdk" "$WORK/orig-desc"
  run 0 "$N" --direct -r 4M -s 4M "$D/win.vmdk"
  err_lines 0
  # the data went to the -flat extent beside it
  FORMAT=raw extract "$D/win-flat.vmdk" "$WORK/sys"
  [ "$(hget "$WORK/sys" "$KEY1" ReceiveBufferSize)" = 4096 ]
  [ "$(hget "$WORK/sys" "$KEY1" SendBufferSize)" = 4096 ]
  # also through a relative path from elsewhere
  (cd "$WORK" && run 0 "$N" --direct --check -r 4M -s 4M d/win.vmdk)
}

legit_qcow2_overlay () {
  fresh
  cp "$IMAGES/win.qcow2" "$D/base.qcow2"; cp "$D/base.qcow2" "$WORK/orig-base"
  qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$D/ov.qcow2"
  run 0 strace -f -qq -e trace=execve -s 4096 -o "$WORK/strace.log" \
    "$N" --direct -r 4M -s 4M "$D/ov.qcow2"
  # qemu-nbd was given the checked chain, formats included
  grep -F 'qemu-nbd' "$WORK/strace.log" | grep -F '\"backing\":{\"driver\":\"qcow2\"' >/dev/null
  same_bytes "$D/base.qcow2" "$WORK/orig-base"
  FORMAT=qcow2 extract "$D/ov.qcow2" "$WORK/sys"
  [ "$(hget "$WORK/sys" "$KEY1" ReceiveBufferSize)" = 4096 ]
  # the appliance (one launch): the same overlay, other values
  run 0 "$N" -r 2M -s 2M "$D/ov.qcow2"
  same_bytes "$D/base.qcow2" "$WORK/orig-base"
  FORMAT=qcow2 extract "$D/ov.qcow2" "$WORK/sys"
  [ "$(hget "$WORK/sys" "$KEY1" ReceiveBufferSize)" = 2048 ]
  [ "$(hget "$WORK/sys" "$KEY1" SendBufferSize)" = 2048 ]
}

allow_external () {
  fresh
  cp "$IMAGES/win.qcow2" "$OUT/base.qcow2"; cp "$OUT/base.qcow2" "$WORK/orig-base"
  qemu-img create -q -f qcow2 -b "$OUT/base.qcow2" -F qcow2 "$D/ov.qcow2"
  run 1 "$N" --direct -r 4M -s 4M "$D/ov.qcow2"
  err_has "\"$OUT/base.qcow2\" is outside the image's directory (--allow-external FILE allows it)"
  # another file allowed does not allow this one
  run 1 "$N" --direct --allow-external "$CANARY" -r 4M -s 4M "$D/ov.qcow2"
  run 0 "$N" --direct --allow-external "$OUT/base.qcow2" -r 4M -s 4M "$D/ov.qcow2"
  same_bytes "$OUT/base.qcow2" "$WORK/orig-base"
  FORMAT=qcow2 extract "$D/ov.qcow2" "$WORK/sys"
  [ "$(hget "$WORK/sys" "$KEY1" ReceiveBufferSize)" = 4096 ]
  run 2 "$N" --direct --allow-external "$OUT/nothing" -r 4M "$D/ov.qcow2"
  err_has "--allow-external $OUT/nothing"
}

# A SYSTEM, or a log of a dirty one, larger than a registry file can be
# (2 GB: ntfstruncate makes it 3 GB, sparse, in a 63 MB volume): refused
# before it is copied out of the image, which would fill the host's
# TMPDIR; both backends (one appliance launch), image byte-identical.
huge_registry_file () {
  local part=$WORK/huge.part ino
  fresh
  cp --sparse=always "$IMAGES/win.raw" "$D/big.raw"
  dd if="$D/big.raw" of="$part" bs=512 skip=2048 count=129024 status=none
  ino=$(ntfsls -i -p /Windows/System32/config "$part" | awk '$2 == "SYSTEM" {print $1}')
  ntfstruncate "$part" "$ino" 0x80 "" 3221225472 >/dev/null
  dd if="$part" of="$D/big.raw" bs=512 seek=2048 conv=notrunc status=none
  cp --sparse=always "$D/big.raw" "$WORK/orig-big"
  for backend in --direct ""; do
    run 1 "$N" $backend -r 2M "$D/big.raw"
    err_has "$D/big.raw: /Windows/System32/config/SYSTEM is 3221225472 bytes, more than a registry file can be (2 GB): not copied out"
    err_lines 1
    same_bytes "$D/big.raw" "$WORK/orig-big"
    # nothing copied out (the appliance's own cache aside)
    [ -z "$(ls -A "$TMPDIR" | grep -v '^\.guestfs-')" ] || { ls -la "$TMPDIR"; return 1; }
  done
  # a dirty SYSTEM whose SYSTEM.LOG1 is that large
  cp --sparse=always "$IMAGES/win.raw" "$D/log.raw"
  dd if="$D/log.raw" of="$part" bs=512 skip=2048 count=129024 status=none
  ntfscat "$part" /Windows/System32/config/SYSTEM >"$WORK/dirty.hive"
  printf '\x01\x00\x00\x00' | dd of="$WORK/dirty.hive" bs=1 seek=4 conv=notrunc status=none
  ntfscp -f "$part" "$WORK/dirty.hive" /Windows/System32/config/SYSTEM >/dev/null
  ino=$(ntfsls -i -p /Windows/System32/config "$part" | awk '$2 == "SYSTEM.LOG1" {print $1}')
  ntfstruncate "$part" "$ino" 0x80 "" 3221225472 >/dev/null
  dd if="$part" of="$D/log.raw" bs=512 seek=2048 conv=notrunc status=none
  cp --sparse=always "$D/log.raw" "$WORK/orig-log"
  run 1 "$N" --direct -r 2M "$D/log.raw"
  err_has "/Windows/System32/config/SYSTEM.LOG1 is 3221225472 bytes, more than a registry file can be (2 GB): not copied out"
  same_bytes "$D/log.raw" "$WORK/orig-log"
  [ -z "$(ls -A "$TMPDIR" | grep -v '^\.guestfs-')" ] || { ls -la "$TMPDIR"; return 1; }
  rm -f "$part"
}

check "VMDK extent naming a host file (absolute, ..): refused, never opened" vmdk_extent_outside
check "VMDK extent /dev/null, FIFO, symlink to a device, nbd:, missing" vmdk_extent_devices
check "VMDK parentFileNameHint outside: refused" vmdk_parent_outside
check "qcow2 external data file outside: refused" qcow2_data_file_outside
check "qcow2 json: backing name: refused" qcow2_json_backing
check "qcow2 backing via symlink out, in a subdirectory: refused" qcow2_backing_escapes
check "qcow2 backing chain that loops: refused" qcow2_backing_loop
check "qcow2 backing format not recorded: appliance refuses, --direct patches" unrecorded_backing_format
check "QED backing file: outside refused and never opened, beside patched, unrecorded format" qed_backing
check "differencing VDI (parent by UUID): refused before qemu" vdi_differencing
check "monolithicFlat VMDK with its extent beside it: patched" legit_flat_vmdk
check "qcow2 overlay with its backing beside it: patched (--direct, appliance)" legit_qcow2_overlay
check "--allow-external FILE allows exactly that file" allow_external
check "SYSTEM, or a dirty one's log, larger than a registry file can be: refused before copied out (both backends)" huge_registry_file
finish
