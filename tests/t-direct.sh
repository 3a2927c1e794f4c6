#!/bin/bash
# Image mode with --direct (qemu-nbd + libntfs-3g in the process, no
# appliance): every format, every bad input and refusal t-image.sh
# checks, partition tables the fixtures do not have (GPT, logical, none),
# interrupted writes and their repair, a differential test against the
# appliance (two launches), and SIGKILL at many moments of the write.
# Results are read back without the tool: tests/extract-hive.sh
# (qemu-img + sfdisk + ntfscat), hivexget/hivexregedit/regfexport,
# ntfsls, ntfsfix -n, ntfssecaudit.
. "$(dirname "$0")/lib.sh"
# The tool stages hives in $TMPDIR: keep this suite's (and what its
# SIGKILLed runs leave) apart from anything else running on the host.
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"

IMAGES=$FIXTURES/images
HIVES=$FIXTURES/hives
KEY1="$CLASS\\0001"
CONFIG=/Windows/System32/config

img_copy () { cp --sparse=always "$IMAGES/$1" "$WORK/$1"; echo "$WORK/$1"; }
extract () { sh "$TOP/tests/extract-hive.sh" "$@" 2>/dev/null; }

# part_of IMAGE OUT: the NTFS partition of a win*.* image (sectors 2048
# to 131071, as tests/make-fixture-images.sh makes it), as a file the
# ntfs-3g tools read.  The format is the file's own (a fixed VHD, which
# qemu probes as raw, by its footer), as extract-hive.sh does.
part_of () {
  local f from=$1
  f=$(qemu-img info -U "$1" | sed -n 's/^file format: //p')
  if [ "$f" = raw ] && [ "$(tail -c 512 "$1" | head -c 8)" = conectix ]; then f=vpc; fi
  if [ "$f" != raw ]; then
    qemu-img convert -U -f "$f" -O raw "$1" "$WORK/part.raw"; from=$WORK/part.raw
  fi
  dd if="$from" of="$2" bs=512 skip=2048 count=129024 status=none
  rm -f "$WORK/part.raw"
}

# names_in PART: the config directory's entries, sorted, on one line.
names_in () { ntfsls -p "$CONFIG" "$1" | grep -v '^\.\.\?$' | LC_ALL=C sort | tr '\n' ' '; }
CLEAN="SOFTWARE SYSTEM SYSTEM.LOG1 SYSTEM.LOG2 "

# The volume is sound: ntfs-3g's checks pass, another file reads back,
# the security index is consistent, and no temporary name is left.
volume_ok () {
  ntfsfix -n "$1" >/dev/null
  ntfscat "$1" "$CONFIG/SOFTWARE" | cmp -s - "$HIVES/software.hive"
  ntfssecaudit -a "$1" 2>&1 | grep -q "No errors were found"
  [ "$(names_in "$1")" = "$CLEAN" ] || { echo "config holds: $(names_in "$1")"; return 1; }
}

free_clusters () { ntfsinfo -m "$1" 2>/dev/null | sed -n 's/.*Free Clusters: *\([0-9]*\).*/\1/p'; }

# job.c stages the hive in ${TMPDIR:-/tmp}/netvsc-patch.XXXXXX; a SIGKILLed
# run cannot remove it.  staged_before / staged_since: list, then count
# and remove the ones that appeared (and fail on anything else of ours).
staged_before () { ls "${TMPDIR:-/tmp}" | grep '^netvsc-patch' | LC_ALL=C sort >"$WORK/tmp.before" || true; }
staged_since () {
  ls "${TMPDIR:-/tmp}" | grep '^netvsc-patch' | LC_ALL=C sort | comm -13 "$WORK/tmp.before" - \
    >"$WORK/tmp.new" || true
  if grep -v '^netvsc-patch\.' "$WORK/tmp.new"; then echo "left in ${TMPDIR:-/tmp}"; return 1; fi
  sed "s|^|${TMPDIR:-/tmp}/|" "$WORK/tmp.new" | xargs -r rm -rf
  wc -l <"$WORK/tmp.new"
}

libnbd_dirs () { ls -d /tmp/libnbd* 2>/dev/null | LC_ALL=C sort; }

# patch_format IMAGE FORMAT: patch with format detection, check the hive
# inside, the container and the volume.
patch_format () {
  img=$(img_copy "$1")
  libnbd_dirs >"$WORK/nbd.before"
  run 0 "$N" --direct -r 4M -s 2M "$img"
  out_has "patched, 1 adapter matched"
  out_has "Microsoft Hyper-V Network Adapter"
  out_has "($2, /dev/sda1 /Windows/System32/config/SYSTEM)"
  [ ! -s "$WORK/err" ] || { cat "$WORK/err"; exit 1; }
  extract "$img" "$WORK/SYSTEM"
  [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 4096 ]
  [ "$(regf_value "$WORK/SYSTEM" "$KEY1" SendBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 2048" ]
  export_diff "$HIVES/ws2019.hive" "$WORK/SYSTEM" >"$WORK/diff"
  printf '%s\n' '> "ReceiveBufferSize"=dword:00001000' '> "SendBufferSize"=dword:00000800' \
    | diff - "$WORK/diff"
  # the image is still a valid container of its format
  qemu-img check -q -f "$2" "$img" 2>/dev/null || [ "$2" = raw ] || [ "$2" = vpc ]
  part_of "$img" "$WORK/p"
  volume_ok "$WORK/p"
  # qemu-nbd is gone (the image is unlocked) and left no socket behind
  qemu-img info -f "$2" "$img" >/dev/null
  libnbd_dirs | diff "$WORK/nbd.before" -
}

raw_dry_run_then_patch_then_unchanged () {
  img=$(img_copy win.raw); cp --sparse=always "$img" "$WORK/orig"
  run 0 "$N" --direct --dry-run -r 2M -s 2M "$img"
  out_has "would patch"
  same_bytes "$img" "$WORK/orig"
  run 5 "$N" --direct --check -r 2M -s 2M "$img"
  same_bytes "$img" "$WORK/orig"
  run 0 "$N" --direct -r 2M -s 2M --json "$img"
  python3 - "$WORK/out" <<'PY'
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["mode"] == "image" and o["format"] == "raw" and o["status"] == "patched", o
assert o["root"] == "/dev/sda1" and o["hive"] == "/Windows/System32/config/SYSTEM", o
assert o["writes"] == 2 and o["written"] is True, o
PY
  extract "$img" "$WORK/SYSTEM"
  [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 2048 ]
  cp --sparse=always "$img" "$WORK/patched"
  run 0 "$N" --direct -r 2M -s 2M "$img"
  out_has "unchanged"
  same_bytes "$img" "$WORK/patched"
  run 0 "$N" --direct --check -r 2M -s 2M "$img"
  same_bytes "$img" "$WORK/patched"
}

