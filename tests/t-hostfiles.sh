#!/bin/bash
# Host files in hive mode behave as a Unix tool's should: concurrent runs
# on one hive take turns (flock on the hive), links are followed and
# kept, owner/mode/xattrs/ACLs survive, read-only is honoured even for
# root, backups are never more readable than the original, -o refuses
# the input, its logs and special files, and a killed run's temporary
# files are removed by the next run.  Everything is checked with stat,
# getfattr/getfacl, hivexget and sha256, not with the tool's report.
. "$(dirname "$0")/lib.sh"

KEY1="$CLASS\\0001"
# a fresh file each time: cp onto an earlier case's copy would keep its
# owner, mode, ACL and links
hive_copy () {
  rm -f "$WORK/$1.hive"; cp "$FIXTURES/hives/$1.hive" "$WORK/$1.hive"; echo "$WORK/$1.hive"
}
temps () { find "$1" -maxdepth 1 -name '.*.netvsc-patch.*' | sort; }
no_temps () {
  t=$(temps "$1"); [ -z "$t" ] || { echo "temporary files left: $t"; return 1; }
}
meta () { stat -c '%u:%g %a %h %F' "$1"; }
clean_base_block () { [ "$(od -An -tu4 -j4 -N4 "$1")" = "$(od -An -tu4 -j8 -N4 "$1")" ]; }

