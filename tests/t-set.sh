#!/bin/bash
# --set NAME=VALUE, --type, --force and --list's advanced keywords, in
# hive mode on the advanced fixture (every Ndi\Params type) and on the
# real SYSTEM hive's two Intel adapters.  Results are read back with
# hivexget, hivexregedit exports and libregf's regfexport.
. "$(dirname "$0")/lib.sh"

KEY1="$CLASS\\0001"      # netvsc
KEY2="$CLASS\\0002"      # Intel e1000

set_enum_and_text () {
  h=$(hive_copy advanced); cp "$h" "$WORK/orig"
  run 0 "$N" --hive "$h" --set '*JumboPacket=9014' --set "Note=it's \"quoted\"" \
      --set Legacy=0x20 --set NewDword=7 --type NewDword=dword
  out_has "patched, 1 adapter matched"
  out_has '*JumboPacket       REG_SZ "1514" -> REG_SZ "9014"'
  out_has 'Legacy             0x1 (1) -> 0x20 (32)'
  # REG_SZ as the Advanced page writes it; an existing REG_DWORD stays one
  [ "$(regf_value "$h" "$KEY1" '*JumboPacket')" = "REG_SZ 9014" ]
  [ "$(hget "$h" "$KEY1" Note)" = "it's \"quoted\"" ]
  [ "$(regf_value "$h" "$KEY1" Legacy)" = "REG_DWORD_LITTLE_ENDIAN 32" ]
  [ "$(regf_value "$h" "$KEY1" NewDword)" = "REG_DWORD_LITTLE_ENDIAN 7" ]
  # only those four values differ in the whole hive; the Intel is untouched
  export_diff "$WORK/orig" "$h" >"$WORK/diff"
  cat >"$WORK/want" <<'W'
< "*JumboPacket"=hex(1):31,00,35,00,31,00,34,00,00,00
> "*JumboPacket"=hex(1):39,00,30,00,31,00,34,00,00,00
< "Legacy"=dword:00000001
> "Legacy"=dword:00000020
> "NewDword"=dword:00000007
> "Note"=hex(1):69,00,74,00,27,00,73,00,20,00,22,00,71,00,75,00,6f,00,74,00,65,00,64,00,22,00,00,00
W
  diff "$WORK/want" "$WORK/diff"
  # the same request again writes nothing
  cp "$h" "$WORK/once"
  run 0 "$N" --hive "$h" --set '*JumboPacket=9014' --set "Note=it's \"quoted\"" \
      --set Legacy=0x20 --set NewDword=7 --type NewDword=dword
  out_has "unchanged"
  same_bytes "$h" "$WORK/once"
}

refused_by_ndi () {
  h=$(hive_copy advanced); cp "$h" "$WORK/orig"
  # each kind of rule: enum, int step, word range, edit length, hex dword
  for bad in '*JumboPacket=9000:not one of 1514, 4088, 9014' \
             'ReceiveBufferSize=3000:not in steps of 256 from 256' \
             'VlanID=4095:out of range 0..4094' \
             'NetworkAddress=02155D0000011:longer than 12 characters' \
             'MaxQueues=b:out of range 1..10' \
             '*RSS=on:not one of 0, 1'; do
    run 2 "$N" --hive "$h" --set "${bad%%:*}" --set Legacy=5
    err_has "$h: ControlSet001\\...\\0001: the driver does not allow ${bad%%:*}: ${bad#*:}"
    err_has "(--force writes it anyway)"
    err_lines 1
    same_bytes "$h" "$WORK/orig"
  done
  # a dry run and --check say the same, and write nothing
  run 2 "$N" --hive "$h" --set '*JumboPacket=9000' --dry-run
  out_has "[refused: not one of 1514, 4088, 9014]"
  run 2 "$N" --hive "$h" --set '*JumboPacket=9000' --check
  same_bytes "$h" "$WORK/orig"
  # -r/-s are checked the same way
  run 2 "$N" --hive "$h" -r 3000
  err_has "the driver does not allow ReceiveBufferSize=3000: not in steps of 256 from 256"
  same_bytes "$h" "$WORK/orig"
  # JSON names the refusal per change
  run 2 "$N" --hive "$h" --set 'VlanID=5000' --json
  python3 - "$WORK/out" <<'P'
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["status"] == "invalid-value" and o["exit_code"] == 2, o
c = [c for a in o["adapters"] if a["matched"] for c in a["changes"]][0]
assert c["name"] == "VlanID" and c["refused"] == "out of range 0..4094", c
assert c["new"] == {"type": "REG_SZ", "kb": None, "dword": None, "text": "5000"}, c
P
  same_bytes "$h" "$WORK/orig"
}