list_image () {
  img=$(img_copy win.qcow2); cp "$img" "$WORK/orig"
  run 0 "$N" --direct --list "$img"
  out_has "ControlSet001  0001   yes"
  out_has "WAN Miniport"
  same_bytes "$img" "$WORK/orig"
}

system_reserved_two_nics () {
  img=$(img_copy sysres.raw)
  extract "$img" "$WORK/p1-before" 1 || true
  run 0 "$N" --direct -r 4M -s 4M "$img"
  out_has "/dev/sda2"
  out_has "2 adapters matched"
  extract "$img" "$WORK/SYSTEM" 2
  [ "$(hget "$WORK/SYSTEM" "$CLASS\\0001" ReceiveBufferSize)" = 4096 ]
  [ "$(hget "$WORK/SYSTEM" "$CLASS\\0011" ReceiveBufferSize)" = 4096 ]
  hget_absent "$WORK/SYSTEM" "$CLASS\\0003" ReceiveBufferSize
  # the System Reserved volume is untouched, byte for byte
  dd if="$img" of="$WORK/sr" bs=512 skip=2048 count=65536 status=none
  dd if="$IMAGES/sysres.raw" of="$WORK/sr0" bs=512 skip=2048 count=65536 status=none
  same_bytes "$WORK/sr" "$WORK/sr0"
}

two_windows () {
  img=$(img_copy twowin.raw); cp --sparse=always "$img" "$WORK/orig"
  run 1 "$N" --direct -r 2M "$img"
  err_has "2 Windows installations (/dev/sda1, /dev/sda2): choose one with --root DEVICE"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
  run 1 "$N" --direct -r 2M --root /dev/sda3 "$img"
  err_has "$img: --root /dev/sda3: the image has no such filesystem (filesystems: /dev/sda1 (ntfs), /dev/sda2 (ntfs))"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
  run 0 "$N" --direct -r 2M --root /dev/sda2 "$img"
  out_has "Microsoft Virtual Machine Bus Network Adapter"
  extract "$img" "$WORK/SYSTEM" 2
  [ "$(hget "$WORK/SYSTEM" "$CLASS\\0007" ReceiveBufferSize)" = 2048 ]
  extract "$img" "$WORK/SYSTEM1" 1
  same_bytes "$WORK/SYSTEM1" "$HIVES/ws2019.hive"
}

batch_worst_exit () {
  # several images in one call, two worker threads: each gets its own
  # result; exit = highest
  a=$(img_copy win.vmdk); b=$(img_copy nowin.raw); c=$(img_copy nopart.raw)
  d=$(img_copy win-dyn.vhd)
  cp --sparse=always "$b" "$WORK/b.orig"; cp --sparse=always "$c" "$WORK/c.orig"
  run 1 "$N" --direct -j 2 -r 2M --json "$a" "$b" "$c" "$d"
  [ "$(wc -l <"$WORK/out")" -eq 4 ]
  python3 - "$WORK/out" <<'PY'
import json, sys
objs = {o["target"].rsplit("/", 1)[1]: o for o in map(json.loads, open(sys.argv[1]))}
assert objs["win.vmdk"]["status"] == "patched" and objs["win.vmdk"]["format"] == "vmdk"
assert objs["win-dyn.vhd"]["status"] == "patched"
assert objs["nowin.raw"]["status"] == "error"
assert "no Windows system volume" in objs["nowin.raw"]["error"], objs["nowin.raw"]
assert "/dev/sda1 (ntfs)" in objs["nowin.raw"]["error"]
assert "no filesystems found" in objs["nopart.raw"]["error"], objs["nopart.raw"]
PY
  err_has "$b: no Windows system volume"
  err_has "$c: no filesystems found"
  err_lines 2
  same_bytes "$b" "$WORK/b.orig"
  same_bytes "$c" "$WORK/c.orig"
  for i in "$a" "$d"; do
    extract "$i" "$WORK/SYSTEM"
    [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 2048 ]
  done
}

dirty_in_image () {
  img=$(img_copy dirty.qcow2); cp "$img" "$WORK/orig"
  # its logs are empty: nothing to recover from, so refused either way
  run 4 "$N" --direct -r 2M "$img"
  err_has "refused: the hive is dirty (sequence numbers differ"
  err_has "cannot be recovered from its transaction logs"
  err_has "$img:/dev/sda1:/Windows/System32/config/SYSTEM"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
  run 4 "$N" --direct -r 2M --no-replay "$img"
  err_has "SYSTEM.LOG1 and SYSTEM.LOG2 exist beside it"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
}

# A dirty SYSTEM whose LOG1 holds changes not yet in it (tests/mklog.c),
# LOG2 empty: the change is recovered, patched, and both logs emptied in
# the guest -- LOG1 (data in clusters) by the same run switch as SYSTEM,
# LOG2 (data resident in its MFT record) by rewriting the record.
replay_in_image () {
  cp "$HIVES/ws2019.hive" "$WORK/clean"
  printf 'Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\LoggedOnly]\n"Start"=dword:00000003\n' >"$WORK/step.reg"
  cp "$WORK/clean" "$WORK/step"
  hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' "$WORK/step" "$WORK/step.reg"
  "$MKLOG" -o "$WORK/SYSTEM" -1 "$WORK/SYSTEM.LOG1" --entries 2 "$WORK/clean" "$WORK/step"
  part_of "$IMAGES/win.raw" "$WORK/p"
  ntfscp "$WORK/p" "$WORK/SYSTEM" "$CONFIG/SYSTEM" >/dev/null
  ntfscp "$WORK/p" "$WORK/SYSTEM.LOG1" "$CONFIG/SYSTEM.LOG1" >/dev/null
  img=$(img_copy win.raw)
  dd if="$WORK/p" of="$img" bs=512 seek=2048 conv=notrunc status=none
  cp --sparse=always "$img" "$WORK/orig"
  run 0 "$N" --direct --dry-run -r 4M "$img"
  out_has "the hive was dirty: replayed 2 log entries"
  run 4 "$N" --direct --no-replay -r 4M "$img"
  same_bytes "$img" "$WORK/orig"
  run 0 "$N" --direct -r 4M -s 4M --json "$img"
  python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); r=o["replay"]; assert o["status"]=="patched" and r["entries"]==2 and r["logs_emptied"]==2, o' "$WORK/out"
  part_of "$img" "$WORK/q"
  ntfscat "$WORK/q" "$CONFIG/SYSTEM" >"$WORK/S"
  [ "$(hget "$WORK/S" 'ControlSet001\Services\LoggedOnly' Start)" = 3 ]
  [ "$(hget "$WORK/S" "$KEY1" ReceiveBufferSize)" = 4096 ]
  [ "$(od -An -tu4 -j4 -N4 "$WORK/S")" = "$(od -An -tu4 -j8 -N4 "$WORK/S")" ]
  for l in LOG1 LOG2; do
    [ "$(ntfscat "$WORK/q" "$CONFIG/SYSTEM.$l" | wc -c)" -eq 0 ]
  done
  volume_ok "$WORK/q"
}

