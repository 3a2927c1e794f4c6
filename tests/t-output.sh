#!/bin/bash
# What the tool prints and reads as lists, whatever the bytes: control
# characters from the guest's registry and from file names are escaped
# in text (never a raw ESC on the terminal), JSON is valid and ASCII with
# file names that can be had back byte for byte, --from splits lines only
# at a tab (spaces belong to the path), -0/--null takes find -print0
# lists, a NUL in a line list is an error, and a closed standard output
# (| head) stops a batch with a message instead of a silent SIGPIPE.
# Hive mode, and --direct for the image cases (no appliance launch).
# Results are read back without the tool: hivexget on the hive, and
# tests/extract-hive.sh (qemu-img + ntfscat) for images.
. "$(dirname "$0")/lib.sh"
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"

IMAGES=$FIXTURES/images
KEY1="$CLASS\\0001"
extract () { sh "$TOP/tests/extract-hive.sh" "$@" 2>/dev/null; }

# no_raw FILE: FILE holds no raw control character a terminal acts on
# (C0 but newline, DEL, and the C1 range as UTF-8 or as lone bytes).
no_raw () {
  if LC_ALL=C grep -n $'[\x01-\x09\x0b-\x1f\x7f]' "$1"; then
    echo "raw control characters in $1"; od -c "$1" | head -20; return 1
  fi
  if LC_ALL=C grep -n $'\xc2[\x80-\x9f]' "$1"; then echo "raw C1 in $1"; return 1; fi
}

# json_lines FILE: every line is a JSON object, and the file is ASCII.
json_lines () {
  python3 - "$1" <<'PY'
import json, sys
data = open(sys.argv[1], "rb").read()
assert data and all(b < 0x80 for b in data), "not ASCII"
for line in data.decode("ascii").splitlines():
    assert isinstance(json.loads(line), dict), line
PY
}

# The file-name rule of netvsc-patch(1), JSON OUTPUT, undone: \\ is a
# backslash, \xNN the byte NN, anything else its UTF-8 (python3 with
# PYTHONPATH=$WORK: from undo import undo).
cat >"$WORK/undo.py" <<'PY'
def undo(s):
    out, i = bytearray(), 0
    while i < len(s):
        if s[i] == "\\":
            if s[i + 1] == "\\":
                out += b"\\"; i += 2; continue
            assert s[i + 1] == "x", s
            out.append(int(s[i + 2:i + 4], 16)); i += 4; continue
        out += s[i].encode("utf-8"); i += 1
    return bytes(out)
PY

guest_control_chars () {
  # escapes.reg: DriverDesc with ESC [31m, BEL and CR; enum choices with
  # an OSC title (ESC ] ... BEL) and a C1 CSI; a REG_SZ with TAB and BS
  h=$(hive_copy escapes)
  cp "$h" "$WORK/orig"
  run 0 "$N" --hive "$h" --list
  no_raw "$WORK/out"
  out_has 'Evil \x1b[31mNIC\a\rHyper-V'
  out_has '1514 (Disabled\x1b]0;pwned\a), 9014 (9014 \u009b31m Bytes)'
  out_has '2048\t\b'
  # an unpaired UTF-16 surrogate: not converted, shown as unknown
  out_has '  ControlSet001  0002   no     -             -             ? [pci\ven_8086&dev_100f]'
  [ "$(LC_ALL=C grep -c $'\x1b' "$WORK/out")" -eq 0 ]
  # the same strings in a plan and in the refusal on stderr
  run 0 "$N" --hive "$h" -r 4M --dry-run
  no_raw "$WORK/out"
  out_has 'ControlSet001\Control\Class\{4d36e972-...}\0001  Evil \x1b[31mNIC\a\rHyper-V'
  out_has 'REG_SZ "2048\t\b" -> 0x1000 (4096 KB)'
  run 2 "$N" --hive "$h" --set '*JumboPacket=4088'
  no_raw "$WORK/err"
  err_has "the driver does not allow *JumboPacket=4088: not one of 1514, 9014"
  # JSON: valid, ASCII, and the strings come back exactly as the guest has them
  run 0 "$N" --hive "$h" --list --json
  json_lines "$WORK/out"
  python3 - "$WORK/out" <<'PY'
import json, sys
o = json.loads(open(sys.argv[1]).read())
a, b = o["adapters"]
assert a["description"] == "Evil \x1b[31mNIC\x07\rHyper-V", a["description"]
p = a["advanced"][0]
assert p["description"] == "Jumbo\x1b[2J Packet", p
assert [c["description"] for c in p["choices"]] == ["Disabled\x1b]0;pwned\x07", "9014 \x9b31m Bytes"]
assert a["receive_buffer"] == {"type": "REG_SZ", "kb": None, "dword": None, "text": "2048\t\x08"}, a["receive_buffer"]
assert b["description"] is None and b["matching_device_id"] == "pci\\ven_8086&dev_100f", b
PY
  same_bytes "$h" "$WORK/orig"
}

