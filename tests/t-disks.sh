#!/bin/bash
# Disks that used to fail with a misleading message: 4K-sector disks
# (GPT header at byte 4096) and BitLocker volumes, with both backends.
# Two appliance launches (about 12 s each under TCG): one batch holding
# a 4K disk and a BitLocker disk, one with a key that does not open it.
# Results are read back without the tool: tests/extract-hive.sh (with
# SECTOR_SIZE=4096: fdisk -b 4096 + ntfscat), hivexget, sha256.
. "$(dirname "$0")/lib.sh"
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"

IMAGES=$FIXTURES/images
KEY1="$CLASS\\0001"

img_copy () { cp --sparse=always "$IMAGES/$1" "$WORK/$1"; echo "$WORK/$1"; }
extract () { sh "$TOP/tests/extract-hive.sh" "$@" 2>/dev/null; }
extract4k () { SECTOR_SIZE=4096 sh "$TOP/tests/extract-hive.sh" "$@" 2>/dev/null; }

BL_DIRECT="is BitLocker-encrypted and --direct cannot decrypt it: run without --direct and give its recovery key with --key /dev/sda1:file:FILE or --keys-from-stdin; nothing was written"

# --direct on a 4K disk: found without --blocksize; --blocksize 512 reads
# it as a 512-byte disk (no partition: the kernel's view), writes nothing.
direct_4k () {
  img=$(img_copy win4k.qcow2); cp "$img" "$WORK/orig"
  run 1 "$N" --direct --blocksize 512 -r 4M "$img"
  err_has "$img: no filesystems found"
  same_bytes "$img" "$WORK/orig"
  run 0 "$N" --direct -r 4M "$img"
  out_has "(qcow2, /dev/sda1 /Windows/System32/config/SYSTEM): patched"
  extract4k "$img" "$WORK/SYSTEM"
  [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 4096 ]
  # a 512-byte reader does not find it: the test is not blind
  if sh "$TOP/tests/extract-hive.sh" "$img" "$WORK/S512" 2>/dev/null; then
    echo "extract-hive.sh found the hive with 512-byte sectors"; return 1
  fi
  run 0 "$N" --direct --blocksize 4096 --check -r 4M "$img"
  # an MBR disk read as a 4K one: its partition lies elsewhere
  img=$(img_copy win.raw); cp "$img" "$WORK/orig"
  run 1 "$N" --direct --blocksize 4096 -r 4M "$img"
  err_has "$img: no filesystems found"
  same_bytes "$img" "$WORK/orig"
}

# --direct on a BitLocker volume: one line, exit 6, bytes unchanged; in a
# batch, the other image is patched and the exit status is the highest.
direct_bitlocker () {
  bl=$(img_copy bitlocker.raw); cp "$bl" "$WORK/orig"
  run 6 "$N" --direct -r 4M "$bl"
  err_has "$bl: /dev/sda1 $BL_DIRECT"
  err_lines 1
  same_bytes "$bl" "$WORK/orig"
  win=$(img_copy win.raw)
  run 6 "$N" --direct --json -r 4M "$win" "$bl"
  python3 - "$WORK/out" "$bl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {r["target"]: r for r in rows}
assert by[sys.argv[2]]["exit_code"] == 6 and by[sys.argv[2]]["status"] == "error", by
assert "BitLocker-encrypted" in by[sys.argv[2]]["error"], by
assert [r["status"] for r in rows if r["target"] != sys.argv[2]] == ["patched"], rows
PY
  same_bytes "$bl" "$WORK/orig"
  extract "$win" "$WORK/SYSTEM"
  [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 4096 ]
}
# Usage errors: nothing opened, a key never echoed.
key_usage () {
  bl=$(img_copy bitlocker.raw); cp "$bl" "$WORK/orig"
  run 2 "$N" --direct --key /dev/sda1:key:S3cretKey -r 4M "$bl"
  err_has "--direct cannot decrypt BitLocker volumes"
  run 2 "$N" --key /dev/sda1:pass:S3cretKey -r 4M "$bl"
  err_has "--key /dev/sda1:pass: expected DEVICE:key:KEY or DEVICE:file:FILE"
  if grep -q S3cretKey "$WORK/err" "$WORK/out"; then echo "a key was printed"; return 1; fi
  run 2 "$N" --key /dev/sda1:file:"$WORK/none" -r 4M "$bl"
  err_has "--key /dev/sda1:file:$WORK/none: No such file or directory"
  run 2 "$N" --keys-from-stdin -r 4M "$bl" </dev/null
  err_has "--keys-from-stdin: no key on standard input"
  echo "$bl" | run 2 "$N" --keys-from-stdin --from - -r 4M
  err_has "--keys-from-stdin and --from - both read standard input"
  run 2 "$N" --blocksize 1024 -r 4M "$bl"
  err_has "--blocksize '1024': expected 512 or 4096"
  run 2 "$N" --hive "$FIXTURES/hives/ws2019.hive" --blocksize 4096 -n -r 4M
  same_bytes "$bl" "$WORK/orig"
}

# One appliance (-j 1: one batch) for a 4K disk (detected: the drive is
# given 4096-byte sectors) and a BitLocker disk (blkid names it; no key
# given): the first patched, read back with 4K sectors; the second one
# line, exit 6, bytes unchanged; the run's status 6.
appliance_4k_and_bitlocker () {
  img=$(img_copy win4k.qcow2)
  bl=$(img_copy bitlocker.raw); cp "$bl" "$WORK/orig"
  run 6 "$N" -v -j 1 -r 4M "$img" "$bl"
  err_has "$img: 4096-byte sectors (its GPT is at 4096)"
  err_has "opening 2 images in one appliance"
  out_has "$(basename "$img") (qcow2, /dev/sda1 /Windows/System32/config/SYSTEM): patched" ||
    out_has "$img (qcow2, /dev/sda1 /Windows/System32/config/SYSTEM): patched"
  err_has "$bl: /dev/sda1 is BitLocker-encrypted (the Windows volume?): give its recovery key or password with --key /dev/sda1:file:FILE or --keys-from-stdin; nothing was written"
  same_bytes "$bl" "$WORK/orig"
  extract4k "$img" "$WORK/SYSTEM"
  [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 4096 ]
}

# A key that does not open the volume (the crafted volume opens with no
# key: cryptsetup refuses its metadata): its reason, exit 6, bytes
# unchanged, and the key in no output, even with -vv (libguestfs's
# trace and the appliance's debug output).
appliance_wrong_key () {
  bl=$(img_copy bitlocker.raw); cp "$bl" "$WORK/orig"
  echo 'Wr0ngKey-XYZZY-123' >"$WORK/key"
  printf 'Wr0ngKey-XYZZY-123\n' | run 6 "$N" -vv -r 4M --keys-from-stdin "$bl"
  err_has "$bl: /dev/sda1 is BitLocker-encrypted and the key given did not open it ("
  err_has "/dev/sda1 is not a valid BITLK device"
  if grep -q XYZZY "$WORK/err" "$WORK/out"; then echo "the key was printed"; return 1; fi
  same_bytes "$bl" "$WORK/orig"
}

check "--direct: 4K-sector GPT found, patched, read back with 4K sectors; --blocksize honoured" direct_4k
check "--direct: BitLocker volume named, exit 6, untouched (alone and in a batch)" direct_bitlocker
check "--key/--keys-from-stdin/--blocksize usage errors, no key printed" key_usage
check "appliance: 4K disk (detected) and BitLocker disk in one launch" appliance_4k_and_bitlocker
check "appliance: a key that does not open the volume: said, exit 6, never printed" appliance_wrong_key
finish