# Windows XP / Server 2003: SYSTEM with the single old-format SYSTEM.LOG
# (tests/mklog.c --old) beside the empty LOG1/LOG2 of the fixture: cut
# short it is refused whole with the image unchanged; whole, it is
# replayed, patched, and emptied in the guest.
replay_xp_log_in_image () {
  cp "$HIVES/ws2019.hive" "$WORK/clean"
  printf 'Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\LoggedOnly]\n"Start"=dword:00000003\n' >"$WORK/step.reg"
  cp "$WORK/clean" "$WORK/step"
  hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' "$WORK/step" "$WORK/step.reg"
  "$MKLOG" --old -o "$WORK/SYSTEM" -1 "$WORK/SYSTEM.LOG" "$WORK/clean" "$WORK/step"
  size=$(stat -c %s "$WORK/SYSTEM.LOG")
  head -c $((size - 512)) "$WORK/SYSTEM.LOG" >"$WORK/cut.LOG"
  part_of "$IMAGES/win.raw" "$WORK/p"
  ntfscp "$WORK/p" "$WORK/SYSTEM" "$CONFIG/SYSTEM" >/dev/null
  ntfscp "$WORK/p" "$WORK/cut.LOG" "$CONFIG/SYSTEM.LOG" >/dev/null
  img=$(img_copy win.raw)
  dd if="$WORK/p" of="$img" bs=512 seek=2048 conv=notrunc status=none
  cp --sparse=always "$img" "$WORK/orig"
  run 4 "$N" --direct -r 4M "$img"
  err_has "cannot be recovered from its transaction logs: SYSTEM.LOG1: empty; SYSTEM.LOG2: empty; SYSTEM.LOG holds "
  err_has "dirty pages: cut short"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
  run 4 "$N" --direct -r 4M --no-replay "$img"
  err_has "SYSTEM.LOG1 and SYSTEM.LOG2 exist beside it; SYSTEM.LOG exists beside it"
  same_bytes "$img" "$WORK/orig"
  ntfscp "$WORK/p" "$WORK/SYSTEM.LOG" "$CONFIG/SYSTEM.LOG" >/dev/null
  dd if="$WORK/p" of="$img" bs=512 seek=2048 conv=notrunc status=none
  run 0 "$N" --direct -r 4M "$img"
  out_has "the hive was dirty: replayed the old-format log SYSTEM.LOG whole"
  part_of "$img" "$WORK/q"
  ntfscat "$WORK/q" "$CONFIG/SYSTEM" >"$WORK/S"
  [ "$(hget "$WORK/S" 'ControlSet001\Services\LoggedOnly' Start)" = 3 ]
  [ "$(hget "$WORK/S" "$KEY1" ReceiveBufferSize)" = 4096 ]
  [ "$(ntfscat "$WORK/q" "$CONFIG/SYSTEM.LOG" | wc -c)" -eq 0 ]
  ntfsfix -n "$WORK/q" >/dev/null
  [ "$(names_in "$WORK/q")" = "SOFTWARE SYSTEM SYSTEM.LOG SYSTEM.LOG1 SYSTEM.LOG2 " ]
}

hibernated () {
  img=$(img_copy hiber.qcow2); cp "$img" "$WORK/orig"
  run 4 "$N" --direct -r 2M "$img"
  err_has "refused: Windows on /dev/sda1 is hibernated or was stopped with Fast Startup"
  err_has "shutdown /s /t 0"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
  # reading is fine: the volume is only mounted read-only
  run 0 "$N" --direct --list "$img"
  same_bytes "$img" "$WORK/orig"
}

garbage_hive_in_image () {
  img=$(img_copy badhive.qcow2); cp "$img" "$WORK/orig"
  run 1 "$N" --direct -r 2M "$img"
  err_has "$img:/dev/sda1:/Windows/System32/config/SYSTEM: not a registry hive"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
}

# Bad input caught before qemu-nbd starts.
# VDI and QED (issue 16), made here from win.raw with qemu-img: detected
# by their magic (not read as raw), patched, read back through qemu-img
# convert; --format agrees or is refused; per image through --from.
vdi_and_qed () {
  local IMAGES=$WORK/made
  mkdir -p "$IMAGES"
  for f in vdi qed; do
    qemu-img convert -f raw -O "$f" "$FIXTURES/images/win.raw" "$IMAGES/win.$f"
    patch_format "win.$f" "$f"
    img=$WORK/win.$f
    # the format said explicitly: the same; another: refused, unchanged
    cp "$img" "$WORK/orig"
    run 0 "$N" --direct -n -r 4M -s 2M --format "$f" "$img"
    out_has "($f, /dev/sda1"
    run 2 "$N" --direct -r 8M --format qcow2 "$img"
    err_has "$img: --format qcow2 does not match the file, which is $f"
    err_lines 1
    same_bytes "$img" "$WORK/orig"
  done
  # a raw disk given as one of them: no header, refused
  raw=$WORK/win.raw; cp --sparse=always "$FIXTURES/images/win.raw" "$raw"
  cp --sparse=always "$raw" "$WORK/orig"
  run 2 "$N" --direct -r 4M --format qed "$raw"
  err_has "$raw: --format qed does not match the file (no qed header found)"
  same_bytes "$raw" "$WORK/orig"
  # --from: a format per image, after a tab
  printf '%s\tvdi\n%s\tqed\n' "$WORK/win.vdi" "$WORK/win.qed" >"$WORK/list"
  run 0 "$N" --direct -n -r 8M --from "$WORK/list"
  out_has "(vdi, /dev/sda1"
  out_has "(qed, /dev/sda1"
  printf '%s\tvdi\n' "$WORK/win.qed" >"$WORK/list"
  cp "$WORK/win.qed" "$WORK/orig"
  run 2 "$N" --direct -r 8M --from "$WORK/list"
  err_has "$WORK/win.qed: --format vdi does not match the file, which is qed"
  same_bytes "$WORK/win.qed" "$WORK/orig"
}

