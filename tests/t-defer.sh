#!/bin/bash
# --defer: the boot-time action in the image's local Group Policy
# object, with the appliance (three launches) and with --direct.  The
# files are read back without the tool (tests/extract-hive.sh: qemu-img
# + sfdisk + ntfscat), scripts.ini decoded with iconv.
. "$(dirname "$0")/lib.sh"
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"

IMAGES=$FIXTURES/images
HIVES=$FIXTURES/hives
KEY1="$CLASS\\0001"
GPO=/Windows/System32/GroupPolicy
CONFIG=/Windows/System32/config
SCRIPTS_CSE='[{42B5FAAE-6536-11D2-AE5A-0000F87571E3}{40B6664F-4972-11D1-A7CA-0000F87571E3}]'

# not CMD...: CMD fails (a bare "! CMD" would not stop a case: errexit
# ignores it).
not () { if "$@"; then echo "unexpectedly true: $*"; return 1; fi; }
img_copy () { cp --sparse=always "$IMAGES/$1" "$WORK/$1"; echo "$WORK/$1"; }
extract () { sh "$TOP/tests/extract-hive.sh" "$@" 2>/dev/null; }

# gpo IMAGE: the action's four files out of IMAGE into $WORK/gpo/ (a
# file the image lacks is absent there); scripts.ini also as UTF-8.
gpo () {
  rm -rf "$WORK/gpo"; mkdir -p "$WORK/gpo"
  for f in gpt.ini Machine/Scripts/scripts.ini Machine/Scripts/Startup/netvsc-patch.ps1 \
           Machine/Scripts/Startup/netvsc-patch.cmd; do
    HIVE_PATH=$GPO/$f extract "$1" "$WORK/gpo/${f##*/}" || rm -f "$WORK/gpo/${f##*/}"
  done
  if [ -f "$WORK/gpo/scripts.ini" ]; then
    iconv -f UTF-16 -t UTF-8 "$WORK/gpo/scripts.ini" | tr -d '\r' >"$WORK/gpo/scripts.txt"
  fi
}

