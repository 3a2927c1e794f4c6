#!/bin/bash
# The disk backends' read_file, write_file and remove_file (what --defer
# uses for the local GPO's files), driven by build/tests/disk-files
# (tests/disk-files.c): the direct backend on a raw and a qcow2 image, and
# the appliance on three images in ONE launch.  Each writes into missing
# directories spelt in odd case, reads back through the backend, replaces
# a file with shorter and longer content (resident in its MFT record,
# outgrowing it, back again), removes it twice, and reads what is absent.
# Every result is checked without the code under test: qemu-img convert
# and dd cut the partition out, ntfs-3g's tools read it (ntfsls, ntfscat,
# ntfssecaudit, ntfsfix -n), and qemu-img check looks at the container.
. "$(dirname "$0")/lib.sh"
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"

IMAGES=$FIXTURES/images
HIVES=$FIXTURES/hives
DF=${DISK_FILES:-$TOP/build/tests/disk-files}
S32=/Windows/System32
CONFIG=$S32/config
GP=$S32/GroupPolicy
CMD=$GP/Machine/Scripts/Startup/netvsc-patch.cmd
INI=$GP/gpt.ini
# How the first write spells them: the directories from GroupPolicy on
# do not exist yet and are created in this case; the others exist in
# another.
ODD_CMD=/windows/SYSTEM32/grouppolicy/Machine/scripts/STARTUP/netvsc-patch.cmd
ODD_DIRS="/Windows/System32/grouppolicy /Windows/System32/grouppolicy/Machine
  /Windows/System32/grouppolicy/Machine/scripts /Windows/System32/grouppolicy/Machine/scripts/STARTUP"

# Contents: A fits in the file's MFT record, B (3000 bytes) does not,
# C is shorter than A; for gpt.ini, I1 then the longer I2 (both
# resident: rewritten in place), then nothing at all.
printf '@echo off\r\npowershell -File "%%~dp0netvsc-patch.ps1"\r\n' >"$WORK/A"
head -c 2250 /dev/urandom | base64 -w 76 | head -c 3000 >"$WORK/B"
printf 'rem\r\n' >"$WORK/C"
printf '[General]\r\n' >"$WORK/I1"
printf '[General]\r\ngPCMachineExtensionNames=[{42B5FAAE-6536-11D2-AE5A-0000F87571E3}]\r\nVersion=1\r\n' >"$WORK/I2"
: >"$WORK/I3"

img_copy () { cp --sparse=always "$IMAGES/$1" "$WORK/$2"; echo "$WORK/$2"; }

# part_of IMAGE OUT: the NTFS partition of a win* image (sectors 2048 to
# 131071, as tests/make-fixture-images.sh makes it) as a file the ntfs-3g
# tools read; the format is the file's own, as extract-hive.sh finds it.
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

# put_part PART IMAGE: a partition changed with the ntfs-3g tools back
# into a raw image.
put_part () { dd if="$1" of="$2" bs=1M seek=1 conv=notrunc status=none; }

# has PART PATH FILE: PATH (any case) holds exactly the bytes of FILE.
has () {
  local p
  p=$(ntfs_spelt "$1" "$2") || { echo "$2 is missing"; return 1; }
  ntfscat "$1" "$p" >"$WORK/got"
  cmp "$WORK/got" "$3" || { echo "$2 does not hold $(basename "$3")"; return 1; }
}
absent () {
  if ntfs_spelt "$1" "$2" >/dev/null; then echo "$2 exists, expected absent"; return 1; fi
}

