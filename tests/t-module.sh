#!/bin/bash
# The image backends as a private module (include/backends.h): hive mode
# never loads libguestfs, libnbd or libntfs-3g; an image run finds the
# module beside the program (build tree) or in ../lib/netvsc-patch (make
# install); a missing or foreign module is one line, only when an image
# is given.  What the dynamic loader did is read from LD_DEBUG=libs (the
# loader's own trace), results with hivexget and tests/extract-hive.sh.
. "$(dirname "$0")/lib.sh"
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"

MOD=netvsc-patch-image.so
BIN_DIR=$(dirname "$N")
KEY1="$CLASS\\0001"

# The sanitizer build links the backends into the program: nothing to load.
if [ ! -f "$BIN_DIR/$MOD" ]; then
  skip "image backends module" "$N has no $MOD beside it (a static build)"
  finish; exit
fi

img_copy () { cp --sparse=always "$FIXTURES/images/$1" "$WORK/$1"; echo "$WORK/$1"; }
extract () { sh "$TOP/tests/extract-hive.sh" "$@" 2>/dev/null; }

hive_mode_loads_no_image_library () {
  h=$(hive_copy ws2019)
  LD_DEBUG=libs LD_DEBUG_OUTPUT="$WORK/ld" run 0 "$N" --hive "$h" -r 4M -s 4M
  [ "$(hget "$h" "$KEY1" ReceiveBufferSize)" = 4096 ]
  cat "$WORK"/ld.* >"$WORK/ld.all"
  # the loader did run and trace: hivex is in it
  grep -q 'libhivex' "$WORK/ld.all"
  # (`! cmd` would not stop the case: errexit ignores it)
  if grep -E "libguestfs|libnbd|libntfs-3g|$MOD" "$WORK/ld.all"; then return 1; fi
  # nor is any of them linked
  if ldd "$N" | grep -E 'libguestfs|libnbd|libntfs-3g'; then return 1; fi
}

installed_layout_direct () {
  # what make install makes: bin/netvsc-patch, lib/netvsc-patch/MOD
  mkdir -p "$WORK/p/bin" "$WORK/p/lib/netvsc-patch"
  cp "$N" "$WORK/p/bin/"
  cp "$BIN_DIR/$MOD" "$WORK/p/lib/netvsc-patch/"
  img=$(img_copy win-dyn.vhd)
  rm -f "$WORK"/ld.*
  LD_DEBUG=libs LD_DEBUG_OUTPUT="$WORK/ld" run 0 "$WORK/p/bin/netvsc-patch" -q --direct \
    -r 4M -s 4M "$img"
  cat "$WORK"/ld.* >"$WORK/ld.all"
  grep -q "calling init: $WORK/p/bin/../lib/netvsc-patch/$MOD" "$WORK/ld.all"
  extract "$img" "$WORK/out.hive"
  [ "$(hget "$WORK/out.hive" "$KEY1" ReceiveBufferSize)" = 4096 ]
  [ "$(hget "$WORK/out.hive" "$KEY1" SendBufferSize)" = 4096 ]
}

missing_module () {
  mkdir -p "$WORK/lone"
  cp "$N" "$WORK/lone/"
  # hive mode does not need it
  h=$(hive_copy ws2019)
  run 0 "$WORK/lone/netvsc-patch" --hive "$h" -r 4M -s 4M
  [ "$(hget "$h" "$KEY1" ReceiveBufferSize)" = 4096 ]
  # an image does: one line, exit 1, the image untouched
  img=$(img_copy win.qcow2)
  before=$(sum "$img")
  run 1 "$WORK/lone/netvsc-patch" --direct -r 4M -s 4M "$img"
  err_has "netvsc-patch: cannot load the image backends: $MOD is neither in $WORK/lone/../lib/netvsc-patch nor in $WORK/lone"
  err_lines 1
  [ ! -s "$WORK/out" ]
  [ "$(sum "$img")" = "$before" ]
  run 1 "$WORK/lone/netvsc-patch" -r 4M -s 4M "$img"
  err_has "cannot load the image backends"
  err_lines 1
  [ "$(sum "$img")" = "$before" ]
}

foreign_module () {
  command -v cc >/dev/null || { echo "# no cc: skipped"; return 0; }
  mkdir -p "$WORK/foreign"
  cp "$N" "$WORK/foreign/"
  # the table's shape, from another version
  printf '%s\n' '#include <stddef.h>' \
    'const struct { const char *v; size_t n; const void *a, *d; }' \
    '  netvsc_patch_image_module = { "0.0.0-other", 1, 0, 0 };' >"$WORK/foreign.c"
  cc -shared -fPIC -o "$WORK/foreign/$MOD" "$WORK/foreign.c"
  img=$(img_copy win.qcow2)
  before=$(sum "$img")
  run 1 "$WORK/foreign/netvsc-patch" --direct -r 4M -s 4M "$img"
  err_has "cannot load the image backends: $WORK/foreign/$MOD is not from this build of netvsc-patch"
  err_has "(it is 0.0.0-other)"
  err_lines 1
  [ "$(sum "$img")" = "$before" ]
  # a file that is no module at all
  echo 'not ELF' >"$WORK/foreign/$MOD"
  run 1 "$WORK/foreign/netvsc-patch" --direct -r 4M -s 4M "$img"
  err_has "cannot load the image backends: $WORK/foreign/$MOD:"
  err_lines 1
  [ "$(sum "$img")" = "$before" ]
}

# make install into a DESTDIR: the installed program patches an image
make_install () {
  make -s -C "$TOP" install DESTDIR="$WORK/dest" PREFIX=/opt/np >"$WORK/make.log" 2>&1 ||
    { cat "$WORK/make.log"; return 1; }
  [ -x "$WORK/dest/opt/np/bin/netvsc-patch" ]
  [ -f "$WORK/dest/opt/np/lib/netvsc-patch/$MOD" ]
  img=$(img_copy win.qcow2)
  run 0 "$WORK/dest/opt/np/bin/netvsc-patch" -q --direct -r 2M -s 2M "$img"
  extract "$img" "$WORK/inst.hive"
  [ "$(hget "$WORK/inst.hive" "$KEY1" ReceiveBufferSize)" = 2048 ]
}

check "hive mode loads no image library (LD_DEBUG=libs)" hive_mode_loads_no_image_library
check "installed layout: --direct loads the module from ../lib/netvsc-patch" installed_layout_direct
check "no module: hive mode works; an image is one line, exit 1, untouched" missing_module
check "a module from another build, or not one: refused in one line" foreign_module
if [ "$N" = "$TOP/build/netvsc-patch" ]; then
  check "make install DESTDIR=...: the installed program patches an image" make_install
else
  skip "make install DESTDIR=..." "$N is not the build tree's program"
fi
finish
