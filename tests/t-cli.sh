#!/bin/bash
# The command-line conventions shared with the virt tools: --long-options
# and --short-options list every option getopt knows (read here from
# main.c's tables, not from the tool), the bash completion completes from
# them (not from a copy) and completes option values and file names,
# make install installs it; -x traces the steps (hive mode, --direct);
# -q keeps what was asked for (--list, --dry-run, --json) and drops the
# rest; --check's "differs" is exit 5 and several targets exit with the
# highest code; the version comes from the Makefile alone.
. "$(dirname "$0")/lib.sh"
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"

IMAGES=$FIXTURES/images
COMPLETION=$TOP/bash-completion/netvsc-patch

# The long options of main.c's getopt table, and its short option string.
src_long () { sed -n 's/^  { "\([a-z-]*\)", [a-z_]*, NULL, .*/--\1/p' "$TOP/src/main.c" | sort; }
src_short () {
  sed -n 's/^static const char short_options\[\] = "\(.*\)";/\1/p' "$TOP/src/main.c" |
    tr -d ':' | fold -w1 | sed 's/^/-/' | sort
}

option_lists () {
  [ "$(src_long | wc -l)" -ge 34 ]
  run 0 "$N" --long-options
  diff <(src_long) <(sort "$WORK/out")
  grep -qx -- --long-options "$WORK/out" && grep -qx -- --receive-buffer "$WORK/out"
  run 0 "$N" --short-options
  diff <(src_short) <(sort "$WORK/out")
  grep -qx -- -x "$WORK/out" && grep -qx -- -r "$WORK/out"
  # every short option of the table's entries is in the string too
  for c in $(sed -n "s/^  { \"[a-z-]*\", [a-z_]*, NULL, '\(.\)' },/\1/p" "$TOP/src/main.c"); do
    grep -qx -- "-$c" "$WORK/out" || { echo "-$c missing"; exit 1; }
  done
  # and they are documented
  run 0 "$N" --help
  out_has "--long-options"; out_has "--short-options"; out_has "  -x "
}

# complete WORD...: COMPREPLY, one a line, for the command line WORD...
# (the last word is the one being completed), as bash would call it.
complete_words () {
  bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
           _netvsc_patch; printf "%s\n" "${COMPREPLY[@]}"' _ "$COMPLETION" "$@" | sort
}

completion () {
  bash -n "$COMPLETION"
  # "--": every long option, from the program named by the first word
  diff <(complete_words "$N" --) <(src_long)
  [ "$(complete_words "$N" --rec)" = --receive-buffer ]
  # it asks the program, it holds no copy of the list: a program that
  # lists another option gets that one completed
  printf '#!/bin/sh\ncase "$1" in --long-options) echo --zz-probe ;; --short-options) echo -z ;; esac\n' \
    >"$WORK/fake"; chmod +x "$WORK/fake"
  [ "$(complete_words "$WORK/fake" --z)" = --zz-probe ]
  [ "$(complete_words "$WORK/fake" -)" = "$(printf -- '--zz-probe\n-z')" ]
  for o in --isolate --no-replay --json --replay-only --quiet; do
    if grep -qF -- "$o" "$COMPLETION"; then echo "$COMPLETION names $o: a copy of the list?"; exit 1; fi
  done
  # option values, as the next word and after "="
  [ "$(complete_words "$N" --format v | tr '\n' ' ')" = "vdi vhd vhdx vmdk vpc " ]
  [ "$(complete_words "$N" --defer=o)" = once ]
  [ "$(complete_words "$N" --blocksize "" | tr '\n' ' ')" = "4096 512 " ]
  # -d: the domains of -c's connection (libvirt's test driver: "test")
  if command -v virsh >/dev/null 2>&1; then
    [ "$(complete_words "$N" -c test:///default -d "")" = test ]
    [ "$(complete_words "$N" --connect=test:///default --domain t)" = test ]
  fi
  [ "$(complete_words "$N" --format = qc)" = qcow2 ]
  [ "$(complete_words "$N" --format = q | tr '\n' ' ')" = "qcow2 qed " ]
  [ "$(complete_words "$N" --control-set "" | tr '\n' ' ')" = "1 2 3 all current default " ]
  [ "$(complete_words "$N" --match "" | tr '\n' ' ')" = "desc: netvsc service: " ]
  [ "$(complete_words "$N" --type 'MTU=d')" = MTU=dword ]
  # file names otherwise, and after --hive, -o, --from
  mkdir "$WORK/files"; : >"$WORK/files/win.qcow2"; : >"$WORK/files/SYSTEM"
  [ "$(complete_words "$N" -r 2M "$WORK/files/w")" = "$WORK/files/win.qcow2" ]
  [ "$(complete_words "$N" --hive "$WORK/files/S")" = "$WORK/files/SYSTEM" ]
  [ "$(complete_words "$N" --backup "$WORK/fil")" = "$WORK/files" ]
  [ -z "$(complete_words "$N" --jobs "")" ]
}

install_files () {
  v=$(sed -n 's/^VERSION *:= *//p' "$TOP/Makefile")
  make -s -C "$TOP" install DESTDIR="$WORK/inst" PREFIX=/usr >/dev/null
  cmp "$WORK/inst/usr/share/bash-completion/completions/netvsc-patch" "$COMPLETION"
  [ -x "$WORK/inst/usr/bin/netvsc-patch" ]
  head -1 "$WORK/inst/usr/share/man/man1/netvsc-patch.1" | grep -qF "\"netvsc-patch $v\""
}