# signal_when SIG COND ARG CMD...: start CMD in the background (a process
# group of its own), send SIG to that group as soon as COND holds
# (locked: a process of the group holds a lock on file ARG; temp: a
# temporary file exists in directory ARG; stage: a staging directory
# holding SYSTEM exists under ARG; child: a descendant named ARG runs),
# print the group's id (CMD's pid) and, for locked, the holder's pid.
# The whole group: the tool runs each target in a child (contain.c).
# Fails if CMD ends first.
signal_when () {
  python3 - "$@" <<'PY'
import os, signal, subprocess, sys, time
sig, cond, arg, cmd = getattr(signal, sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
st = os.stat(arg) if cond == "locked" else None
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
def holds():
    if cond == "locked":
        want = "%02x:%02x:%d" % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
        for line in open("/proc/locks"):
            f = line.split()
            if "->" in f or want not in f:
                continue
            for pid in f:
                try:
                    if pid.isdigit() and os.getpgid(int(pid)) == p.pid:
                        return pid
                except OSError:
                    pass
    elif cond == "temp":
        return any(".netvsc-patch." in n for n in os.listdir(arg))
    elif cond == "stage":
        return any(os.path.basename(d).startswith("netvsc-patch.") and "SYSTEM" in files
                   for d, _, files in os.walk(arg))
    elif cond == "child":
        parent = {}
        for d in os.listdir("/proc"):
            try:
                s = open("/proc/%s/stat" % d).read()
                parent[d] = (s[s.rindex(")") + 2:].split()[1], s[s.index("(") + 1:s.rindex(")")])
            except (OSError, ValueError):
                pass
        for d, (pp, comm) in parent.items():
            while comm == arg and pp in parent:
                if pp == str(p.pid):
                    return True
                pp = parent[pp][0]
    return False
t0 = time.monotonic()
while p.poll() is None and time.monotonic() - t0 < 60:
    h = holds()
    if h:
        os.killpg(p.pid, sig)
        print(p.pid) if h is True else print(p.pid, h)
        sys.exit(0)
sys.exit("ended (%s) before %s %s" % (p.poll(), cond, arg))
PY
}

# 8 runs at once, each adding its own value: all 8 in the hive after.
concurrent_runs () {
  h=$(hive_copy ws2019)
  for i in 1 2 3 4 5 6 7 8; do
    "$N" -q --hive "$h" --set "Test$i=$i" >"$WORK/out$i" 2>&1 &
    eval "pid$i=\$!"
  done
  for i in 1 2 3 4 5 6 7 8; do
    eval "wait \$pid$i" || { echo "run $i failed:"; cat "$WORK/out$i"; exit 1; }
  done
  for i in 1 2 3 4 5 6 7 8; do
    [ "$(hget "$h" "$KEY1" "Test$i")" = "$i" ] || { echo "Test$i lost"; exit 1; }
  done
  clean_base_block "$h"
  no_temps "$WORK"
}

# Another process holds the lock: wait, then fail naming it; bytes same.
lock_timeout () {
  h=$(hive_copy ws2019); cp "$h" "$WORK/orig"
  # -o: the lock stays with flock(1), not with the command it runs
  flock -o "$h" sleep 30 &
  holder=$!
  for _ in $(seq 50); do grep -q "FLOCK.* $holder " /proc/locks && break; sleep 0.1; done
  start=$(date +%s%N)
  run 1 "$N" --hive "$h" -r 2M --lock-timeout 1
  waited=$(( ($(date +%s%N) - start) / 1000000 ))
  cp "$WORK/err" "$WORK/err.timeout"
  # SIGTERM while waiting stops the wait
  "$N" --hive "$h" -r 2M 2>"$WORK/err.term" &
  waiter=$!
  sleep 0.5; kill -TERM "$waiter"
  set +e; wait "$waiter"; rc=$?; set -e
  [ "$rc" -eq 1 ] && grep -qF "$h: interrupted while waiting for another process's lock; nothing was written" "$WORK/err.term" ||
    { echo "SIGTERM while waiting: exit $rc"; cat "$WORK/err.term"; exit 1; }
  cp "$WORK/err.timeout" "$WORK/err"
  sleeper=$(pgrep -P "$holder" || true)
  kill "$holder" $sleeper; wait "$holder" 2>/dev/null || true
  err_has "$h: locked by another process (flock, pid $holder); waited 1 s (--lock-timeout)"
  err_has "nothing was written"
  err_lines 1
  [ "$waited" -ge 1000 ] && [ "$waited" -lt 5000 ] || { echo "waited ${waited}ms"; exit 1; }
  same_bytes "$h" "$WORK/orig"
  # the lock released, the same run goes through
  run 0 "$N" --hive "$h" -r 2M --lock-timeout 0
  [ "$(hget "$h" "$KEY1" ReceiveBufferSize)" = 2048 ]
  run 2 "$N" --hive "$h" -r 2M --lock-timeout -1
  err_has "--lock-timeout '-1': expected seconds"
}

# The holder is netvsc-patch itself.  strace holds each of its renames
# for 3 s, the final one (the new hive over the old) under the lock: a
# window that does not depend on how fast a run is.
lock_held_by_netvsc_patch () {
  h=$(hive_copy multi); cp "$h" "$WORK/orig"
  got=$(signal_when SIGCONT locked "$h" strace -f -o /dev/null -e trace=rename,renameat,renameat2 \
          -e inject=rename,renameat,renameat2:delay_enter=3000000 \
          "$N" -q --hive "$h" -r 4M 2>/dev/null) ||
    { echo "the run ended before its lock was seen"; exit 1; }
  set -- $got; pid=$1 holder=$2
  run 1 "$N" --hive "$h" -s 1M --lock-timeout 0
  err_has "$h: locked by another run of netvsc-patch (pid $holder); waited 0 s"
  err_has "it is writing this file"
  same_bytes "$h" "$WORK/orig"
  # a waiting run gets the lock when the holder is done, and keeps both changes
  "$N" -q --hive "$h" -s 1M --lock-timeout 30 &
  waiter=$!
  wait "$waiter"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  [ "$(hget "$h" "$CLASS\\0001" ReceiveBufferSize)" = 4096 ]
  [ "$(hget "$h" "$CLASS\\0001" SendBufferSize)" = 1024 ]
}

# A symlinked hive: the file it points at is patched, the link stays.
symlink_followed () {
  mkdir "$WORK/real" "$WORK/links"
  cp "$FIXTURES/hives/ws2019.hive" "$WORK/real/SYSTEM"
  ln -s ../real/SYSTEM "$WORK/links/SYSTEM"
  run 0 "$N" --hive "$WORK/links/SYSTEM" -r 2M
  [ -L "$WORK/links/SYSTEM" ] && [ "$(readlink "$WORK/links/SYSTEM")" = ../real/SYSTEM ]
  [ -f "$WORK/real/SYSTEM" ] && [ ! -L "$WORK/real/SYSTEM" ]
  [ "$(hget "$WORK/real/SYSTEM" "$KEY1" ReceiveBufferSize)" = 2048 ]
  no_temps "$WORK/real"; no_temps "$WORK/links"
  # and a message about it names the link, as the user gave it
  chmod 444 "$WORK/real/SYSTEM"
  run 1 "$N" --hive "$WORK/links/SYSTEM" -r 4M
  err_has "$WORK/links/SYSTEM: the hive is read-only"
}

# A hard-linked hive is refused: a rename would split the names.
hard_link_refused () {
  h=$(hive_copy ws2019); ln "$h" "$WORK/other-name"; cp "$h" "$WORK/orig"
  ino=$(stat -c %i "$h")
  run 1 "$N" --hive "$h" -r 2M
  err_has "$h: the hive has 2 hard links: replacing it would leave the other names on the old hive"
  err_lines 1
  same_bytes "$h" "$WORK/orig"
  [ "$(stat -c '%i %h' "$h")" = "$ino 2" ] && [ "$(stat -c %i "$WORK/other-name")" = "$ino" ]
  # a dry run and -o are fine: they do not replace it
  run 0 "$N" --hive "$h" -r 2M --dry-run
  run 0 "$N" --hive "$h" -r 2M -o "$WORK/copy"
  [ "$(hget "$WORK/copy" "$KEY1" ReceiveBufferSize)" = 2048 ]
  same_bytes "$h" "$WORK/orig"
  rm "$WORK/other-name"
}

# Owner, group, mode, user.* xattrs and the ACL survive the rename.
metadata_kept () {
  h=$(hive_copy ws2019)
  chown 1234:5678 "$h"; chmod 0640 "$h"
  setfattr -n user.origin -v "from-the-template" "$h"
  setfattr -n user.binary -v 0x00ff10 "$h"
  setfacl -m u:65534:r,g:100:rw "$h"
  ino=$(stat -c %i "$h")
  meta "$h" >"$WORK/meta.before"
  getfattr -d -m - -e hex "$h" 2>/dev/null | sed 1d >"$WORK/xattr.before"
  getfacl -n "$h" 2>/dev/null | sed 1d >"$WORK/acl.before"
  grep -q user.origin "$WORK/xattr.before"; grep -q system.posix_acl_access "$WORK/xattr.before"
  run 0 "$N" --hive "$h" -r 2M
  [ "$(stat -c %i "$h")" != "$ino" ]            # replaced, not written in place
  [ "$(hget "$h" "$KEY1" ReceiveBufferSize)" = 2048 ]
  meta "$h" | diff "$WORK/meta.before" -
  getfattr -d -m - -e hex "$h" 2>/dev/null | sed 1d | diff "$WORK/xattr.before" -
  getfacl -n "$h" 2>/dev/null | sed 1d | diff "$WORK/acl.before" -
  no_temps "$WORK"
}

# No write bit: refused even as root unless --force, which keeps the mode.
read_only_root () {
  [ "$(id -u)" -eq 0 ] || { echo "# not root: the case is about root"; return 0; }
  h=$(hive_copy ws2019); chmod 0444 "$h"; cp "$h" "$WORK/orig"
  run 1 "$N" --hive "$h" -r 2M
  err_has "$h: the hive is read-only (mode 0444, no write permission); nothing was written (--force writes it anyway)"
  err_lines 1
  same_bytes "$h" "$WORK/orig"
  [ "$(stat -c %a "$h")" = 444 ]
  run 0 "$N" --hive "$h" -r 2M --force
  [ "$(hget "$h" "$KEY1" ReceiveBufferSize)" = 2048 ]
  [ "$(stat -c %a "$h")" = 444 ]
  # dry runs and -o are not writes to it
  run 0 "$N" --hive "$h" -r 4M --dry-run
  run 0 "$N" --hive "$h" -r 4M -o "$WORK/out.hive"
}

# Backups: the original's mode or stricter, and its owner.
backup_modes () {
  mkdir "$WORK/bk"
  h=$(hive_copy ws2019); chmod 0600 "$h"; cp "$h" "$WORK/orig"
  run 0 "$N" --hive "$h" -r 2M --backup "$WORK/bk"
  b=$WORK/bk/$(ls "$WORK/bk")
  same_bytes "$b" "$WORK/orig"
  [ "$(stat -c '%a %u:%g' "$b")" = "600 0:0" ]
  rm -f "$WORK/bk"/*
  chown 1234:5678 "$h"; chmod 0750 "$h"
  run 0 "$N" --hive "$h" -r 4M --backup "$WORK/bk"
  [ "$(stat -c '%a %u:%g' "$WORK/bk/$(ls "$WORK/bk")")" = "640 1234:5678" ]
  # not root, -o from another's hive: the owner cannot be given, so the
  # backup and the output are the maker's, readable by the maker only
  ro=$(mktemp -d /tmp/netvsc-bk.XXXXXX); chmod 755 "$ro"; mkdir "$ro/bk" "$ro/out"
  cp "$FIXTURES/hives/ws2019.hive" "$ro/SYSTEM"; chmod 0644 "$ro/SYSTEM"
  chown 65534:65534 "$ro/bk" "$ro/out"
  run 0 setpriv --reuid=65534 --regid=65534 --clear-groups "$N" --hive "$ro/SYSTEM" -r 2M \
    --backup "$ro/bk" -o "$ro/out/SYSTEM"
  [ "$(stat -c '%a %u:%g' "$ro/bk/$(ls "$ro/bk")")" = "600 65534:65534" ]
  [ "$(stat -c '%a %u:%g' "$ro/out/SYSTEM")" = "600 65534:65534" ]
  [ "$(hget "$ro/out/SYSTEM" "$KEY1" ReceiveBufferSize)" = 2048 ]
  rm -rf "$ro"
}

# -o: the input, its logs and special files are refused, nothing opened.
output_refusals () {
  h=$(hive_copy ws2019); cp "$h" "$WORK/orig"
  : >"$h.LOG1"; ln -s "$h" "$WORK/link-to-input"; ln "$h" "$WORK/hardlink"
  mkfifo "$WORK/fifo"; mkdir "$WORK/adir"
  echo keep >"$WORK/target"; ln -s "$WORK/target" "$WORK/link"
  ln -s "$WORK/nowhere" "$WORK/dangling"
  for o in "$WORK/fifo:a FIFO" "/dev/null:a character device" "$WORK/adir:a directory" \
           "$WORK/link:a symbolic link" "$WORK/dangling:a symbolic link" \
           "$h:the input hive" "$WORK/link-to-input:a symbolic link" \
           "$WORK/hardlink:the input hive" "$h.LOG1:a transaction log" \
           "$h.log2:a transaction log" "$WORK/./ws2019.hive.Log1:a transaction log"; do
    run 2 timeout 10 "$N" --hive "$h" -r 2M -o "${o%%:*}"
    err_has "${o%%:*}: -o names ${o#*:}"
    err_lines 1
    same_bytes "$h" "$WORK/orig"
  done
  [ -p "$WORK/fifo" ] && [ -c /dev/null ] && [ -d "$WORK/adir" ]
  [ -L "$WORK/link" ] && [ "$(cat "$WORK/target")" = keep ] && [ -L "$WORK/dangling" ]
  [ ! -e "$WORK/nowhere" ] && [ ! -e "$h.log2" ] && [ ! -s "$h.LOG1" ]
  # a new name and an existing regular file are fine
  run 0 "$N" --hive "$h" -r 2M -o "$WORK/target"
  [ "$(hget "$WORK/target" "$KEY1" ReceiveBufferSize)" = 2048 ]
  same_bytes "$h" "$WORK/orig"
  no_temps "$WORK"
  rm "$WORK/hardlink"
}

# SIGKILL while the temporary file exists: the next run removes it.
stale_temps () {
  mkdir "$WORK/k"; cp "$FIXTURES/hives/multi.hive" "$WORK/k/SYSTEM"; cp "$WORK/k/SYSTEM" "$WORK/orig"
  # the kill must land while a temporary file exists: strace holds the
  # rename that ends it for 3 s, however fast the run is
  for try in $(seq 20); do
    signal_when SIGKILL temp "$WORK/k" strace -f -o /dev/null -e trace=rename,renameat,renameat2 \
      -e inject=rename,renameat,renameat2:delay_enter=3000000 \
      "$N" -q --hive "$WORK/k/SYSTEM" -r 2M >/dev/null 2>&1 || true
    sleep 0.1
    left=$(temps "$WORK/k")
    [ -z "$left" ] || break
    cp "$WORK/orig" "$WORK/k/SYSTEM"
  done
  [ -n "$left" ] || { echo "20 kills left no temporary file"; exit 1; }
  echo "# a temporary file left by the kill at try $try: $(echo $left | sed "s|$WORK/k/||g")"
  # the hive is the original or the patched one, whole
  if ! same_bytes "$WORK/k/SYSTEM" "$WORK/orig" >/dev/null; then
    [ "$(hget "$WORK/k/SYSTEM" "$CLASS\\0001" ReceiveBufferSize)" = 2048 ]
    clean_base_block "$WORK/k/SYSTEM"
  fi
  # a stale temp of a log too, and a file that only looks like one stays
  : >"$WORK/k/.SYSTEM.LOG1.netvsc-patch.AbC123"; : >"$WORK/k/.SYSTEM.netvsc-patch.toolong1"
  run 0 "$N" -v --hive "$WORK/k/SYSTEM" -r 2M
  for t in $left "$WORK/k/.SYSTEM.LOG1.netvsc-patch.AbC123"; do
    err_has "removed $t, left by a run that was killed"
    [ ! -e "$t" ]
  done
  [ -e "$WORK/k/.SYSTEM.netvsc-patch.toolong1" ]
  [ "$(temps "$WORK/k")" = "$WORK/k/.SYSTEM.netvsc-patch.toolong1" ]
  [ "$(hget "$WORK/k/SYSTEM" "$CLASS\\0001" ReceiveBufferSize)" = 2048 ]
}

# A failure after the temporary file was made names the user's file.
messages_name_the_hive () {
  mountpoint -q /proc || return 0
  d=$(mktemp -d /tmp/netvsc-small.XXXXXX)
  # room for the hive, not for a second copy of it
  if ! mount -t tmpfs -o size=60k tmpfs "$d" 2>/dev/null; then
    rmdir "$d"; echo "# cannot mount a tmpfs here: case not run"; return 0
  fi
  cp "$FIXTURES/hives/ws2019.hive" "$d/SYSTEM"; cp "$d/SYSTEM" "$WORK/orig"
  set +e; "$N" --hive "$d/SYSTEM" -r 2M >"$WORK/out" 2>"$WORK/err"; rc=$?; set -e
  no_temps "$d" || { umount "$d"; exit 1; }
  same_bytes "$d/SYSTEM" "$WORK/orig" || { umount "$d"; exit 1; }
  umount "$d"; rmdir "$d"
  [ "$rc" -eq 1 ] || { echo "exit $rc"; cat "$WORK/err"; exit 1; }
  err_has "$d/SYSTEM: "
  if grep -q 'netvsc-patch\.' "$WORK/err"; then echo "names a temp file:"; cat "$WORK/err"; exit 1; fi
}

# An image locked by another run of netvsc-patch (its qemu-nbd) is
# told apart from a running VM.
image_held_by_netvsc_patch () {
  cp "$FIXTURES/images/win.qcow2" "$WORK/win.qcow2"
  pid=$(signal_when SIGSTOP child qemu-nbd "$N" -q --direct -r 2M "$WORK/win.qcow2")
  run 1 "$N" --direct -r 4M "$WORK/win.qcow2"
  kill -CONT -- -$pid
  err_has "$WORK/win.qcow2: the image is in use by another run of netvsc-patch (qemu-nbd, pid "
  err_has ", started by netvsc-patch)"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  # qemu-io stands for a VM
  qemu-io -f qcow2 -c 'sleep 20000' "$WORK/win.qcow2" >/dev/null 2>&1 &
  holder=$!
  sleep 1
  run 1 "$N" --direct -r 4M "$WORK/win.qcow2"
  kill "$holder"; wait "$holder" 2>/dev/null || true
  err_has "in use by another process (is the VM running?) (qemu-io, pid $holder)"
  # an image's backup takes the image's mode, not our host copy's
  mkdir "$WORK/img-bk"; chmod 0640 "$WORK/win.qcow2"
  run 0 "$N" --direct -q -r 4M --backup "$WORK/img-bk" "$WORK/win.qcow2"
  [ "$(stat -c %a "$WORK/img-bk/$(ls "$WORK/img-bk")")" = 640 ]
  # no write bit: refused before qemu is even asked, unless --force
  chmod 0444 "$WORK/win.qcow2"; cp "$WORK/win.qcow2" "$WORK/orig.qcow2"
  run 1 "$N" --direct -r 4M "$WORK/win.qcow2"
  err_has "$WORK/win.qcow2: the image is read-only (mode 0444, no write permission)"
  same_bytes "$WORK/win.qcow2" "$WORK/orig.qcow2"
}

# Image mode stages the hive in TMPDIR/netvsc-patch.XXXXXX; a killed
# run's directory is removed by the next run, a live run's is not.
stale_staging_dirs () {
  st=$WORK/stage; mkdir "$st"
  cp "$FIXTURES/images/win.qcow2" "$WORK/win.qcow2"
  TMPDIR=$st signal_when SIGKILL stage "$st" "$N" -q --direct -r 2M "$WORK/win.qcow2" >/dev/null
  killed=$(ls -d "$st"/netvsc-patch.* 2>/dev/null)
  [ -n "$killed" ] && [ -f "$killed/.lock" ] || { echo "no staging directory left: $killed"; exit 1; }
  # a live run's (its .lock held) and one just made (no .lock yet) stay;
  # one killed between locking and naming its lock (.lock.new free), and
  # one killed while removing it (no lock, unchanged for two minutes) go
  mkdir -m 700 "$st/netvsc-patch.LIVE00" "$st/netvsc-patch.NOLOCK" \
    "$st/netvsc-patch.NEWLCK" "$st/netvsc-patch.OLDDIR"
  : >"$st/netvsc-patch.LIVE00/.lock"; : >"$st/netvsc-patch.LIVE00/SYSTEM"
  : >"$st/netvsc-patch.NEWLCK/.lock.new"; : >"$st/netvsc-patch.NEWLCK/SYSTEM"
  : >"$st/netvsc-patch.OLDDIR/SYSTEM.recovered"
  touch -d '2 minutes ago' "$st/netvsc-patch.OLDDIR"
  flock -o "$st/netvsc-patch.LIVE00/.lock" sleep 60 &
  holder=$!
  for _ in $(seq 50); do grep -q "FLOCK.* $holder " /proc/locks && break; sleep 0.1; done
  # the killed run's qemu-nbd lets go of the image once it sees its parent gone
  for _ in $(seq 50); do qemu-img info "$WORK/win.qcow2" >/dev/null 2>&1 && break; sleep 0.2; done
  run 0 env TMPDIR="$st" "$N" -v --direct -r 2M "$WORK/win.qcow2"
  sleeper=$(pgrep -P "$holder" || true)
  kill "$holder" $sleeper; wait "$holder" 2>/dev/null || true
  for gone in "$killed" "$st/netvsc-patch.NEWLCK" "$st/netvsc-patch.OLDDIR"; do
    err_has "removed $gone, left by a run that was killed"
    [ ! -e "$gone" ]
  done
  [ -f "$st/netvsc-patch.LIVE00/SYSTEM" ] && [ -d "$st/netvsc-patch.NOLOCK" ]
  [ "$(ls "$st")" = "$(printf 'netvsc-patch.LIVE00\nnetvsc-patch.NOLOCK')" ]
  # a directory is removed with its .lock last (a kill on the way leaves
  # one the next run recognises): strace's order of removals in a killed
  # run's directory of 40 files (readdir's order would put .lock last
  # once in 41)
  rm -rf "$st"/netvsc-patch.*; cp "$FIXTURES/hives/ws2019.hive" "$WORK/order.hive"
  mkdir -m 700 "$st/netvsc-patch.MANY00"; : >"$st/netvsc-patch.MANY00/.lock"
  for i in $(seq 40); do : >"$st/netvsc-patch.MANY00/f$i"; done
  # (LeakSanitizer cannot run under ptrace: make sanitize-check's build)
  TMPDIR=$st ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -o "$WORK/rm.trace" -e trace=unlink,unlinkat,rmdir \
    "$N" -q --hive "$WORK/order.hive" -r 2M >/dev/null
  grep -E '(unlink|unlinkat|rmdir)\(.*netvsc-patch\.MANY00' "$WORK/rm.trace" |
    grep ' = 0' | sed 's/.*"\(.*\)".*/\1/' >"$WORK/rm.order"
  [ "$(wc -l <"$WORK/rm.order")" -eq 42 ] || { cat "$WORK/rm.trace"; exit 1; }
  [ "$(tail -2 "$WORK/rm.order")" = "$(printf '%s\n%s' "$st/netvsc-patch.MANY00/.lock" "$st/netvsc-patch.MANY00")" ]
  [ -z "$(ls -A "$st")" ]
}

# What a clean hive's run creates, seen by strace: its staging
# directory's lock in TMPDIR and the new hive beside the old one; no file
# to recover into (only a dirty hive is recovered: t-hive's cases)
files_created () {
  h=$(hive_copy ws2019)
  mkdir -p "$WORK/cr-tmp"
  TMPDIR=$WORK/cr-tmp ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -o "$WORK/cr.trace" -e trace=open,openat,creat,mkdir "$N" -q --hive "$h" -r 2M >/dev/null
  grep -E 'O_CREAT|creat\(|mkdir\(' "$WORK/cr.trace" | grep -v ' = -1 ' |
    sed 's/[^"]*"\([^"]*\)".*/\1/' | sort -u >"$WORK/cr.files"
  grep -vE "^$WORK/cr-tmp/netvsc-patch\.[A-Za-z0-9]{6}(/\.lock\.new)?\$|^$WORK/\.ws2019\.hive\.netvsc-patch\.[A-Za-z0-9]{6}\$" \
    "$WORK/cr.files" && { echo "created more than expected"; cat "$WORK/cr.files"; exit 1; }
  [ "$(grep -c 'ws2019.hive.netvsc-patch' "$WORK/cr.files")" -eq 1 ]
  [ "$(hivexget "$h" "$KEY1" ReceiveBufferSize)" = 2048 ]
  [ -z "$(ls -A "$WORK/cr-tmp")" ]
}

check "8 concurrent runs on one hive: no update lost" concurrent_runs
check "lock held by another process: --lock-timeout, holder named" lock_timeout
check "lock held by netvsc-patch: said so; waiter goes on after it" lock_held_by_netvsc_patch
check "symlinked hive: target patched, link kept" symlink_followed
check "hard-linked hive refused" hard_link_refused
check "owner, mode, xattrs and ACL kept" metadata_kept
check "no write bit: refused as root unless --force" read_only_root
check "backups: original's mode or stricter, and owner" backup_modes
check "-o refuses input, logs, special files" output_refusals
check "killed run's temp files removed by the next run" stale_temps
check "errors name the hive, not a temp file" messages_name_the_hive
check "a clean hive's run creates its staging lock and the new hive, nothing else" files_created
check "staging directories: a killed run's removed (lock free, half-named, half-removed), a live one's kept, .lock removed last" stale_staging_dirs
check "image locked by netvsc-patch vs a VM; image backup mode; read-only image" image_held_by_netvsc_patch
finish