# Values patched offline do not follow a template into its clones (a
# new NIC instance): said once, in --list and the report (text and
# JSON), only for images with a Hyper-V adapter and without --defer.
clone_caveat () {
  img=$(img_copy win.qcow2); cp "$img" "$WORK/orig"
  note="note: values set offline stay with the Hyper-V adapters above; a VM created from a copy of this disk gets a new one (new GUID and class key) without them: for templates, use --defer"
  run 0 "$N" --direct --list "$img"
  out_has "  $note"
  [ "$(grep -c 'note:' "$WORK/out")" -eq 1 ]
  [ ! -s "$WORK/err" ]
  run 0 "$N" --direct -n -r 4M "$img"
  out_has "note: values set offline stay with the Hyper-V adapter(s) above"
  run 0 "$N" --direct -n --json -r 4M "$img"
  python3 - "$WORK/out" <<'PY'
import json, sys
o = json.loads(open(sys.argv[1]).read())
c = o["caveats"]
assert [x["kind"] for x in c] == ["clones"] and c[0]["severity"] == "note", c
assert "new GUID and class key" in c[0]["message"] and "--defer" in c[0]["message"], c
PY
  same_bytes "$img" "$WORK/orig"
  # not for --remove (a clone's new adapter has the defaults too), nor
  # hive mode (no disk to copy), nor an image without a Hyper-V adapter
  run 0 "$N" --direct -n --remove "$img"
  if grep -q 'note:' "$WORK/out"; then echo "noted with --remove"; exit 1; fi
  h=$(hive_copy ws2019)
  run 0 "$N" --hive "$h" --list --json
  python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["caveats"] == []' "$WORK/out"
  run 3 "$N" --direct --json -r 4M --match desc:nothing-like-this "$img"
  python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["caveats"] == []' "$WORK/out"
  same_bytes "$img" "$WORK/orig"
}

bad_images () {
  : >"$WORK/empty.img"; mkdir "$WORK/dir.img"
  head -c 1536 "$IMAGES/win-dyn.vhd" >"$WORK/truncated.vhd"
  head -c 300000 "$IMAGES/win.vhdx" >"$WORK/truncated.vhdx"
  for f in "$WORK/missing.img" "$WORK/dir.img" "$WORK/empty.img" "$WORK/truncated.vhd" \
           "$WORK/truncated.vhdx"; do
    [ -f "$f" ] && cp "$f" "$WORK/before"
    run 1 "$N" --direct -r 2M "$f"
    err_has "netvsc-patch: $f: "
    err_lines 1
    if [ -f "$f" ]; then same_bytes "$f" "$WORK/before"; fi
  done
  img=$(img_copy win.qcow2); cp "$img" "$WORK/orig"
  run 2 "$N" --direct -r 2M --format vhdx "$img"
  err_has "--format vhdx does not match the file, which is qcow2"
  run 2 "$N" --direct -r 2M --format raw "$img"
  same_bytes "$img" "$WORK/orig"
  run 2 "$N" --direct -r 2M --hive "$img"
}

locked_image () {
  # A running VM holds qemu's lock on its disk: refuse with a clear line.
  img=$(img_copy win.qcow2); cp "$img" "$WORK/orig"
  qemu-io -f qcow2 -c 'sleep 20000' "$img" >/dev/null 2>&1 &
  holder=$!
  sleep 1
  run 1 "$N" --direct -r 2M "$img"
  run 1 "$N" --direct --list "$img"
  kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null || true
  err_has "the image is in use by another process (is the VM running?)"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
}

# Raw and fixed VHD are read and written in place, without qemu-nbd or
# qemu-img (src/direct_file.c): patched, no qemu program run (strace),
# and nothing outside the NTFS volume (sectors 2048-131071) changed: the
# partition table, and a fixed VHD's footer.
in_place_without_qemu () {
  for f in win.raw win-fixed.vhd; do
    img=$(img_copy "$f"); cp --sparse=always "$img" "$WORK/orig"
    run 0 strace -f -qq -e trace=execve -o "$WORK/exec" "$N" --direct -r 4M -s 2M "$img"
    out_has "patched, 1 adapter matched"
    grep -q 'execve(".*netvsc-patch' "$WORK/exec"
    if grep 'execve("[^"]*qemu' "$WORK/exec"; then echo "$f: qemu was run"; exit 1; fi
    extract "$img" "$WORK/SYSTEM"
    [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 4096 ]
    [ "$(regf_value "$WORK/SYSTEM" "$KEY1" SendBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 2048" ]
    export_diff "$HIVES/ws2019.hive" "$WORK/SYSTEM" >"$WORK/diff"
    printf '%s\n' '> "ReceiveBufferSize"=dword:00001000' '> "SendBufferSize"=dword:00000800' \
      | diff - "$WORK/diff"
    [ "$(stat -c %s "$img")" = "$(stat -c %s "$WORK/orig")" ]
    cmp <(head -c $((2048 * 512)) "$img") <(head -c $((2048 * 512)) "$WORK/orig")
    cmp <(tail -c +$((131072 * 512 + 1)) "$img") <(tail -c +$((131072 * 512 + 1)) "$WORK/orig")
    ! cmp -s "$img" "$WORK/orig"
    part_of "$img" "$WORK/p"; volume_ok "$WORK/p"
    # nothing of ours holds qemu's lock any more
    qemu-io -f raw -c quit "$img" >/dev/null
  done
}

# A fixed VHD whose footer describes more data than the file holds (cut
# in the middle, footer kept): refused before anything is read from the
# disk, read-only runs too.
truncated_fixed_vhd () {
  src=$IMAGES/win-fixed.vhd; size=$(stat -c %s "$src")
  { head -c $((size - 512 - 1048576)) "$src"; tail -c 512 "$src"; } >"$WORK/cut.vhd"
  cp "$WORK/cut.vhd" "$WORK/orig"
  run 1 "$N" --direct -r 4M "$WORK/cut.vhd"
  err_has "netvsc-patch: $WORK/cut.vhd: a truncated fixed VHD (its footer describes more data than the file holds); nothing was written"
  err_lines 1
  same_bytes "$WORK/cut.vhd" "$WORK/orig"
  run 1 "$N" --direct --list "$WORK/cut.vhd"
  err_has "a truncated fixed VHD"
  same_bytes "$WORK/cut.vhd" "$WORK/orig"
}