# The version has one source: the Makefile.  --version says it, the
# installed man page carries it (install_files), and no other file
# holds a copy of it.
version () {
  v=$(sed -n 's/^VERSION *:= *//p' "$TOP/Makefile")
  [ -n "$v" ]
  run 0 "$N" --version
  [ "$(cat "$WORK/out")" = "netvsc-patch $v" ]
  if grep -rnF -- "$v" "$TOP/src" "$TOP/include" "$TOP/man" "$TOP/tests/unit" "$TOP/README.md"; then
    echo "a copy of the version outside the Makefile"; exit 1
  fi
  grep -qF '@VERSION@' "$TOP/man/netvsc-patch.1"
}

trace_hive () {
  h=$(hive_copy ws2019); cp "$h" "$WORK/orig"
  run 0 "$N" -x -q --hive "$h" -r 2M
  [ ! -s "$WORK/out" ]
  for step in "lock" "read the base block" "open with hivex for writing" \
              "1 control set, 10 network instances, 1 matched, 1 value to write" \
              "write the patched hive beside $h and verify it" "rename it over $h"; do
    err_has "netvsc-patch: trace: $h: $step"
  done
  [ "$(hget "$h" "$CLASS\\0001" ReceiveBufferSize)" = 2048 ]
  # a dry run traces no lock, no write
  run 0 "$N" -x --hive "$h" -r 4M -n
  err_has "netvsc-patch: trace: $h: open with hivex"
  if grep -qE "trace: .*: (lock|write|rename)" "$WORK/err"; then cat "$WORK/err"; exit 1; fi
  # without -x, none
  run 0 "$N" --hive "$h" -r 4M -n
  [ ! -s "$WORK/err" ]
}

trace_direct () {
  cp "$IMAGES/win.qcow2" "$WORK/w.qcow2"
  run 0 "$N" -x --direct -r 2M "$WORK/w.qcow2"
  err_has "netvsc-patch: trace: $WORK/w.qcow2: open (qcow2, direct backend)"
  err_has "netvsc-patch: $WORK/w.qcow2: direct: qemu-nbd -f qcow2"
  err_has "netvsc-patch: trace: $WORK/w.qcow2: put it back as /Windows/System32/config/SYSTEM"
  err_has "direct: step 1: write the new"
}

quiet () {
  h=$(hive_copy ws2019); cp "$h" "$WORK/orig"
  run 0 "$N" -q --list --hive "$h"
  out_has "Microsoft Hyper-V Network Adapter"
  run 0 "$N" -q -n -r 2M --hive "$h"
  out_has "would patch"; out_has "ReceiveBufferSize"
  run 5 "$N" -q --check -r 2M --hive "$h"
  [ ! -s "$WORK/out" ] && [ ! -s "$WORK/err" ]
  run 5 "$N" -q --json --check -r 2M --hive "$h"
  out_has '"status":"differs"'
  same_bytes "$h" "$WORK/orig"
  run 0 "$N" -q -r 2M --hive "$h"
  [ ! -s "$WORK/out" ] && [ ! -s "$WORK/err" ]
  [ "$(hget "$h" "$CLASS\\0001" ReceiveBufferSize)" = 2048 ]
  # errors are still said
  run 1 "$N" -q -r 2M --hive "$WORK/missing"
  err_has "$WORK/missing: No such file or directory"
  # --list and --dry-run over several images (the batch's check of
  # standard output counts them as printing too)
  cp "$IMAGES/win.qcow2" "$WORK/a.qcow2"; cp "$IMAGES/win.qcow2" "$WORK/b.qcow2"
  run 0 "$N" -q --direct --list "$WORK/a.qcow2" "$WORK/b.qcow2"
  [ "$(grep -c 'network adapters' "$WORK/out")" -eq 2 ]
}

# --check: differs 5, an error 1, no adapter 3; several: the highest.
check_codes () {
  cp "$IMAGES/win.qcow2" "$WORK/w.qcow2"; cp "$IMAGES/template.qcow2" "$WORK/t.qcow2"
  cp "$WORK/w.qcow2" "$WORK/w.orig"
  run 5 "$N" --direct --check -r 4M "$WORK/w.qcow2"
  run 1 "$N" --direct --check -r 4M "$WORK/none.qcow2"
  run 3 "$N" --direct --check -r 4M "$WORK/none.qcow2" "$WORK/t.qcow2"
  run 5 "$N" --direct --check -r 4M "$WORK/none.qcow2" "$WORK/t.qcow2" "$WORK/w.qcow2"
  err_lines 2
  same_bytes "$WORK/w.qcow2" "$WORK/w.orig"
  run 0 "$N" --direct -r 4M "$WORK/w.qcow2"
  run 0 "$N" --direct --check -r 4M "$WORK/w.qcow2"
  run 1 "$N" --direct --check -r 4M "$WORK/w.qcow2" "$WORK/none.qcow2"
  run 0 "$N" --help
  out_has "5 --check found values not as requested"
}

check "--long-options/--short-options are getopt's tables" option_lists
check "bash completion: options from the program, values, files" completion
check "make install: binary, man page with the version, completion" install_files
check "--version is the Makefile's VERSION, the only copy" version
check "-x traces the steps in hive mode" trace_hive
check "-x traces the steps with --direct" trace_direct
check "-q keeps --list, --dry-run and --json; drops the report" quiet
check "--check: differs 5; several targets, the highest" check_codes
finish