force_writes () {
  h=$(hive_copy advanced)
  run 0 "$N" --hive "$h" --set '*JumboPacket=9000' --force
  out_has "[forced: not one of 1514, 4088, 9014]"
  [ "$(regf_value "$h" "$KEY1" '*JumboPacket')" = "REG_SZ 9000" ]
  # -r 3000 forced: still a REG_DWORD in KB
  run 0 "$N" --hive "$h" -r 3000 --force
  [ "$(regf_value "$h" "$KEY1" ReceiveBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 3000" ]
}

types () {
  h=$(hive_copy advanced)
  # --type sz for a buffer size: the KB number as text
  run 0 "$N" --hive "$h" -r 4M --type ReceiveBufferSize=sz --set Signed=-5 --type Signed=dword
  [ "$(regf_value "$h" "$KEY1" ReceiveBufferSize)" = "REG_SZ 4096" ]
  # a negative int as REG_DWORD: its two's complement
  hivexregedit --export "$h" "\\$KEY1" | grep -qx '"Signed"=dword:fffffffb'
  # --set of a buffer size takes the size syntax
  run 0 "$N" --hive "$h" --set SendBufferSize=8M
  [ "$(regf_value "$h" "$KEY1" SendBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 8192" ]
  # a Base 16 parameter: checked as hex, written as NDIS reads hex text
  # (no 0x prefix)
  run 0 "$N" --hive "$h" --set MaxQueues=0xa
  [ "$(hget "$h" "$KEY1" MaxQueues)" = "a" ]
}

list_advanced () {
  h=$(hive_copy advanced); cp "$h" "$WORK/orig"
  run 0 "$N" --hive "$h" --list
  out_has "ControlSet001\\...\\0001  Microsoft Hyper-V Network Adapter: advanced properties"
  out_has "*JumboPacket               1514         1514       1514 (Disabled), 4088 (4088 Bytes), 9014 (9014 Bytes)"
  out_has "ReceiveBufferSize          -            1024       256..65536 step 256"
  out_has "MaxQueues                  -            4          0x1..0xa"
  out_has "NetworkAddress             -            \"\"         text, at most 12 characters"
  out_has "ITR                        65535        65535      0..65535"
  run 0 "$N" --hive "$h" --list --json
  python3 - "$WORK/out" <<'P'
import json, sys
o = json.loads(open(sys.argv[1]).read())
a = {x["index"]: x for x in o["adapters"]}
adv = {p["keyword"]: p for p in a["0001"]["advanced"]}
assert adv["*RSS"]["choices"] == [{"value": "0", "description": "Disabled"},
                                  {"value": "1", "description": "Enabled"}], adv["*RSS"]
assert adv["*RSS"]["value"] == {"type": "REG_SZ", "kb": None, "dword": None, "text": "1"}
assert adv["ReceiveBufferSize"]["min"] == 256 and adv["ReceiveBufferSize"]["step"] == 256
assert adv["ReceiveBufferSize"]["value"] is None
assert adv["NetworkAddress"]["limit_text"] == 12
assert adv["MaxQueues"]["base"] == 16 and adv["MaxQueues"]["max"] == 10
assert [p["keyword"] for p in a["0002"]["advanced"]] == ["*JumboPacket", "ITR"]
P
  same_bytes "$h" "$WORK/orig"
}

set_usage_errors () {
  h=$(hive_copy advanced); cp "$h" "$WORK/orig"
  for args in "--set NoEquals" "--set =5" "--set A=1 --set a=2" "-r 2M --set ReceiveBufferSize=4M" \
              "--set A=1 --type B=dword" "--set A=x --type A=dword" "--set A=1 --type A=qword" \
              "--remove --set A=1" "--list --set A=1" "--set ReceiveBufferSize=lots"; do
    # shellcheck disable=SC2086
    run 2 "$N" --hive "$h" $args
    err_has "Try 'netvsc-patch --help'"
    same_bytes "$h" "$WORK/orig"
  done
  run 2 "$N" --hive "$h" --set "A=$(printf 'x\ny')"
  err_has "control characters are not allowed in values"
}

real_intel_set () {
  REAL=$SHARED/real-hives
  xz -dc "$REAL/SYSTEM.xz" >"$WORK/SYSTEM"; cp "$WORK/SYSTEM" "$WORK/orig"
  run 2 "$N" --hive "$WORK/SYSTEM" --match desc:Intel --set '*JumboPacket=9000'
  err_has "the driver does not allow *JumboPacket=9000: not one of 1514, 4088, 9014, 16128"
  same_bytes "$WORK/SYSTEM" "$WORK/orig"
  run 0 "$N" --hive "$WORK/SYSTEM" --match service:E1G60 --set '*JumboPacket=9014' \
      --set '*ReceiveBuffers=1024' --set ITR=950
  out_has "2 adapters matched"
  for k in 0007 0012; do
    [ "$(regf_value "$WORK/SYSTEM" "$CLASS\\$k" '*JumboPacket')" = "REG_SZ 9014" ]
    [ "$(hget "$WORK/SYSTEM" "$CLASS\\$k" ITR)" = 950 ]
  done
  export_diff "$WORK/orig" "$WORK/SYSTEM" >"$WORK/diff"
  [ "$(grep -c '^>' "$WORK/diff")" -eq 6 ] && [ "$(grep -c '^<' "$WORK/diff")" -eq 6 ]
  # --list shows the Intel's advanced properties as Windows describes them
  run 0 "$N" --hive "$WORK/SYSTEM" --list
  out_has "*SpeedDuplex               0            0          0 (Auto Negotiation), 1 (10 Mbps Half Duplex)"
  out_has "*ReceiveBuffers            1024         256        80..2048 step 8"
}