# qemu's locks, taken by netvsc-patch itself on a raw image: a writer
# holding it (qemu-io; even one that shares write, which qemu's raw
# driver would let in) refuses a patch and a --list; a reader that
# shares write (qemu-io -r) does not, as with qemu-nbd; and while a patch
# runs (held in its first fdatasync by strace), qemu cannot open the
# image for writing, nor can another run.
locked_raw () {
  img=$(img_copy win.raw); cp "$img" "$WORK/orig"
  qemu-io -f raw -c 'sleep 20000' "$img" >/dev/null 2>&1 &
  holder=$!
  sleep 1
  run 1 "$N" --direct -r 2M "$img"
  err_has "netvsc-patch: $img: the image is in use by another process (is the VM running?) (qemu-io, pid $holder): Failed to get "
  err_has '"write" lock'
  err_lines 1
  run 1 "$N" --direct --list "$img"
  err_has "the image is in use by another process (is the VM running?)"
  kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null || true
  same_bytes "$img" "$WORK/orig"
  qemu-io -r -f raw -c 'sleep 20000' "$img" >/dev/null 2>&1 &
  holder=$!
  sleep 1
  run 0 "$N" --direct --list "$img"
  out_has "Microsoft Hyper-V Network Adapter"
  same_bytes "$img" "$WORK/orig"
  kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null || true
  strace -f -qq -o /dev/null -e trace=fdatasync -e inject=fdatasync:delay_enter=3000000:when=1 \
    "$N" --direct -r 2M "$img" >"$WORK/bg" 2>&1 &
  pid=$!
  sleep 1.5
  if qemu-io -f raw -c quit "$img" >"$WORK/qio" 2>&1; then echo "qemu-io wrote while we patched"; exit 1; fi
  grep -q 'lock' "$WORK/qio" || { cat "$WORK/qio"; exit 1; }
  # nor can another run of netvsc-patch, which says it is one
  run 1 "$N" --direct -r 4M "$img"
  err_has "netvsc-patch: $img: the image is in use by another run of netvsc-patch (pid "
  err_lines 1
  wait "$pid"
  run 0 cat "$WORK/bg"
  out_has "patched, 1 adapter matched"
  extract "$img" "$WORK/SYSTEM"
  [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 2048 ]
  qemu-io -f raw -c quit "$img" >/dev/null
}