name_bytes () {
  # a file name with invalid UTF-8, ESC, a tab and a literal backslash-x
  name=$WORK/$'bad\xff\xfe name\x1b[1m\tq\\x41.hive'
  cp "$FIXTURES/hives/ws2019.hive" "$name"
  run 0 "$N" --hive "$name" -r 4M --json
  json_lines "$WORK/out"
  PYTHONPATH=$WORK python3 - "$WORK/out" "$name" <<'PY'
import json, os, sys
from undo import undo
o = json.loads(open(sys.argv[1]).read())
want = os.fsencode(sys.argv[2])
assert undo(o["target"]) == want, (o["target"], want)
assert undo(o["output"]) == want, o["output"]
assert o["status"] == "patched", o
assert o["target"].endswith("/bad\\xff\\xfe name\x1b[1m\tq\\\\x41.hive"), o["target"]
PY
  [ "$(hget "$name" "$KEY1" ReceiveBufferSize)" = 4096 ]
  # text: the name escaped, nothing raw
  run 0 "$N" --hive "$name" -s 4M --dry-run
  no_raw "$WORK/out"
  if LC_ALL=C grep -q $'\xff' "$WORK/out"; then echo "raw 0xff byte"; exit 1; fi
  out_has 'bad\xff\xfe name\x1b[1m\tq\x41.hive: would patch'
  # error lines too: a missing file with such a name
  run 1 "$N" --hive "$WORK/"$'gone\x1b]0;x\a\xc3.hive' -r 4M
  no_raw "$WORK/err"
  err_has 'gone\x1b]0;x\a\xc3.hive: No such file or directory'
  run 1 "$N" --hive "$WORK/"$'gone\x1b]0;x\a\xc3.hive' -r 4M --json
  json_lines "$WORK/out"
  PYTHONPATH=$WORK python3 - "$WORK/out" <<'PY'
import json, sys
from undo import undo
o = json.loads(open(sys.argv[1]).read())
assert undo(o["target"]).endswith(b"/gone\x1b]0;x\x07\xc3.hive"), o
assert o["status"] == "error" and "\\xc3" in o["error"], o
PY
}

# four copies of win.qcow2 under the given names (relative to $WORK)
images () {
  for n in "$@"; do cp --sparse=always "$IMAGES/win.qcow2" "$WORK/$n"; done
}
patched_to () {
  extract "$1" "$WORK/SYSTEM"
  [ "$(hget "$WORK/SYSTEM" "$KEY1" ReceiveBufferSize)" = "$2" ] ||
    { echo "$1: ReceiveBufferSize is not $2"; return 1; }
}

from_lines () {
  images "my image.qcow2" "tab.qcow2" "crlf.qcow2" " lead.qcow2"
  cd "$WORK"
  printf '%s\n' "# images, one per line" "my image.qcow2" "" "tab.qcow2	qcow2" \
    $'crlf.qcow2\r' " lead.qcow2" >list
  run 0 "$N" --direct -j 1 -r 4M --from list
  out_has "my image.qcow2 (qcow2, /dev/sda1"
  out_has " lead.qcow2 (qcow2, /dev/sda1"
  for n in "my image.qcow2" tab.qcow2 crlf.qcow2 " lead.qcow2"; do patched_to "$n" 4096; done
  # the old "PATH FORMAT" reading is gone: a space is part of the name
  printf '%s\n' "tab.qcow2 qcow2" >list2
  run 1 "$N" --direct -r 2M --from list2
  err_has "tab.qcow2 qcow2: cannot open: No such file or directory"
  patched_to tab.qcow2 4096
  # an unknown format after the tab: usage error naming the line, nothing run
  cp tab.qcow2 tab.orig
  printf '%s\n' "# x" "tab.qcow2	qcow3" >list3
  run 2 "$N" --direct -r 2M --from list3
  err_has "--from list3: line 2: 'tab.qcow2': unknown format 'qcow3' after the tab"
  same_bytes tab.qcow2 tab.orig
}