# Buffer sizes above what Hyper-V hosts accept (Linux netvsc: 31 MB
# receive, 15 MB send): a warning line on stderr and in --json's
# "caveats", never an error; only for Hyper-V adapters, once per keyword.
host_limit_warnings () {
  h=$(hive_copy advanced); cp "$h" "$WORK/orig"
  # at the limits: no warning
  run 0 "$N" --hive "$h" -n -r 31M -s 15M
  [ ! -s "$WORK/err" ] || { cat "$WORK/err"; exit 1; }
  # above (Ndi\Params allows up to 64 MB here): warned, written as asked
  run 0 "$N" --hive "$h" -r 32M -s 16M
  err_has "netvsc-patch: warning: $h: ReceiveBufferSize 32768 KB is above 31744 KB (31 MB), the largest receive buffer Hyper-V hosts accept (Linux netvsc's limit), and the driver's Ndi\\Params allows it: it is written as asked"
  err_has "netvsc-patch: warning: $h: SendBufferSize 16384 KB is above 15360 KB (15 MB)"
  err_lines 2
  [ "$(hget "$h" "$KEY1" ReceiveBufferSize)" = 32768 ]
  [ "$(regf_value "$h" "$KEY1" SendBufferSize)" = "REG_DWORD_LITTLE_ENDIAN 16384" ]
  # JSON: the same warnings as data, stdout one object; -q keeps them
  cp "$WORK/orig" "$h"
  run 0 "$N" --hive "$h" -q --json -n --set ReceiveBufferSize=40M -s 1M
  err_lines 1
  err_has "ReceiveBufferSize 40960 KB is above 31744 KB"
  python3 - "$WORK/out" <<'PY'
import json, sys
o = json.loads(open(sys.argv[1]).read())
c = o["caveats"]
assert len(c) == 1 and c[0]["kind"] == "host-limit" and c[0]["severity"] == "warning", c
assert c[0]["message"].startswith("ReceiveBufferSize 40960 KB is above 31744 KB (31 MB)"), c
PY
  same_bytes "$h" "$WORK/orig"
  # the Intel adapter: not a VMBus buffer, nothing said
  run 0 "$N" --hive "$h" -n --match service:e1g60 --set ReceiveBufferSize=64M
  [ ! -s "$WORK/err" ] || { cat "$WORK/err"; exit 1; }
  same_bytes "$h" "$WORK/orig"
  # no Ndi\Params for the sizes (escapes.hive's Hyper-V adapter)
  e=$(hive_copy escapes); cp "$e" "$WORK/eorig"
  run 0 "$N" --hive "$e" -n -r 0x7c01
  err_has "ReceiveBufferSize 31745 KB is above 31744 KB (31 MB), the largest receive buffer Hyper-V hosts accept (Linux netvsc's limit), and the driver's Ndi\\Params sets no bound: it is written as asked"
  err_lines 1
  same_bytes "$e" "$WORK/eorig"
  # a bound below it refuses first (2008 R2: 16 MB): exit 2, no warning;
  # --force writes it, and warns
  w=$(hive_copy w2008r2); cp "$w" "$WORK/worig"
  run 2 "$N" --hive "$w" -r 32M
  err_lines 1
  if grep -q warning "$WORK/err"; then echo "warned on a refusal"; exit 1; fi
  same_bytes "$w" "$WORK/worig"
  run 0 "$N" --hive "$w" --force -r 32M
  err_has "warning: $w: ReceiveBufferSize 32768 KB is above 31744 KB"
}

check "--set an enum, text and DWORDs; only they differ; rerun unchanged" set_enum_and_text
check "values Ndi\\Params refuses: exit 2, bytes unchanged" refused_by_ndi
check "--force writes a refused value" force_writes
check "--type, negative ints, buffer sizes through --set" types
check "--list: advanced keywords, values, defaults, allowed values" list_advanced
check "--set usage errors (exit 2, bytes unchanged)" set_usage_errors
check "buffer sizes above the Hyper-V host's limit: warned, written" host_limit_warnings
if [ -f "$SHARED/real-hives/SYSTEM.xz" ]; then
  check "real SYSTEM: --set on the two Intel adapters, checked by their Ndi\\Params" real_intel_set
else
  skip "real SYSTEM: --set on the two Intel adapters" "no $SHARED/real-hives"
fi
finish