# Partition tables the fixtures lack, built around win.raw's NTFS
# partition: GPT (partition 2), MBR with logical partitions (the volume
# is the second logical one: /dev/sda6), and no table at all (/dev/sda).
partition_tables () {
  part_of "$IMAGES/win.raw" "$WORK/ntfs"
  size=$(( $(wc -c <"$WORK/ntfs") / 512 ))
  truncate -s 72M "$WORK/gpt.raw"
  printf 'label: gpt\nunit: sectors\n\nstart=2048, size=2048, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE\nstart=4096, size=%d, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n' "$size" \
    | sfdisk -q "$WORK/gpt.raw" >/dev/null
  dd if="$WORK/ntfs" of="$WORK/gpt.raw" bs=512 seek=4096 conv=notrunc status=none
  truncate -s 72M "$WORK/logical.raw"
  printf 'label: dos\nunit: sectors\n\nstart=2048, size=2048, type=83\nstart=4096, type=5\nstart=6144, size=2048, type=83\nstart=10240, size=%d, type=7\n' "$size" \
    | sfdisk -q "$WORK/logical.raw" >/dev/null
  dd if="$WORK/ntfs" of="$WORK/logical.raw" bs=512 seek=10240 conv=notrunc status=none
  cp "$WORK/ntfs" "$WORK/whole.raw"
  for t in gpt:/dev/sda2:2 logical:/dev/sda6:6 whole:/dev/sda:; do
    img=$WORK/${t%%:*}.raw; dev=${t#*:}; dev=${dev%:*}; num=${t##*:}
    run 0 "$N" --direct --list "$img"
    out_has "(raw, $dev /Windows/System32/config/SYSTEM)"
    run 0 "$N" --direct -r 4M "$img"
    out_has "patched, 1 adapter matched"
    if [ -n "$num" ]; then extract "$img" "$WORK/SYSTEM" "$num"
    # extract-hive.sh takes the NTFS boot sector's 0x55aa for an empty
    # DOS label: the volume is the image, read it directly
    else ntfscat "$img" "$CONFIG/SYSTEM" >"$WORK/SYSTEM"; ntfsfix -n "$img" >/dev/null; fi
    [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 4096 ]
  done
  # a GPT whose primary header is damaged is read from its backup
  dd if=/dev/zero of="$WORK/gpt.raw" bs=512 seek=1 count=1 conv=notrunc status=none
  run 0 "$N" --direct --list "$WORK/gpt.raw"
  out_has "(raw, /dev/sda2 /Windows/System32/config/SYSTEM)"
}

# SYSTEM with a shared security descriptor ($Secure key, as Windows
# makes them) and hidden+system attributes: both survive the swap.
security_and_attributes () {
  part_of "$IMAGES/win.raw" "$WORK/p"
  ntfssecaudit "$WORK/p" 0640 "$CONFIG/SYSTEM" >/dev/null 2>&1
  ntfssecaudit -b "$WORK/p" "$CONFIG" 2>/dev/null |
    awk -v f="File $CONFIG/SYSTEM" '$0 == f { p = 1; print; next } /^(File|Directory) / { p = 0 } p' |
    sed 's/^Windows attrib : 0x20$/Windows attrib : 0x26/' >"$WORK/backup"
  ntfssecaudit -se "$WORK/p" "$WORK/backup" >/dev/null 2>&1
  ntfssecaudit -v "$WORK/p" "$CONFIG/SYSTEM" 2>&1 | grep -E '^(Security key|  |Computed hash|Windows)' \
    >"$WORK/sec.before"
  grep -q "Security key : 0x" "$WORK/sec.before"
  grep -q "Windows attrib : 0x26" "$WORK/sec.before"
  img=$(img_copy win.raw)
  dd if="$WORK/p" of="$img" bs=1M seek=1 conv=notrunc status=none
  run 0 "$N" --direct -r 4M "$img"
  part_of "$img" "$WORK/q"
  ntfssecaudit -v "$WORK/q" "$CONFIG/SYSTEM" 2>&1 | grep -E '^(Security key|  |Computed hash|Windows)' \
    >"$WORK/sec.after"
  diff "$WORK/sec.before" "$WORK/sec.after"
  ntfssecaudit -a "$WORK/q" 2>&1 | grep -q "No errors were found"
  ntfscat "$WORK/q" "$CONFIG/SYSTEM" >"$WORK/SYSTEM"
  [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 4096 ]
}

# A stale SYSTEM.netvsc-patch.tmp (what an appliance run killed during
# its upload leaves) is left alone: the write changes SYSTEM's data and
# no other name of the directory.
stale_tmp () {
  part_of "$IMAGES/win.raw" "$WORK/p"
  head -c 5000 /dev/urandom >"$WORK/junk"
  ntfscp "$WORK/p" "$WORK/junk" "$CONFIG/SYSTEM.netvsc-patch.tmp" >/dev/null
  img=$(img_copy win.raw)
  dd if="$WORK/p" of="$img" bs=1M seek=1 conv=notrunc status=none
  cp --sparse=always "$img" "$WORK/orig"
  run 0 "$N" --direct --list "$img"
  out_has "Microsoft Hyper-V Network Adapter"
  same_bytes "$img" "$WORK/orig"
  run 0 "$N" --direct -r 4M "$img"
  part_of "$img" "$WORK/q"
  [ "$(names_in "$WORK/q")" = "SOFTWARE SYSTEM SYSTEM.LOG1 SYSTEM.LOG2 SYSTEM.netvsc-patch.tmp " ]
  ntfscat "$WORK/q" "$CONFIG/SYSTEM.netvsc-patch.tmp" | cmp - "$WORK/junk"
  ntfscat "$WORK/q" "$CONFIG/SYSTEM" >"$WORK/SYSTEM"
  [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 4096 ]
  ntfsfix -n "$WORK/q" >/dev/null
}

# Names on the way to the hive (or its logs) that differ only in case:
# refused, exit 1, both named; with --root, --list and --check too;
# nothing written.
case_variants () {
  case_images
  imgs=$(printf '%s\n' "$CASE_NAMES" | while read -r i _; do printf '%s ' "$WORK/$i.raw"; done)
  # shellcheck disable=SC2086
  run 1 "$N" --direct -r 2M $imgs
  err_lines 5
  case_refused
  for args in "--root /dev/sda1 -r 2M" "--list" "--check -r 2M"; do
    # shellcheck disable=SC2086
    run 1 "$N" --direct $args "$WORK/casewin.raw"
    err_has "$WORK/casewin.raw: /dev/sda1: /WINDOWS and /Windows differ only in case"
    err_lines 1
    same_bytes "$WORK/casewin.raw" "$WORK/casewin.orig"
  done
}

# SYSTEM keeps its inode (hence name, security, attributes, hard links):
# only its data changes.
same_inode () {
  img=$(img_copy win.qcow2)
  part_of "$img" "$WORK/p"
  before=$(ntfsinfo -F "$CONFIG/SYSTEM" "$WORK/p" | sed -n 's/^Dumping Inode \([0-9]*\).*/\1/p')
  free0=$(free_clusters "$WORK/p")
  run 0 "$N" --direct -r 4M "$img"
  part_of "$img" "$WORK/q"
  after=$(ntfsinfo -F "$CONFIG/SYSTEM" "$WORK/q" | sed -n 's/^Dumping Inode \([0-9]*\).*/\1/p')
  [ -n "$before" ] && [ "$before" = "$after" ]
  # the old clusters were given back: free space changed by the growth
  # of the hive alone
  extract "$IMAGES/win.qcow2" "$WORK/h0"; extract "$img" "$WORK/h1"
  grown=$(( ($(wc -c <"$WORK/h1") + 4095) / 4096 - ($(wc -c <"$WORK/h0") + 4095) / 4096 ))
  [ "$(free_clusters "$WORK/q")" -eq $(( free0 - grown )) ]
  volume_ok "$WORK/q"
}

# The same request through the appliance and through --direct gives
# byte-identical hives and the same security descriptor.
differential () {
  a=$WORK/a-$1; b=$WORK/b-$1
  cp --sparse=always "$IMAGES/$1" "$a"; cp --sparse=always "$IMAGES/$1" "$b"
  run 0 "$N" -q -r 4M -s 1M --control-set all "$a"
  run 0 "$N" -q --direct -r 4M -s 1M --control-set all "$b"
  extract "$a" "$WORK/A"; extract "$b" "$WORK/B"
  same_bytes "$WORK/A" "$WORK/B"
  [ "$(hget "$WORK/B" "$KEY1" SendBufferSize)" = 1024 ]
  part_of "$a" "$WORK/pa"; part_of "$b" "$WORK/pb"
  for p in pa pb; do
    ntfssecaudit -v "$WORK/$p" "$CONFIG/SYSTEM" 2>&1 | grep -E '^(  |Computed hash|Windows)' \
      >"$WORK/$p.sec"
  done
  diff "$WORK/pa.sec" "$WORK/pb.sec"
  [ "$(names_in "$WORK/pa")" = "$(names_in "$WORK/pb")" ]
}

# Ctrl-C goes to the whole foreground process group.  Whenever it comes,
# the image ends up either untouched or fully patched with no temporary
# name left: qemu-nbd (in its own session) is not stopped under the
# swap, and the swap itself runs to its end.
ctrl_c () {
  extract "$IMAGES/win.raw" "$WORK/orig.hive"
  untouched=0 patched=0
  for i in $(seq 1 12); do
    img=$(img_copy win.raw)
    setsid "$N" --direct -r 4M "$img" >"$WORK/out" 2>"$WORK/err" &
    pid=$!
    sleep "0.0$(( 20 + i * 4 ))"
    kill -INT -- "-$pid" 2>/dev/null || true
    rc=0; wait "$pid" || rc=$?
    extract "$img" "$WORK/k.hive"
    part_of "$img" "$WORK/p"
    volume_ok "$WORK/p"
    if same_bytes "$WORK/k.hive" "$WORK/orig.hive" >/dev/null; then
      untouched=$((untouched + 1))
      [ "$rc" -ne 0 ] || grep -q unchanged "$WORK/out" || { echo "exit 0 but untouched"; exit 1; }
    else
      patched=$((patched + 1))
      [ "$(hget "$WORK/k.hive" "$KEY1" ReceiveBufferSize)" = 4096 ]
    fi
  done
  echo "# Ctrl-C at 12 moments: $untouched untouched, $patched patched, none half-done"
}

# SIGKILL the tool at many moments while it patches.  The delays are
# random, calibrated from a timed verbose run: a quarter before the
# write starts, the rest over the write window.  Each killed run's
# verbose log says which step it had reached.  Afterwards SYSTEM is the
# original or the fully patched hive, byte for byte, the volume is
# sound, and a rerun succeeds and leaves a clean volume.  A kill may leak
# clusters (given back by chkdsk): counted, and bounded by the hive.
crash_kills () {
  fmt=$1 src=$IMAGES/$2 n=$3
  extract "$src" "$WORK/orig.hive"
  cp --sparse=always "$src" "$WORK/ref"
  "$N" -q --direct -r 4M -s 4M "$WORK/ref"
  extract "$WORK/ref" "$WORK/ref.hive"
  if cmp -s "$WORK/orig.hive" "$WORK/ref.hive"; then echo "reference not patched"; exit 1; fi
  part_of "$WORK/ref" "$WORK/p"
  ref_free=$(free_clusters "$WORK/p")
  hive_clusters=$(( ($(wc -c <"$WORK/ref.hive") + 4095) / 4096 ))
  # calibration: microseconds from start to each verbose line
  cp --sparse=always "$src" "$WORK/cal"
  timeline "$N" --direct -v -r 4M -s 4M "$WORK/cal" >"$WORK/timeline"
  w0=$(awk '/direct: step 1: write/{print $1; exit}' "$WORK/timeline")
  w1=$(awk '/direct: step 4: done/{print $1; exit}' "$WORK/timeline")
  [ -n "$w0" ] && [ -n "$w1" ]
  libnbd_dirs >"$WORK/nbd.before"
  staged_before
  old=0 new=0 leaky=0 leaked_max=0
  : >"$WORK/points"
  for i in $(seq 1 "$n"); do
    img=$WORK/k
    cp --sparse=always "$src" "$img"
    if [ $((i % 4)) -eq 0 ]; then d=$(( RANDOM * w0 / 32768 ))
    else d=$(( w0 - 3000 + RANDOM * (w1 - w0 + 6000) / 32768 )); fi
    "$N" --direct -v -r 4M -s 4M "$img" >/dev/null 2>"$WORK/klog" &
    pid=$!
    sleep "$(printf '0.%06d' "$d")"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # where it was: the last step it announced
    last=$(sed -n "/: direct: /{s/.*: direct: //; s,$CONFIG/,,; s/ (offset.*//; s/ -f .*//; p}" \
           "$WORK/klog" | tail -1)
    echo "${last:-starting}" >>"$WORK/points"
    # qemu-nbd (told by the kernel that its parent died, or seeing the
    # socket close) exits and releases qemu's write lock: no orphan
    unlocked=no
    for _ in $(seq 1 50); do
      if qemu-io -f "$fmt" -c quit "$img" >/dev/null 2>&1; then unlocked=yes; break; fi
      sleep 0.1
    done
    [ "$unlocked" = yes ] || { echo "kill $i after ${d}us ($last): image still locked"; exit 1; }
    if [ "$fmt" != raw ]; then
      qemu-img check -q -f "$fmt" "$img" || { echo "kill $i ($last): qemu-img check"; exit 1; }
    fi
    extract "$img" "$WORK/k.hive" || { echo "kill $i after ${d}us ($last): no SYSTEM"; exit 1; }
    if cmp -s "$WORK/k.hive" "$WORK/orig.hive"; then old=$((old + 1))
    elif cmp -s "$WORK/k.hive" "$WORK/ref.hive"; then new=$((new + 1))
    else echo "kill $i after ${d}us ($last): SYSTEM is neither hive"; exit 1; fi
    part_of "$img" "$WORK/p"
    volume_ok "$WORK/p" || { echo "kill $i after ${d}us ($last): volume"; exit 1; }
    run 0 "$N" --direct -r 4M -s 4M "$img"
    extract "$img" "$WORK/k.hive"
    cmp "$WORK/k.hive" "$WORK/ref.hive"
    part_of "$img" "$WORK/p"
    volume_ok "$WORK/p" || { echo "kill $i ($last): after the rerun"; exit 1; }
    leak=$(( ref_free - $(free_clusters "$WORK/p") ))
    [ "$leak" -le $(( 2 * hive_clusters )) ] || { echo "kill $i ($last): $leak clusters leaked"; exit 1; }
    if [ "$leak" -gt 0 ]; then leaky=$((leaky + 1)); fi
    if [ "$leak" -gt "$leaked_max" ]; then leaked_max=$leak; fi
  done
  echo "# $2: a run writes from ${w0}us to ${w1}us after it starts; $n kills: $old left the original," \
       "$new the patched hive; $leaky kills leaked clusters (at most $leaked_max per kill;" \
       "the hive takes $hive_clusters), which chkdsk reclaims"
  echo "# kill points: $(sort "$WORK/points" | uniq -c | sed 's/^ *//' | tr '\n' ';')"
  # the socket qemu-nbd listens on is abstract: nothing left in /tmp
  libnbd_dirs | diff "$WORK/nbd.before" -
  # qemu-nbd's stderr file is unlinked at once; job.c's staging directory
  # (netvsc-patch.XXXXXX, a copy of the hive) cannot be removed by a
  # process that is SIGKILLed: counted, then removed
  staged=$(staged_since)
  echo "# staging directories left in ${TMPDIR:-/tmp} by the SIGKILLed runs (job.c's): $staged"
  [ "$old" -gt 0 ] && [ "$new" -gt 0 ]
}

# Real hives (../shared/real-hives; skipped where absent) inside an
# image: the 11.8 MB Windows 7 SYSTEM (two Intel NICs, no netvsc), with
# kills during its longer write; and a dirty Windows 8.1/10 SYSTEM with
# its two logs, replayed and patched in the guest.
REAL=$SHARED/real-hives
real_image () {   # real_image HIVE [LOG1 LOG2] -> $WORK/real.raw
  part_of "$IMAGES/win.raw" "$WORK/p"
  xz -dc "$REAL/$1.xz" >"$WORK/h"; ntfscp "$WORK/p" "$WORK/h" "$CONFIG/SYSTEM" >/dev/null
  if [ $# -eq 3 ]; then
    xz -dc "$REAL/$2.xz" >"$WORK/l1"; ntfscp "$WORK/p" "$WORK/l1" "$CONFIG/SYSTEM.LOG1" >/dev/null
    xz -dc "$REAL/$3.xz" >"$WORK/l2"; ntfscp "$WORK/p" "$WORK/l2" "$CONFIG/SYSTEM.LOG2" >/dev/null
  fi
  cp --sparse=always "$IMAGES/win.raw" "$WORK/real.raw"
  dd if="$WORK/p" of="$WORK/real.raw" bs=512 seek=2048 conv=notrunc status=none
}

real_hive_in_image () {
  real_image SYSTEM; img=$WORK/real.raw
  xz -dc "$REAL/SYSTEM.xz" >"$WORK/orig.hive"
  m='pci\ven_8086&dev_100f'
  run 0 "$N" --direct --match "$m" -r 4M -s 2M "$img"
  out_has "2 adapters matched"
  extract "$img" "$WORK/ref.hive"
  [ "$(regf_value "$WORK/ref.hive" "$CLASS\\0007" ReceiveBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 4096" ]
  [ "$(hget "$WORK/ref.hive" "$CLASS\\0012" SendBufferSize)" = 2048 ]
  export_diff "$WORK/orig.hive" "$WORK/ref.hive" >"$WORK/diff"
  [ "$(grep -c '^>' "$WORK/diff")" -eq 4 ] && [ "$(grep -c '^<' "$WORK/diff")" -eq 0 ]
  part_of "$img" "$WORK/q"; volume_ok "$WORK/q"
  # kills while 12 MB are written: the original or the patched hive
  staged_before
  old=0 new=0
  for i in $(seq 1 10); do
    real_image SYSTEM
    "$N" --direct --match "$m" -r 4M -s 2M "$img" >/dev/null 2>&1 &
    pid=$!
    sleep "0.$(( 30 + RANDOM % 250 ))"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do qemu-io -f raw -c quit "$img" >/dev/null 2>&1 && break; sleep 0.1; done
    extract "$img" "$WORK/k.hive"
    if cmp -s "$WORK/k.hive" "$WORK/orig.hive"; then old=$((old + 1))
    else cmp "$WORK/k.hive" "$WORK/ref.hive"; new=$((new + 1)); fi
    part_of "$img" "$WORK/q"; ntfsfix -n "$WORK/q" >/dev/null
    run 0 "$N" --direct --match "$m" -r 4M -s 2M "$img"
    extract "$img" "$WORK/k.hive"; cmp "$WORK/k.hive" "$WORK/ref.hive"
  done
  staged=$(staged_since)
  echo "# real 11.8 MB hive: 10 kills: $old left the original, $new the patched hive;" \
       "$staged staging directories left (job.c's)"
}

real_dirty_in_image () {
  real_image SYSTEM_B SYSTEM_B.LOG1 SYSTEM_B.LOG2; img=$WORK/real.raw
  cp --sparse=always "$img" "$WORK/orig"
  m='pci\ven_8086&dev_1502'             # its Intel 82579LM
  run 4 "$N" --direct --no-replay --match "$m" -r 2M "$img"
  err_has "refused: the hive is dirty"
  same_bytes "$img" "$WORK/orig"
  run 0 "$N" --direct --match "$m" -r 2M --json "$img"
  python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); r=o["replay"]; assert o["status"]=="patched" and r["entries"]==24 and r["logs_emptied"]==2, o' "$WORK/out"
  part_of "$img" "$WORK/q"
  ntfscat "$WORK/q" "$CONFIG/SYSTEM" >"$WORK/S"
  [ "$(od -An -tu4 -j4 -N4 "$WORK/S")" = "$(od -An -tu4 -j8 -N4 "$WORK/S")" ]
  [ "$(hget "$WORK/S" "$CLASS\\0001" ReceiveBufferSize)" = 2048 ]
  for l in LOG1 LOG2; do [ "$(ntfscat "$WORK/q" "$CONFIG/SYSTEM.$l" | wc -c)" -eq 0 ]; done
  volume_ok "$WORK/q"
}

# T_DIRECT_ONLY=REGEX runs only the cases whose title matches (the
# appliance cases take ~30 s, the kills ~1 min).
only () {
  if [ -n "${T_DIRECT_ONLY:-}" ] && ! printf '%s\n' "$1" | grep -Eq -- "$T_DIRECT_ONLY"; then
    return 0
  fi
  check "$@"
}

only "bad image files: exit 1/2 before qemu-nbd, bytes unchanged" bad_images
only "locked image (running VM) refused" locked_image
only "raw, detected, patched" patch_format win.raw raw
only "raw and fixed VHD in place: no qemu run, bytes outside the volume unchanged" in_place_without_qemu
only "truncated fixed VHD refused" truncated_fixed_vhd
only "qemu's locks on a raw image: writers and readers, both ways" locked_raw
only "dynamic VHD, detected, patched" patch_format win-dyn.vhd vpc
only "fixed VHD, detected, patched" patch_format win-fixed.vhd vpc
only "VHDX (512-byte NBD blocks), detected, patched" patch_format win.vhdx vhdx
only "qcow2, detected, patched" patch_format win.qcow2 qcow2
only "VMDK, detected, patched" patch_format win.vmdk vmdk
only "raw: dry run, check, patch (JSON), unchanged rerun" raw_dry_run_then_patch_then_unchanged
only "--list on an image is read-only" list_image
only "VDI and QED: detected, patched; --format and --from per image" vdi_and_qed
only "clones: the offline caveat in --list, text and JSON, only where it applies" clone_caveat
only "System Reserved + Windows, two netvsc NICs" system_reserved_two_nics
only "two Windows installations: --root" two_windows
only "batch, 2 workers: vmdk + vhd + no Windows + no partitions" batch_worst_exit
only "dirty hive inside an image refused" dirty_in_image
only "dirty hive recovered from its log, patched, logs emptied in the guest" replay_in_image
only "XP's single SYSTEM.LOG: cut refused whole, else replayed and emptied in the guest" replay_xp_log_in_image
only "hibernated Windows refused (exit 4)" hibernated
only "SYSTEM in the image is not a hive" garbage_hive_in_image
only "GPT, logical MBR partitions, no partition table" partition_tables
only "security descriptor (\$Secure key) and attributes kept" security_and_attributes
only "stale temporary file left alone" stale_tmp
only "names differing only in case on the way to the hive: refused" case_variants
only "SYSTEM keeps its inode; old clusters freed" same_inode
only "appliance and --direct give identical hives: dynamic VHD" differential win-dyn.vhd
only "appliance and --direct give identical hives: qcow2" differential win.qcow2
only "Ctrl-C to the process group: untouched or patched, never half" ctrl_c
if [ -f "$REAL/SYSTEM.xz" ] && [ -f "$REAL/SYSTEM_B.xz" ]; then
  only "real 11.8 MB SYSTEM in an image: patched; 10 kills mid-write" real_hive_in_image
  only "real dirty SYSTEM + logs in an image: replayed, patched, logs emptied" real_dirty_in_image
else
  skip "real hives in an image" "$REAL absent"
fi
only "SIGKILL at 40 moments (raw)" crash_kills raw win.raw 40
only "SIGKILL at 12 moments (qcow2)" crash_kills qcow2 win.qcow2 12
finish