# Every name of the volume (one per line, with its directory) and the
# bytes of every file.
tree_of () { ntfsls -R -p / "$1" | awk '/^\/.*:$/ { d = substr($0, 1, length($0) - 1); next }
                                       NF && $0 != "." && $0 != ".." { print d "/" $0 }' | sed 's,^//,/,'; }

# unchanged_but_gp P0 P1: the volume P1 holds the names and bytes of P0,
# plus what is under System32\GroupPolicy (any case), nothing else.
unchanged_but_gp () {
  tree_of "$1" | LC_ALL=C sort >"$WORK/t0"
  tree_of "$2" | grep -vi "^$S32/grouppolicy" | LC_ALL=C sort >"$WORK/t1"
  diff "$WORK/t0" "$WORK/t1" || { echo "names outside GroupPolicy changed"; return 1; }
  while read -r f; do
    if ntfscat "$1" "$f" >"$WORK/f0" 2>/dev/null; then
      ntfscat "$2" "$f" >"$WORK/f1" 2>/dev/null
      cmp -s "$WORK/f0" "$WORK/f1" || { echo "$f changed"; return 1; }
    fi
  done <"$WORK/t0"
}

# The volume is sound and holds no temporary name.
volume_ok () {
  ntfsfix -n "$1" >/dev/null || { echo "ntfsfix -n: $(ntfsfix -n "$1" 2>&1)"; return 1; }
  ntfssecaudit -a "$1" 2>&1 | grep -q "No errors were found" ||
    { ntfssecaudit -a "$1" 2>&1 | tail -5; return 1; }
  if tree_of "$1" | grep -i 'netvsc-patch\.tmp'; then echo "temporary name left"; return 1; fi
}

# secs PART PATH...: security descriptor, attributes and their reading
# (ntfssecaudit) of each PATH, without the header lines.
secs () {
  local p=$1; shift
  for f in "$@"; do
    echo "== $f"
    ntfssecaudit -v "$p" "$(ntfs_spelt "$p" "$f")" 2>&1 | grep -E '^(Security key|  |Computed hash|Windows|Interpreted)'
  done
}

# The image every write case starts from: win.raw where System32 has a
# descriptor of its own with inheritable ACEs (ntfs-3g's for mode 0750:
# not ntfs-3g's default of full control for Everyone), so that what new
# files and directories inherit can be told from that default; and
# SYSTEM has another descriptor and hidden+system attributes, which a
# replace must keep.
prepare () {
  [ -f "$WORK/prepared.raw" ] && return 0
  part_of "$IMAGES/win.raw" "$WORK/prep.p"
  ntfssecaudit "$WORK/prep.p" 0750 "$S32" >/dev/null 2>&1
  ntfssecaudit "$WORK/prep.p" 0640 "$CONFIG/SYSTEM" >/dev/null 2>&1
  ntfssecaudit -b "$WORK/prep.p" "$CONFIG" 2>/dev/null |
    awk -v f="File $CONFIG/SYSTEM" '$0 == f { p = 1; print; next } /^(File|Directory) / { p = 0 } p' |
    sed 's/^Windows attrib : 0x20$/Windows attrib : 0x26/' >"$WORK/backup"
  ntfssecaudit -se "$WORK/prep.p" "$WORK/backup" >/dev/null 2>&1
  secs "$WORK/prep.p" "$S32" | grep -q "mode 0750"
  secs "$WORK/prep.p" "$CONFIG/SYSTEM" | grep -q "Windows attrib : 0x26"
  cp --sparse=always "$IMAGES/win.raw" "$WORK/prepared.raw"
  put_part "$WORK/prep.p" "$WORK/prepared.raw"
}

# The write/read/replace/remove sequence, as driver arguments.
sequence () {
  echo write "$ODD_CMD" "$WORK/A"
  echo read "/WINDOWS/system32/GROUPPOLICY/machine/Scripts/startup/NETVSC-PATCH.CMD" "$WORK/r.A"
  echo write "$CMD" "$WORK/B"
  echo read "$CMD" "$WORK/r.B"
  echo write "$CMD" "$WORK/C"
  echo read "$CMD" "$WORK/r.C"
  echo write "$INI" "$WORK/I1"
  echo write "$INI" "$WORK/I2"
  echo read "$INI" "$WORK/r.I2"
  echo write "$INI" "$WORK/I3"
  echo read "$INI" "$WORK/r.I3"
  echo write "$GP/Machine/Scripts/scripts.ini" "$WORK/I2"
  echo remove "$GP/machine/scripts/SCRIPTS.INI"
  echo remove "$GP/Machine/Scripts/scripts.ini"
  echo read "$GP/Machine/Scripts/scripts.ini" "$WORK/r.absent"
  echo read "$GP/nowhere/scripts.ini" "$WORK/r.absent"
}
EXPECTED_OUT="write $ODD_CMD: ok
read /WINDOWS/system32/GROUPPOLICY/machine/Scripts/startup/NETVSC-PATCH.CMD: $(wc -c <"$WORK/A") bytes
write $CMD: ok
read $CMD: 3000 bytes
write $CMD: ok
read $CMD: $(wc -c <"$WORK/C") bytes
write $INI: ok
write $INI: ok
read $INI: $(wc -c <"$WORK/I2") bytes
write $INI: ok
read $INI: 0 bytes
write $GP/Machine/Scripts/scripts.ini: ok
remove $GP/machine/scripts/SCRIPTS.INI: ok
remove $GP/Machine/Scripts/scripts.ini: ok
read $GP/Machine/Scripts/scripts.ini: absent
read $GP/nowhere/scripts.ini: absent"

# check_sequence IMAGE PART: what the sequence must have left, read
# without the backends.
check_sequence () {
  local img=$1 p=$2
  # read back through the backend: the bytes written
  cmp "$WORK/r.A" "$WORK/A"; cmp "$WORK/r.B" "$WORK/B"; cmp "$WORK/r.C" "$WORK/C"
  cmp "$WORK/r.I2" "$WORK/I2"; cmp "$WORK/r.I3" "$WORK/I3"
  [ ! -e "$WORK/r.absent" ] || { echo "an absent read wrote its output file"; return 1; }
  # read without them: the directories in the case the first write gave
  for d in $ODD_DIRS; do [ "$(ntfs_spelt "$p" "$d")" = "$d" ] || { echo "$d: $(ntfs_spelt "$p" "$d")"; return 1; }; done
  has "$p" "$CMD" "$WORK/C"
  has "$p" "$INI" "$WORK/I3"
  absent "$p" "$GP/Machine/Scripts/scripts.ini"
  [ "$(ntfsls -p "$(ntfs_spelt "$p" "$GP/Machine/Scripts/Startup")" "$p" | grep -v '^\.\.\?$')" = netvsc-patch.cmd ]
  volume_ok "$p"
  unchanged_but_gp "$WORK/prep.p" "$p"
  # what new files and directories got: inherited from System32's
  # descriptor (a $Secure key, not Everyone's full control in a
  # descriptor of their own)
  secs "$p" "$GP" "$GP/Machine" "$CMD" "$INI" >"$WORK/new.sec"
  if grep -q "Security key : none" "$WORK/new.sec"; then cat "$WORK/new.sec"; return 1; fi
  if grep -q "mode 0777" "$WORK/new.sec"; then cat "$WORK/new.sec"; return 1; fi
}

# Direct backend: the whole sequence, then a read-only open that must not
# write a byte, and errors that must not either.
direct_sequence () {
  local fmt=$1 img=$WORK/d.$1
  prepare
  if [ "$fmt" = raw ]; then cp --sparse=always "$WORK/prepared.raw" "$img"
  else qemu-img convert -f raw -O "$fmt" "$WORK/prepared.raw" "$img"; fi
  rm -f "$WORK"/r.*
  # shellcheck disable=SC2046
  run 3 "$DF" direct -f "$fmt" "$img" $(sequence)
  printf '%s\n' "$EXPECTED_OUT" | sed "s|^|$img: |" | diff - "$WORK/out"
  [ ! -s "$WORK/err" ] || { cat "$WORK/err"; return 1; }
  [ "$fmt" = raw ] || qemu-img check -q -f "$fmt" "$img"
  part_of "$img" "$WORK/p.$fmt"
  check_sequence "$img" "$WORK/p.$fmt"
  [ "$fmt" != raw ] || cp "$WORK/p.$fmt" "$WORK/direct.p"     # for the appliance's
  # read-only: reads work, nothing is written, writes are refused
  cp --sparse=always "$img" "$WORK/before"
  run 1 "$DF" direct -r -f "$fmt" "$img" read "$CMD" "$WORK/r.ro" read "$GP/none.ini" "$WORK/r.none" \
    remove "$GP/none.ini" write "$INI" "$WORK/A" remove "$CMD"
  cmp "$WORK/r.ro" "$WORK/C"
  out_has "$img: read $GP/none.ini: absent"
  out_has "$img: remove $GP/none.ini: ok"
  err_has "$img: $INI: the image was opened read-only"
  err_has "$img: $CMD: the image was opened read-only"
  err_lines 2
  same_bytes "$img" "$WORK/before"
}

# Bad paths: one line naming the image and the path, exit 1, not a byte
# written.
direct_errors () {
  img=$(img_copy win.qcow2 e.qcow2); cp "$img" "$WORK/before"
  run 1 "$DF" direct "$img" write "$S32/cmd.exe/x.ini" "$WORK/A" read "$S32" "$WORK/x" \
    write "$S32/" "$WORK/A" write "relative/x" "$WORK/A" write "$S32/../x" "$WORK/A" \
    remove "$S32/config" read "$S32/cmd.exe/x" "$WORK/x"
  err_has "$img: $S32/cmd.exe/x.ini: $S32/cmd.exe is not a directory"
  err_has "$img: $S32: not a regular file (a directory)"
  err_has "$img: $S32/: not the absolute path of a file"
  err_has "$img: relative/x: not the absolute path of a file"
  err_has "$img: $S32/../x: bad path component \"..\""
  err_has "$img: $S32/config: not a regular file (a directory)"
  err_has "$img: $S32/cmd.exe/x: $S32/cmd.exe is not a directory"
  err_lines 7
  same_bytes "$img" "$WORK/before"
}

# Hibernated Windows: writing (and removing an existing file) is refused
# with exit 4 and the message of replace's refusal; reading is fine;
# nothing is written.
direct_hibernated () {
  img=$(img_copy hiber.qcow2 h.qcow2); cp "$img" "$WORK/before"
  run 4 "$DF" direct "$img" write "$INI" "$WORK/A" remove "$CONFIG/SYSTEM.LOG1" \
    read "$CONFIG/SYSTEM" "$WORK/h.SYSTEM" remove "$GP/none.ini"
  err_has "$img: $INI: refused: Windows on /dev/sda1 is hibernated or was stopped with Fast Startup"
  err_has "$img: $CONFIG/SYSTEM.LOG1: refused: Windows on /dev/sda1 is hibernated"
  err_has "shutdown /s /t 0"
  err_lines 2
  out_has "$img: read $CONFIG/SYSTEM: "
  out_has "$img: remove $GP/none.ini: ok"
  same_bytes "$img" "$WORK/before"
}

# Stale temporary names (what a write killed before its end leaves),
# beside a new file and beside an existing one: removed; an existing file
# named in another case is replaced in place (same inode, no new name).
direct_stale_and_case () {
  part_of "$IMAGES/win.raw" "$WORK/s.p"
  head -c 5000 /dev/urandom >"$WORK/junk"
  ntfscp "$WORK/s.p" "$WORK/junk" "$CONFIG/new.ini.netvsc-patch.tmp" >/dev/null
  ntfscp "$WORK/s.p" "$WORK/junk" "$CONFIG/SOFTWARE.netvsc-patch.tmp" >/dev/null
  img=$WORK/s.raw; cp --sparse=always "$IMAGES/win.raw" "$img"; put_part "$WORK/s.p" "$img"
  inode=$(ntfsinfo -F "$CONFIG/SOFTWARE" "$WORK/s.p" | sed -n 's/^Dumping Inode \([0-9]*\).*/\1/p')
  run 0 "$DF" direct "$img" write "$CONFIG/new.ini" "$WORK/B" write /windows/system32/CONFIG/software "$WORK/A"
  part_of "$img" "$WORK/s2.p"
  [ "$(ntfsls -p "$CONFIG" "$WORK/s2.p" | grep -v '^\.\.\?$' | LC_ALL=C sort | tr '\n' ' ')" = \
    "SOFTWARE SYSTEM SYSTEM.LOG1 SYSTEM.LOG2 new.ini " ]
  has "$WORK/s2.p" "$CONFIG/new.ini" "$WORK/B"
  has "$WORK/s2.p" "$CONFIG/SOFTWARE" "$WORK/A"
  [ "$(ntfsinfo -F "$CONFIG/SOFTWARE" "$WORK/s2.p" | sed -n 's/^Dumping Inode \([0-9]*\).*/\1/p')" = "$inode" ]
  volume_ok "$WORK/s2.p"
}

# The appliance, ONE launch for three images: the prepared raw image gets
# the same sequence plus a replace of SYSTEM, which must keep SYSTEM's
# descriptor and hidden+system attributes (guestfs_setxattr cannot set
# them: image_replace.c's image_set_xattr does); the hibernated image
# refuses; a read-only open reads and refuses, and writes nothing.  Then
# the same checks as for --direct, and the descriptors of what both
# backends created must be identical.
appliance_batch () {
  prepare
  a=$WORK/a.raw; cp --sparse=always "$WORK/prepared.raw" "$a"
  h=$(img_copy hiber.qcow2 ah.qcow2); cp "$h" "$WORK/h.before"
  ro=$(img_copy win.qcow2 aro.qcow2); cp "$ro" "$WORK/ro.before"
  [ -f "$WORK/direct.p" ] || { echo "needs the direct raw case first"; return 1; }
  secs "$WORK/prep.p" "$CONFIG/SYSTEM" >"$WORK/sys.sec.before"
  rm -f "$WORK"/r.*
  t0=$(date +%s.%N)
  # shellcheck disable=SC2046
  run 4 "$DF" appliance "$a" $(sequence) replace SYSTEM "$HIVES/w2008r2.hive" \
    + "$h" write "$INI" "$WORK/A" read "$CONFIG/SYSTEM" "$WORK/h.SYSTEM" remove "$GP/none.ini" \
    + -r "$ro" read "$CONFIG/SOFTWARE" "$WORK/ro.SOFTWARE" read "$INI" "$WORK/r.none" \
      write "$INI" "$WORK/A" remove "$CONFIG/SYSTEM.LOG1"
  t1=$(date +%s.%N)
  { printf '%s\n' "$EXPECTED_OUT" | sed "s|^|$a: |"
    echo "$a: replace SYSTEM: ok"
    echo "$h: write $INI: error 4"
    echo "$h: read $CONFIG/SYSTEM: $(wc -c <"$WORK/h.SYSTEM") bytes"
    echo "$h: remove $GP/none.ini: ok"
    echo "$ro: read $CONFIG/SOFTWARE: $(wc -c <"$HIVES/software.hive") bytes"
    echo "$ro: read $INI: absent"
    echo "$ro: write $INI: error 1"
    echo "$ro: remove $CONFIG/SYSTEM.LOG1: error 1"; } | diff - "$WORK/out"
  err_has "$h: $INI: refused: Windows on /dev/sda1 is hibernated or was stopped with Fast Startup"
  err_has "$ro: $INI: the image was opened read-only"
  err_has "$ro: $CONFIG/SYSTEM.LOG1: the image was opened read-only"
  err_lines 3
  same_bytes "$h" "$WORK/h.before"
  same_bytes "$ro" "$WORK/ro.before"
  cmp "$WORK/ro.SOFTWARE" "$HIVES/software.hive"
  part_of "$a" "$WORK/a.p"
  # SYSTEM is the new hive and kept its descriptor and attributes
  has "$WORK/a.p" "$CONFIG/SYSTEM" "$HIVES/w2008r2.hive"
  secs "$WORK/a.p" "$CONFIG/SYSTEM" >"$WORK/sys.sec.after"
  diff "$WORK/sys.sec.before" "$WORK/sys.sec.after"
  grep -q "Windows attrib : 0x26" "$WORK/sys.sec.after"
  # the rest as for --direct, but SYSTEM changed on purpose
  tree_of "$WORK/a.p" >/dev/null
  cp "$WORK/prep.p" "$WORK/prep.keep"
  ntfscp "$WORK/prep.p" "$HIVES/w2008r2.hive" "$CONFIG/SYSTEM" >/dev/null
  check_sequence "$a" "$WORK/a.p"
  mv "$WORK/prep.keep" "$WORK/prep.p"
  # both backends created the same descriptors and attributes
  secs "$WORK/direct.p" "$GP" "$GP/Machine" "$GP/Machine/Scripts" "$GP/Machine/Scripts/Startup" \
    "$CMD" "$INI" >"$WORK/d.sec"
  secs "$WORK/a.p" "$GP" "$GP/Machine" "$GP/Machine/Scripts" "$GP/Machine/Scripts/Startup" \
    "$CMD" "$INI" >"$WORK/a.sec"
  diff "$WORK/d.sec" "$WORK/a.sec"
  echo "# one appliance launch, 3 images, 24 operations: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
}

if [ ! -x "$DF" ]; then
  echo "$DF is missing: make build/tests/disk-files"; exit 1
fi
check "direct, raw: write into missing dirs (odd case), read, replace shorter/longer, remove twice, absent; read-only open writes nothing" \
  direct_sequence raw
check "direct, qcow2: the same; qemu-img check" direct_sequence qcow2
check "direct: bad paths, one line each, not a byte written" direct_errors
check "direct: hibernated Windows refuses writes (exit 4), reads fine, bytes unchanged" direct_hibernated
check "direct: stale temporary names removed, existing file in another case replaced in place" \
  direct_stale_and_case
check "appliance, one launch: the same sequence + replace keeps SYSTEM's descriptor; hibernated; read-only; same descriptors as --direct" \
  appliance_batch
finish