# The script sets VALUES (lines "Name|Type|Data" as the template lists
# them) and nothing else, matching as asked, in CRLF UTF-8 with a BOM.
script_sets () {
  ps1=$WORK/gpo/netvsc-patch.ps1
  [ "$(head -c 3 "$ps1" | od -An -tx1 | tr -d ' ')" = efbbbf ]
  [ "$(grep -c $'\r$' "$ps1")" -eq "$(wc -l <"$ps1")" ]
  grep -q "^\\\$MatchKind = '$1'" "$ps1" || { echo "match kind is not $1:"; grep MatchKind "$ps1" | head -2; return 1; }
  shift
  n=0
  for v in "$@"; do
    name=${v%%|*}; rest=${v#*|}; type=${rest%%|*}; data=${rest#*|}
    grep -qF "Name = '$name'; Type = '$type'; Data = $data;" "$ps1" ||
      { echo "no value $name $type $data in:"; grep "Name = " "$ps1"; return 1; }
    n=$((n + 1))
  done
  [ "$(grep -c "Name = '" "$ps1")" -eq "$n" ]
  cmd_loader "$WORK/gpo/netvsc-patch.cmd"
}

# The .cmd launches PowerShell with -EncodedCommand (never -File, which
# an execution policy set by Group Policy blocks), on a line shorter than
# cmd.exe's 8191, and the encoded text (UTF-16LE, base64, decoded here
# with coreutils and iconv) is the loader that reads the script.
cmd_loader () {
  not grep -q -- '-File\|-ExecutionPolicy' "$1"
  line=$(grep -a -- '^"%NP_PS%" -NoProfile -NonInteractive -EncodedCommand ' "$1")
  [ "${#line}" -lt 8191 ]
  b64=${line#* -EncodedCommand }; b64=${b64%% *}
  loader=$(printf '%s' "$b64" | base64 -d | iconv -f UTF-16LE -t UTF-8)
  [ "$loader" = "\$f = Join-Path \$env:SystemRoot 'System32\\GroupPolicy\\Machine\\Scripts\\Startup\\netvsc-patch.ps1'; & ([scriptblock]::Create([System.IO.File]::ReadAllText(\$f))); exit \$LASTEXITCODE" ] ||
    { echo "loader: $loader"; return 1; }
  case $line in *' && exit /b 0 || exit /b 1'$'\r') ;; *) echo "line: $line"; return 1 ;; esac
}

# The appliance: a template with no Hyper-V adapter and someone else's
# startup script; install, install again (nothing written), remove.
appliance_template () {
  img=$(img_copy template.qcow2)
  extract "$img" "$WORK/SYSTEM.before"
  run 0 "$N" --defer -r 4M -s 4M --set '*JumboPacket=9014' "$img"
  out_has "no matching adapter yet; the boot-time action will set the values when Windows creates it"
  out_has "boot-time action installed: %SystemRoot%\\System32\\GroupPolicy\\Machine\\Scripts\\Startup\\netvsc-patch.ps1"
  out_has "Intel(R) PRO/1000 MT Network Connection"
  gpo "$img"
  # ours registered after the existing one, which is kept
  printf '%s\n' '' '[Startup]' '0CmdLine=inventory.cmd' '0Parameters=/quiet' \
    '1CmdLine=netvsc-patch.cmd' '1Parameters=' | diff - "$WORK/gpo/scripts.txt"
  # the scripts extension added in order, the machine version bumped
  grep -qx $'Version=65538\r' "$WORK/gpo/gpt.ini"
  grep -qF "gPCMachineExtensionNames=[{35378EAC-683F-11D2-A89A-00C04FBBCFA2}{D02B1F72-3407-48AE-BA88-E8213C6761F1}]$SCRIPTS_CSE" "$WORK/gpo/gpt.ini"
  script_sets netvsc 'ReceiveBufferSize|DWord|4096' 'SendBufferSize|DWord|4096' \
    "*JumboPacket|String|'9014'"
  # the hive is not touched: there is nothing to patch offline
  extract "$img" "$WORK/SYSTEM.after"
  same_bytes "$WORK/SYSTEM.before" "$WORK/SYSTEM.after"
  qemu-img check -q "$img"

  # again: installed once, nothing written at all
  cp --sparse=always "$img" "$WORK/once"
  run 0 "$N" --defer -r 4M -s 4M --set '*JumboPacket=9014' --json "$img"
  python3 - "$WORK/out" <<'P'
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["status"] == "deferred" and o["exit_code"] == 0, o
assert o["defer"]["action"] == "in-place", o["defer"]
assert o["defer"]["log"] == "%SystemRoot%\\Temp\\netvsc-patch.log", o["defer"]
P
  same_bytes "$img" "$WORK/once"

  # --remove: ours out, theirs kept, the policy reprocessed
  run 0 "$N" --remove "$img"
  out_has "boot-time action removed"
  gpo "$img"
  printf '%s\n' '' '[Startup]' '0CmdLine=inventory.cmd' '0Parameters=/quiet' \
    | diff - "$WORK/gpo/scripts.txt"
  grep -qx $'Version=65539\r' "$WORK/gpo/gpt.ini"
  [ ! -e "$WORK/gpo/netvsc-patch.ps1" ] && [ ! -e "$WORK/gpo/netvsc-patch.cmd" ]
  HIVE_PATH=$GPO/Machine/Scripts/Startup/inventory.cmd extract "$img" "$WORK/inventory.cmd"
  grep -q inventory "$WORK/inventory.cmd"
  qemu-img check -q "$img"
}

# Without --defer, exit 3 says what to do.
no_adapter_points_at_defer () {
  img=$(img_copy template.qcow2); cp --sparse=always "$img" "$WORK/orig"
  run 3 "$N" --direct -r 4M "$img"
  err_has "Windows creates the Hyper-V adapter when it first boots on Hyper-V: --defer installs a boot-time action that sets the values then"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
}

# --direct, an image whose adapter exists: patched now, and the action
# installed for adapters added later; dry run and --check first.
direct_existing_adapter () {
  img=$(img_copy win.raw); cp --sparse=always "$img" "$WORK/orig"
  run 0 "$N" --direct --defer -r 2M --dry-run "$img"
  out_has "would patch"
  out_has "boot-time action would be installed"
  same_bytes "$img" "$WORK/orig"
  run 5 "$N" --direct --defer -r 2M --check "$img"
  same_bytes "$img" "$WORK/orig"
  run 0 "$N" --direct --defer -r 2M --set 'Note=it'"'"'s' --match netvsc "$img"
  out_has "patched, 1 adapter matched"
  out_has "boot-time action installed"
  extract "$img" "$WORK/SYSTEM"
  [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = 2048 ]
  gpo "$img"
  printf '%s\n' '[Startup]' '0CmdLine=netvsc-patch.cmd' '0Parameters=' | diff - <(grep . "$WORK/gpo/scripts.txt")
  [ "$(head -c 2 "$WORK/gpo/scripts.ini" | od -An -tx1 | tr -d ' ')" = fffe ]
  printf '%s\r\n' '[General]' 'gPCFunctionalityVersion=2' "gPCMachineExtensionNames=$SCRIPTS_CSE" \
    'Version=1' | diff - "$WORK/gpo/gpt.ini"
  script_sets netvsc 'ReceiveBufferSize|DWord|2048' "Note|String|'it''s'"
  run 0 "$N" --direct --defer -r 2M --set 'Note=it'"'"'s' --check "$img"
  # other values: only the script changes
  run 0 "$N" --direct --defer -r 4M --set 'Note=it'"'"'s' "$img"
  out_has "boot-time action updated with these values"
  cp "$WORK/gpo/gpt.ini" "$WORK/gpt.before"
  gpo "$img"
  same_bytes "$WORK/gpt.before" "$WORK/gpo/gpt.ini"
  script_sets netvsc 'ReceiveBufferSize|DWord|4096' "Note|String|'it''s'"
  ntfsfix -n "$img" >/dev/null 2>&1 || { dd if="$img" of="$WORK/p" bs=512 skip=2048 count=129024 status=none; ntfsfix -n "$WORK/p" >/dev/null; }
}

# Quoting of a match argument that holds quotes: only in single quotes.
direct_quoting () {
  img=$(img_copy template.qcow2)
  run 0 "$N" --direct --defer --match "desc:O'Brien’s \"NIC\" \$(x)" --set 'A=1' "$img"
  gpo "$img"
  grep -qF "\$MatchKind = 'desc'" "$WORK/gpo/netvsc-patch.ps1"
  grep -qF "\$MatchArg = 'O''Brien’’s \"NIC\" \$(x)'" "$WORK/gpo/netvsc-patch.ps1"
  script_sets desc "A|String|'1'"
  # the template's GROUPPOLICY\machine\scripts was found whatever its
  # case: registered beside the other script, no second directory made
  printf '%s\n' '' '[Startup]' '0CmdLine=inventory.cmd' '0Parameters=/quiet' \
    '1CmdLine=netvsc-patch.cmd' '1Parameters=' | diff - "$WORK/gpo/scripts.txt"
  qemu-img convert -f qcow2 -O raw "$img" "$WORK/t.raw"
  dd if="$WORK/t.raw" of="$WORK/t.part" bs=512 skip=2048 status=none
  [ "$(ntfsls -p /Windows/System32 "$WORK/t.part" | grep -ci '^grouppolicy$')" -eq 1 ]
  [ "$(ntfsls -p /Windows/System32/GROUPPOLICY/machine/scripts/STARTUP "$WORK/t.part" | grep -v '^\.\.\?$' | LC_ALL=C sort | tr '\n' ' ')" = \
    "inventory.cmd netvsc-patch.cmd netvsc-patch.ps1 " ]
  ntfsfix -n "$WORK/t.part" >/dev/null
}

# --set in an image: refused values leave the image as it was, even with
# --defer (nothing is installed either); allowed ones are written.
direct_set_in_image () {
  img=$(img_copy win.qcow2); cp --sparse=always "$img" "$WORK/orig"
  run 2 "$N" --direct --defer --set '*JumboPacket=9000' "$img"
  err_has "$img: ControlSet001\\...\\0001: the driver does not allow *JumboPacket=9000: not one of 1514, 4088, 9014"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
  run 0 "$N" --direct --set '*JumboPacket=9014' "$img"
  extract "$img" "$WORK/SYSTEM"
  [ "$(regf_value "$WORK/SYSTEM" "$KEY1" '*JumboPacket')" = "REG_SZ 9014" ]
  export_diff "$HIVES/ws2019.hive" "$WORK/SYSTEM" >"$WORK/diff"
  [ "$(grep -c '^[<>]' "$WORK/diff")" -eq 2 ]
}

# The action's files in partition file PART, into DIR (absent: absent).
gpo_part () {
  local f at
  rm -rf "$2"; mkdir -p "$2"
  for f in gpt.ini Machine/Scripts/scripts.ini Machine/Scripts/Startup/netvsc-patch.ps1 \
           Machine/Scripts/Startup/netvsc-patch.cmd; do
    if at=$(ntfs_spelt "$1" "$GPO/$f"); then ntfscat "$1" "$at" >"$2/${f##*/}"; fi
  done
}
part_raw () {   # part_raw IMAGE FORMAT OUT: the first partition as a file
  qemu-img convert -U -f "$2" -O raw "$1" "$WORK/whole.raw"
  dd if="$WORK/whole.raw" of="$3" bs=512 skip=2048 status=none
  rm -f "$WORK/whole.raw"
}

# SIGKILL --direct --defer at many moments (random, over the window in
# which a timed verbose run writes the guest's files).  What the design
# guarantees, checked after every kill: each of the action's files that
# reads back is the old one or the new one, byte for byte, never a
# partial one under its final name; scripts.ini registers the script
# only once both script files are complete; SYSTEM is the original or
# the patched hive; and a rerun completes the install.  What it does not:
# libntfs-3g creates, links and deletes a name in several writes, so a
# kill between two can leave NTFS metadata (a directory index, $MFTMirr)
# that ntfs-3g refuses until chkdsk or ntfsfix repairs it (man page,
# DIRECT MODE).  Those kills are counted and reported, not failed.
defer_kills () {
  fmt=$1 src=$IMAGES/$2 n=$3
  part_raw "$src" "$fmt" "$WORK/p"; gpo_part "$WORK/p" "$WORK/orig"
  ntfscat "$WORK/p" "$CONFIG/SYSTEM" >"$WORK/orig.hive"
  cp --sparse=always "$src" "$WORK/ref"
  "$N" -q --direct --defer -r 4M -s 4M "$WORK/ref"
  part_raw "$WORK/ref" "$fmt" "$WORK/p"; gpo_part "$WORK/p" "$WORK/new"
  ntfscat "$WORK/p" "$CONFIG/SYSTEM" >"$WORK/new.hive"
  [ -s "$WORK/new/netvsc-patch.ps1" ] && [ -s "$WORK/new/netvsc-patch.cmd" ]
  cp --sparse=always "$src" "$WORK/cal"
  timeline "$N" --direct --defer -v -r 4M -s 4M "$WORK/cal" >"$WORK/timeline"
  w0=$(awk '/GroupPolicy|GROUPPOLICY/{print $1; exit}' "$WORK/timeline")
  w1=$(awk '/ end$/{print $1; exit}' "$WORK/timeline")
  [ -n "$w0" ] && [ -n "$w1" ]
  torn=0 done=0 mid=0 damaged=0
  : >"$WORK/damage.points"
  for i in $(seq 1 "$n"); do
    img=$WORK/k
    cp --sparse=always "$src" "$img"
    d=$(( w0 - 2000 + RANDOM * (w1 - w0 + 2000) / 32768 ))
    "$N" --direct --defer -v -r 4M -s 4M "$img" >/dev/null 2>"$WORK/klog" &
    pid=$!
    sleep "$(printf '0.%06d' "$d")"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    last=$(sed -n '/: direct: /{s/.*: direct: //; s/ (inode.*//; s/ ([0-9]* bytes)//; p}' "$WORK/klog" | tail -1)
    unlocked=no
    for _ in $(seq 1 50); do
      if qemu-io -f "$fmt" -c quit "$img" >/dev/null 2>&1; then unlocked=yes; break; fi
      sleep 0.1
    done
    [ "$unlocked" = yes ] || { echo "kill $i ($last): image still locked"; exit 1; }
    part_raw "$img" "$fmt" "$WORK/p"
    ok=yes
    ntfsfix -n "$WORK/p" >/dev/null 2>&1 || ok=no
    if ntfscat "$WORK/p" "$CONFIG/SYSTEM" >"$WORK/k.hive" 2>/dev/null; then
      cmp -s "$WORK/k.hive" "$WORK/orig.hive" || cmp -s "$WORK/k.hive" "$WORK/new.hive" ||
        { echo "kill $i ($last): SYSTEM is neither hive"; exit 1; }
    else ok=no; fi
    rm -rf "$WORK/k.gpo"; mkdir -p "$WORK/k.gpo"
    for f in gpt.ini Machine/Scripts/scripts.ini Machine/Scripts/Startup/netvsc-patch.ps1 \
             Machine/Scripts/Startup/netvsc-patch.cmd; do
      b=${f##*/}
      if at=$(ntfs_spelt "$WORK/p" "$GPO/$f"); then
        if ! ntfscat "$WORK/p" "$at" >"$WORK/k.gpo/$b" 2>/dev/null; then
          ok=no; rm -f "$WORK/k.gpo/$b"; continue
        fi
        cmp -s "$WORK/k.gpo/$b" "$WORK/orig/$b" || cmp -s "$WORK/k.gpo/$b" "$WORK/new/$b" ||
          { echo "kill $i after ${d}us ($last): $b is neither the old nor the new one"; exit 1; }
      elif [ -e "$WORK/orig/$b" ] && [ "$ok" = yes ]; then
        echo "kill $i ($last): $b vanished"; exit 1
      fi
    done
    if [ -e "$WORK/k.gpo/scripts.ini" ] && cmp -s "$WORK/k.gpo/scripts.ini" "$WORK/new/scripts.ini" &&
       ! cmp -s "$WORK/orig/scripts.ini" "$WORK/new/scripts.ini" 2>/dev/null; then
      cmp -s "$WORK/k.gpo/netvsc-patch.ps1" "$WORK/new/netvsc-patch.ps1" &&
        cmp -s "$WORK/k.gpo/netvsc-patch.cmd" "$WORK/new/netvsc-patch.cmd" ||
        { echo "kill $i ($last): registered before its files were complete"; exit 1; }
    fi
    if [ "$ok" = no ]; then
      damaged=$((damaged + 1)); echo "${last:-starting}" >>"$WORK/damage.points"
      continue
    fi
    # Damage ntfsfix -n does not see (an index entry whose inode ntfs-3g
    # cannot read) shows when the rerun meets it: one line, the I/O
    # error named, exit 1; counted like the rest.
    set +e
    "$N" --direct --defer -r 4M -s 4M "$img" >"$WORK/out" 2>"$WORK/err"
    got=$?
    set -e
    if [ "$got" -eq 1 ] && grep -q 'Input/output error' "$WORK/err" &&
       [ "$(wc -l <"$WORK/err")" -eq 1 ]; then
      damaged=$((damaged + 1)); echo "${last:-starting} (seen by the rerun)" >>"$WORK/damage.points"
      continue
    fi
    [ "$got" -eq 0 ] || { echo "kill $i ($last): rerun exit $got"; cat "$WORK/err"; exit 1; }
    if cmp -s "$WORK/k.gpo/gpt.ini" "$WORK/new/gpt.ini"; then done=$((done + 1))
    elif [ -e "$WORK/k.gpo/netvsc-patch.ps1" ]; then mid=$((mid + 1))
    else torn=$((torn + 1)); fi
    part_raw "$img" "$fmt" "$WORK/p"
    ntfsfix -n "$WORK/p" >/dev/null 2>&1 || { echo "kill $i ($last): ntfsfix -n after the rerun"; exit 1; }
    gpo_part "$WORK/p" "$WORK/k.gpo"
    for f in gpt.ini scripts.ini netvsc-patch.ps1 netvsc-patch.cmd; do
      cmp "$WORK/k.gpo/$f" "$WORK/new/$f"
    done
  done
  echo "# $2: the files are written from ${w0}us to ${w1}us; $n kills: $torn before any file," \
       "$mid with some files written, $done after the last (each then completed by a rerun);" \
       "$damaged left NTFS metadata for chkdsk"
  if [ "$damaged" -gt 0 ]; then
    echo "# kills that left metadata for chkdsk, by step: $(sort "$WORK/damage.points" | uniq -c | sed 's/^ *//' | tr '\n' ';')"
  fi
  [ $((torn + mid + done)) -gt 0 ]
}

# What such a kill can leave, made on purpose: $MFTMirr's copy of
# record 0 differs from $MFT's.  --direct says the volume needs repair
# (not "no Windows"), writes nothing; after ntfsfix it works.
damaged_metadata () {
  img=$(img_copy win.raw)
  python3 - "$img" <<'P'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    base = 2048 * 512
    f.seek(base); bs = f.read(512)
    cluster = struct.unpack_from("<H", bs, 0x0b)[0] * bs[0x0d]
    at = base + struct.unpack_from("<Q", bs, 0x38)[0] * cluster + 0x100
    f.seek(at); b = f.read(1); f.seek(at); f.write(bytes([b[0] ^ 0xff]))
P
  cp --sparse=always "$img" "$WORK/orig"
  run 1 "$N" --direct --defer -r 4M "$img"
  err_has "$img: the NTFS filesystem on /dev/sda1 (Input/output error) cannot be read: it needs repair (chkdsk in Windows, or ntfsfix)"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
  dd if="$img" of="$WORK/p" bs=512 skip=2048 status=none
  ntfsfix "$WORK/p" >/dev/null
  dd if="$WORK/p" of="$img" bs=512 seek=2048 conv=notrunc status=none
  run 0 "$N" --direct --defer -r 4M "$img"
  out_has "boot-time action installed"
}

# seed_scripts IMAGE.qcow2 TEXT: IMAGE (a copy of template.qcow2) with
# its scripts.ini replaced by TEXT (backslash escapes, CRLF) in UTF-16LE
# with a BOM, written with ntfscp (not the tool); IMAGE becomes raw.
seed_scripts () {
  part_raw "$1" qcow2 "$WORK/p"
  { printf '\377\376'; printf '%b' "$2" | iconv -f UTF-8 -t UTF-16LE; } >"$WORK/seed.ini"
  at=$(ntfs_spelt "$WORK/p" "$GPO/Machine/Scripts/scripts.ini")
  ntfscp -f "$WORK/p" "$WORK/seed.ini" "$at" >/dev/null
  qemu-img convert -f qcow2 -O raw "$1" "$1.raw"
  dd if="$WORK/p" of="$1.raw" bs=512 seek=2048 conv=notrunc status=none
  mv "$1.raw" "$1"
}

# scripts.ini with a gap and someone else's entries: nothing renumbered,
# an entry Windows skips today (after a gap) stays asleep; ours at the
# first free number; --remove gives back the very same bytes; where ours
# would wake a sleeping entry, exit 4 and nothing written.
direct_scripts_gaps () {
  img=$WORK/gaps.img; cp --sparse=always "$IMAGES/template.qcow2" "$img"
  seed_scripts "$img" '[Startup]\r\n0CmdLine=inventory.cmd\r\n0Parameters=/quiet\r\n; note\r\n3CmdLine=asleep.cmd\r\n3Parameters=-x\r\n'
  cp "$WORK/seed.ini" "$WORK/seed.before"
  run 0 "$N" --direct --defer=once -r 4M "$img"
  out_has "boot-time action installed"
  gpo "$img"
  printf '%s\n' '[Startup]' '0CmdLine=inventory.cmd' '0Parameters=/quiet' '; note' \
    '3CmdLine=asleep.cmd' '3Parameters=-x' '1CmdLine=netvsc-patch.cmd' '1Parameters=' \
    | diff - "$WORK/gpo/scripts.txt"
  grep -qx $'\\$Mode = \'once\'\r' "$WORK/gpo/netvsc-patch.ps1"
  # installing again: in place (ours runs), nothing renumbered
  run 0 "$N" --direct --defer=once -r 4M "$img"
  out_has "already installed"
  run 0 "$N" --direct --remove "$img"
  out_has "boot-time action removed"
  gpo "$img"
  same_bytes "$WORK/seed.before" "$WORK/gpo/scripts.ini"

  # a gap one number wide: ours at 1 would wake 2
  img=$WORK/gap1.img; cp --sparse=always "$IMAGES/template.qcow2" "$img"
  seed_scripts "$img" '[Startup]\r\n0CmdLine=inventory.cmd\r\n0Parameters=\r\n2CmdLine=asleep.cmd\r\n2Parameters=\r\n'
  cp --sparse=always "$img" "$WORK/orig"
  run 4 "$N" --direct --defer -r 4M "$img"
  err_has "scripts.ini: [Startup] skips a number and an entry follows it: Windows does not run that entry today, and ours in the gap would wake it; left alone, the boot-time action not installed (fix the numbering first)"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
}

# --defer=setup (--direct): the script and its cmd in
# \Windows\Setup\Scripts, our call first in a SetupComplete.cmd the tool
# creates; switching to --defer moves it to the startup script; --remove
# leaves neither; read back with ntfscat, not the tool.
direct_setup () {
  img=$(img_copy template.qcow2)
  run 0 "$N" --direct --defer=setup -r 4M "$img"
  out_has "boot-time action installed: %SystemRoot%\\Setup\\Scripts\\netvsc-patch.ps1"
  out_has "called from SetupComplete.cmd: once, at the end of Windows Setup"
  part_raw "$img" qcow2 "$WORK/p"
  at=$(ntfs_spelt "$WORK/p" /Windows/Setup/Scripts/SetupComplete.cmd)
  printf '%s\r\n' 'rem netvsc-patch --defer=setup: begin' \
    'call "%SystemRoot%\Setup\Scripts\netvsc-patch.cmd"' 'rem netvsc-patch --defer=setup: end' \
    | cmp - <(ntfscat "$WORK/p" "$at")
  ntfscat "$WORK/p" "$(ntfs_spelt "$WORK/p" /Windows/Setup/Scripts/netvsc-patch.ps1)" >"$WORK/s.ps1"
  grep -qx $'\\$Mode = \'setup\'\r' "$WORK/s.ps1"
  ntfscat "$WORK/p" "$(ntfs_spelt "$WORK/p" /Windows/Setup/Scripts/netvsc-patch.cmd)" >"$WORK/s.cmd"
  line=$(grep -a -- '^"%NP_PS%" -NoProfile -NonInteractive -EncodedCommand ' "$WORK/s.cmd")
  b64=${line#* -EncodedCommand }; b64=${b64%% *}
  printf '%s' "$b64" | base64 -d | iconv -f UTF-16LE -t UTF-8 | grep -qF "'Setup\\Scripts\\netvsc-patch.ps1'"
  # the startup script of the template is not registered
  gpo "$img"
  not grep -qi netvsc-patch "$WORK/gpo/scripts.txt"
  # switching to every boot: registered there, ours out of SetupComplete
  run 0 "$N" --direct --defer -r 4M "$img"
  out_has "boot-time action installed"
  gpo "$img"
  grep -qx '1CmdLine=netvsc-patch.cmd' "$WORK/gpo/scripts.txt"
  part_raw "$img" qcow2 "$WORK/p"
  not ntfs_spelt "$WORK/p" /Windows/Setup/Scripts/SetupComplete.cmd
  not ntfs_spelt "$WORK/p" /Windows/Setup/Scripts/netvsc-patch.ps1
  run 0 "$N" --direct --remove "$img"
  gpo "$img"
  not grep -qi netvsc-patch "$WORK/gpo/scripts.txt"
  [ ! -e "$WORK/gpo/netvsc-patch.ps1" ]
  ntfsfix -n "$WORK/p" >/dev/null
}

defer_usage () {
  h=$(hive_copy ws2019); cp "$h" "$WORK/orig"
  for args in "--hive $h --defer -r 2M" "--defer --list $IMAGES/win.raw" \
              "--defer --remove $IMAGES/win.raw" "--defer $IMAGES/win.raw" \
              "--defer=sometimes -r 2M $IMAGES/win.raw" "--defer= -r 2M $IMAGES/win.raw"; do
    # shellcheck disable=SC2086
    run 2 "$N" $args
    err_has "Try 'netvsc-patch --help'"
  done
  same_bytes "$h" "$WORK/orig"
}

# scripts.ini made 3 GB (sparse, ntfstruncate) in the image: refused
# unread (a file --defer reads holds a few KB; reading it whole would
# take 3 GB of memory), in one line, the image unchanged.
direct_huge_ini () {
  img=$WORK/hugeini.img; cp --sparse=always "$IMAGES/template.qcow2" "$img"
  seed_scripts "$img" '[Startup]\r\n'
  part_raw "$img" raw "$WORK/p"
  at=$(ntfs_spelt "$WORK/p" "$GPO/Machine/Scripts/scripts.ini")
  ino=$(ntfsls -i -p "${at%/*}" "$WORK/p" | awk -v n="${at##*/}" '$2 == n {print $1}')
  ntfstruncate "$WORK/p" "$ino" 0x80 "" 3221225472 >/dev/null 2>&1
  dd if="$WORK/p" of="$img" bs=512 seek=2048 conv=notrunc status=none
  cp --sparse=always "$img" "$WORK/hugeini.before"
  run 1 /usr/bin/time -f '%M' -o "$WORK/hugeini.kb" "$N" --direct --defer=once -r 4M "$img"
  err_has "$img: boot-time action: $GPO/Machine/Scripts/scripts.ini: larger than 4 MB: not read"
  [ "$(grep -c . "$WORK/err")" -eq 1 ]
  kb=$(tail -1 "$WORK/hugeini.kb")
  [ "$kb" -lt 262144 ] || { echo "peak memory $kb KB"; return 1; }
  same_bytes "$img" "$WORK/hugeini.before"
  # the appliance (one launch): the same, by the file's size
  run 1 "$N" --defer=once -r 4M "$img"
  err_has "$img: boot-time action: $GPO/Machine/Scripts/scripts.ini: larger than 4 MB: not read"
  same_bytes "$img" "$WORK/hugeini.before"
  rm -f "$WORK/p"
}

check "--defer usage errors" defer_usage
check "no adapter: exit 3 points at --defer" no_adapter_points_at_defer
check "--direct: adapter patched and action installed; dry run, --check, update" direct_existing_adapter
check "--set in an image: refusal leaves it unchanged, allowed value written" direct_set_in_image
check "--direct: a match argument with quotes stays in single quotes" direct_quoting
check "--direct: --defer=setup: SetupComplete.cmd created with our call; switched to --defer; --remove" direct_setup
check "--direct: scripts.ini with a gap and others' entries: none renumbered or woken; --remove restores it" direct_scripts_gaps
check "--direct: NTFS metadata to repair: says so, writes nothing; fine after ntfsfix" damaged_metadata
check "--defer: a 3 GB scripts.ini refused unread, image unchanged (--direct, appliance)" direct_huge_ini
check "--direct --defer: SIGKILL at 30 moments (template: ini files replaced, scripts created)" defer_kills qcow2 template.qcow2 30
check "--direct --defer: SIGKILL at 30 moments (no GPO yet: directories created)" defer_kills raw win.raw 30
check "appliance: template without adapter: install, again (nothing written), --remove" appliance_template
finish