from_nul () {
  images a.qcow2 b.qcow2 $'new\nline.qcow2' $'t\tab #.qcow2'
  cd "$WORK"
  cp a.qcow2 a.orig; cp b.qcow2 b.orig
  # a NUL in a line list (find -print0 without -0): refused, not cut short
  printf 'a.qcow2\nb.qcow2\0junk\n' >list
  run 2 "$N" --direct -r 4M --from list
  err_has "--from list: line 2 holds a NUL byte (a list from find -print0? give -0/--null)"
  err_lines 1
  same_bytes a.qcow2 a.orig
  same_bytes b.qcow2 b.orig
  # -0: each entry a path exactly (newline, tab, '#' and spaces included)
  find . -name '*.qcow2' -print0 | LC_ALL=C sort -z >list0
  run 0 "$N" --direct -j 1 -r 4M -0 --from list0
  for n in a.qcow2 b.qcow2 $'new\nline.qcow2' $'t\tab #.qcow2'; do patched_to "$n" 4096; done
  no_raw "$WORK/out"
  out_has './new\nline.qcow2 (qcow2, /dev/sda1'
  out_has './t\tab #.qcow2 (qcow2, /dev/sda1'
  # the last NUL may be missing; an empty entry is an error; -0 needs --from
  printf 'a.qcow2' | { run 0 "$N" --direct -r 4M -0 --from -; }
  out_has "a.qcow2 (qcow2, /dev/sda1 /Windows/System32/config/SYSTEM): unchanged"
  printf 'a.qcow2\0\0b.qcow2\0' >list1
  run 2 "$N" --direct -r 2M -0 --from list1
  err_has "--from list1: entry 2 is empty (two NUL bytes in a row)"
  patched_to a.qcow2 4096
  run 2 "$N" --direct -r 2M -0 a.qcow2
  err_has "-0/--null goes with --from LIST"
}

closed_stdout () {
  images w1.qcow2 w2.qcow2 w3.qcow2 w4.qcow2 w5.qcow2 w6.qcow2
  for i in 1 2 3 4 5 6; do cp "$WORK/w$i.qcow2" "$WORK/w$i.orig"; done
  cd "$WORK"
  # head takes the first line and exits: the next report fails (or the
  # closed pipe is seen before the next image starts)
  set +e
  "$N" --direct -j 1 -r 4M w1.qcow2 w2.qcow2 w3.qcow2 w4.qcow2 w5.qcow2 w6.qcow2 2>err |
    head -1 >out
  st=${PIPESTATUS[0]}
  set -e
  cat out err
  [ "$st" -eq 1 ] || { echo "exit $st, expected 1"; exit 1; }
  out_has "w1.qcow2 (qcow2, /dev/sda1 /Windows/System32/config/SYSTEM): patched"
  grep -E '^netvsc-patch: standard output closed \(broken pipe\); stopping: [1-5] images? not processed$' err
  left=$(sed -n 's/.*stopping: \([0-9]*\) image.*/\1/p' err)
  patched_to w1.qcow2 4096
  # the images before the stop are patched (a lost report is said), the
  # others untouched: never a half-written one
  done_n=$((6 - left))
  for i in 2 3 4 5 6; do
    if [ "$i" -le "$done_n" ]; then
      patched_to "w$i.qcow2" 4096
      grep -qF "w$i.qcow2: patched, but its report was lost: standard output closed (broken pipe)" err
    else
      same_bytes "w$i.qcow2" "w$i.orig"
    fi
  done
  [ "$left" -ge 1 ]
  echo "# closed stdout: $done_n of 6 images done, $left not processed"
  # hive mode: the write was done, the report could not be: said, exit 1
  h=$(hive_copy ws2019)
  "$N" --hive "$h" -r 2M >/dev/full 2>"$WORK/err" && exit 1
  err_has "ws2019.hive: cannot write to standard output: No space left on device: the report was lost (the hive was patched)"
  [ "$(hget "$h" "$KEY1" ReceiveBufferSize)" = 2048 ]
}

check "control characters from the guest escaped in text, exact in JSON" guest_control_chars
check "file names with invalid UTF-8 and control characters (text, JSON)" name_bytes
check "--from: a line is a path, then a tab and a format" from_lines
check "--from: a NUL in a line list is an error; -0/--null" from_nul
check "closed standard output (| head) stops the batch, says so" closed_stdout
finish
