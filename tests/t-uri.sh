#!/bin/bash
# Remote images by URI (src/uri.c): qemu-nbd serves copies of the fixture
# images on Unix sockets (and one on TCP), the tool patches them through
# nbd+unix:// and nbd:// with both backends (one appliance launch for
# two images), then the server is stopped and the image file read back
# without the tool (tests/extract-hive.sh + hivexget).  Bad cases: no
# server, a read-only export, http writes and other usage errors, a
# qcow2 over NBD naming a backing file (refused, never opened: strace).
. "$(dirname "$0")/lib.sh"
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"

IMAGES=$FIXTURES/images
HIVES=$FIXTURES/hives
KEY1="$CLASS\\0001"

img_copy () { cp --sparse=always "$IMAGES/$1" "$WORK/$2"; echo "$WORK/$2"; }
extract () { sh "$TOP/tests/extract-hive.sh" "$@" 2>/dev/null; }

# serve NAME FILE QEMU-NBD-ARGS...: qemu-nbd serving FILE on the socket
# $WORK/NAME.sock (persistent, several clients: libguestfs and the
# header check open more than one connection); its pid in $WORK/NAME.pid.
serve () {
  local name=$1 file=$2; shift 2
  rm -f "$WORK/$name.sock"
  qemu-nbd -k "$WORK/$name.sock" -t --shared=4 "$@" "$file" >"$WORK/$name.log" 2>&1 &
  echo $! >"$WORK/$name.pid"
  for _ in $(seq 100); do [ -S "$WORK/$name.sock" ] && return 0; sleep 0.05; done
  echo "qemu-nbd did not start:"; cat "$WORK/$name.log"; return 1
}
# stop NAME: end that qemu-nbd (by its pid) and wait until it has closed
# the image.
stop () {
  local pid
  [ -f "$WORK/$1.pid" ] || return 0
  pid=$(cat "$WORK/$1.pid"); rm -f "$WORK/$1.pid"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  echo "qemu-nbd $pid did not stop"; return 1
}
stop_all () { for p in "$WORK"/*.pid; do [ -f "$p" ] && stop "$(basename "$p" .pid)"; done; }
trap 'stop_all; rm -rf "$WORK"' EXIT
# bash runs no EXIT trap when a signal ends it: exit, so that the servers
# (qemu-nbd, sshd, ssh-agent) are stopped then too
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

uri () { echo "nbd+unix:///?socket=$WORK/$1.sock"; }

# patched IMAGE FORMAT RECEIVE SEND: read back without the tool.
patched () {
  FORMAT=$2 extract "$1" "$WORK/SYSTEM.out"
  [ "$(hget "$WORK/SYSTEM.out" "$KEY1" ReceiveBufferSize)" = "$3" ]
  [ "$(hget "$WORK/SYSTEM.out" "$KEY1" SendBufferSize)" = "$4" ]
}

# No staging directory left in TMPDIR.
no_temps () {
  # (libguestfs keeps its appliance cache, .guestfs-UID, there)
  ! ls "$TMPDIR" | grep -q '^netvsc-patch' || { echo "left in TMPDIR:"; ls -la "$TMPDIR"; return 1; }
}

direct_unix_qcow2 () {
  # the server interprets the qcow2; the tool sees a raw disk (the default)
  img=$(img_copy win.qcow2 served.qcow2)
  serve q "$img" -f qcow2
  run 5 "$N" --direct --check -r 4M -s 2M "$(uri q)"
  out_has "$(uri q) (raw, /dev/sda1 /Windows/System32/config/SYSTEM): check: values differ"
  mkdir "$WORK/backups"
  run 0 "$N" --direct --backup "$WORK/backups" -r 4M -s 2M "$(uri q)"
  out_has "$(uri q) (raw, /dev/sda1 /Windows/System32/config/SYSTEM): patched"
  run 0 "$N" --direct --check -r 4M -s 2M "$(uri q)"
  out_has "unchanged"
  stop q
  qemu-img check -q "$img"
  patched "$img" qcow2 4096 2048
  # the backup is the original hive, named after the URI, owner-only
  b=$(ls "$WORK/backups")
  [ "$b" = "nbd+unix:___?socket=$(echo "$WORK" | tr / _)_q.sock.SYSTEM" ] || { echo "backup: $b"; return 1; }
  [ "$(stat -c %a "$WORK/backups/$b")" = 600 ]
  extract "$IMAGES/win.qcow2" "$WORK/SYSTEM.orig"
  same_bytes "$WORK/backups/$b" "$WORK/SYSTEM.orig"
  no_temps
}

direct_tcp_export_name () {
  # nbd://HOST:PORT/EXPORT over TCP, a raw image, an export name
  img=$(img_copy win.raw tcp.raw)
  # a port the kernel just gave out (and took back): free, most likely
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  qemu-nbd -b 127.0.0.1 -p "$port" -x winexp -t --shared=4 -f raw "$img" \
    >"$WORK/tcp.log" 2>&1 &
  echo $! >"$WORK/tcp.pid"
  for _ in $(seq 100); do
    python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])))' \
      "$port" 2>/dev/null && break
    sleep 0.05
  done
  run 1 "$N" --direct -r 1M "nbd://127.0.0.1:$port/nosuchexport"
  err_has "nbd://127.0.0.1:$port/nosuchexport: cannot connect to the NBD server"
  err_lines 1
  run 0 "$N" --direct -r 1M -s 1M "nbd://127.0.0.1:$port/winexp"
  stop tcp
  patched "$img" raw 1024 1024
}

appliance_two_uris () {
  # one launch, two remote images: a raw export and a qcow2 one
  a=$(img_copy win.raw app.raw)
  b=$(img_copy win.qcow2 app.qcow2)
  serve ar "$a" -f raw
  serve aq "$b" -f qcow2
  run 0 "$N" -v -j 1 -r 4M -s 2M "$(uri ar)" "$(uri aq)"
  err_has "opening 2 images in one appliance"
  out_has "$(uri ar) (raw, /dev/sda1 /Windows/System32/config/SYSTEM): patched"
  out_has "$(uri aq) (raw, /dev/sda1 /Windows/System32/config/SYSTEM): patched"
  stop ar; stop aq
  patched "$a" raw 4096 2048
  patched "$b" qcow2 4096 2048
  qemu-img check -q "$b"
  no_temps
}

qcow2_bytes_over_nbd () {
  # the server serves the qcow2 file's bytes; --format qcow2 makes a
  # local qemu-nbd read them (header checked first, backing:null)
  img=$(img_copy win.qcow2 bytes.qcow2); cp "$img" "$WORK/orig"
  serve b "$img" -f raw
  run 0 "$N" --direct --format qcow2 --list "$(uri b)"
  out_has "$(uri b) (qcow2, /dev/sda1 /Windows/System32/config/SYSTEM): network adapters"
  out_has "Microsoft Hyper-V Network Adapter"
  run 0 "$N" --direct --format qcow2 -n -r 4M "$(uri b)"
  out_has "would patch"
  # a write would have to grow the export
  run 2 "$N" --direct --format qcow2 -r 4M "$(uri b)"
  err_has "$(uri b): --format qcow2 over nbd+unix:// is read-only here"
  # without --format, the qcow2's bytes are a raw disk with no partitions
  run 1 "$N" --direct -n -r 4M "$(uri b)"
  err_has "$(uri b): "
  stop b
  same_bytes "$img" "$WORK/orig"
  no_temps
}

qcow2_backing_refused () {
  # a qcow2 over NBD that names a backing file: refused before qemu
  # opens anything on this host, and the backing file is never opened
  base=$(img_copy win.qcow2 base.qcow2)
  qemu-img create -q -f qcow2 -b "$base" -F qcow2 "$WORK/top.qcow2"
  cp "$WORK/top.qcow2" "$WORK/top.orig"; cp "$base" "$WORK/base.orig"
  serve t "$WORK/top.qcow2" -f raw
  for mode in "--direct -n -r 4M" "-n -r 4M" "--direct --list"; do
    # shellcheck disable=SC2086
    run 1 strace -f -e trace=open,openat -o "$WORK/strace" "$N" --format qcow2 $mode "$(uri t)"
    err_has "$(uri t): refused: as qcow2 it names another file, \"$base\" (a backing file)"
    err_lines 1
    if grep -F "$base" "$WORK/strace" | grep -v ENOENT; then
      echo "the backing file was opened"; return 1
    fi
  done
  stop t
  same_bytes "$WORK/top.qcow2" "$WORK/top.orig"
  same_bytes "$base" "$WORK/base.orig"
  no_temps
}

no_server () {
  img=$(img_copy win.raw ns.raw); cp "$img" "$WORK/orig"
  for backend in --direct ""; do
    run 1 "$N" $backend -r 4M "nbd+unix:///?socket=$WORK/nothere.sock"
    err_has "netvsc-patch: nbd+unix:///?socket=$WORK/nothere.sock: no NBD server: $WORK/nothere.sock: No such file or directory"
    err_lines 1
  done
  # a socket nobody listens on
  python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' \
    "$WORK/dead.sock"
  run 1 "$N" --direct -r 4M "nbd+unix:///?socket=$WORK/dead.sock"
  err_has "nbd+unix:///?socket=$WORK/dead.sock: cannot connect to the NBD server"
  err_lines 1
  same_bytes "$img" "$WORK/orig"
  no_temps
}

read_only_export () {
  img=$(img_copy win.qcow2 ro.qcow2); cp "$img" "$WORK/orig"
  serve ro "$img" -f qcow2 -r
  run 0 "$N" --direct --list "$(uri ro)"
  run 1 "$N" --direct -r 4M "$(uri ro)"
  err_has "$(uri ro): the NBD server serves the image read-only or without flush; nothing was written"
  err_lines 1
  stop ro
  same_bytes "$img" "$WORK/orig"
  no_temps
}

usage_errors () {
  hv=$(hive_copy ws2019)
  cp "$hv" "$WORK/hive.orig"
  # read-only protocols: only --dry-run/--check/--list
  run 2 "$N" -r 4M "http://192.0.2.1/win.img"
  err_has "netvsc-patch: http://192.0.2.1/win.img: http:// images are read-only: only --dry-run, --check or --list"
  run 2 "$N" -r 4M "https://192.0.2.1/win.img"
  err_has "https:// images are read-only"
  # checked before anything is opened: the local hive after it is untouched
  run 2 "$N" --direct -n -r 4M "https://192.0.2.1/win.img"
  err_has "--direct takes nbd:// and nbd+unix:// URIs only"
  run 2 "$N" -n --format qcow2 -r 4M "ssh://user@192.0.2.1/win.qcow2"
  err_has "--format qcow2 over ssh:// is refused"
  run 2 "$N" -n -r 4M "ftp://192.0.2.1/win.img"
  err_has "ftp://192.0.2.1/win.img: unknown URI scheme 'ftp': netvsc-patch takes nbd://, nbd+unix://, ssh://, http:// or https://"
  run 2 "$N" -n -r 4M "ssh://user:secret@192.0.2.1/win.img"
  err_has "a password in the URI is not accepted"
  run 2 "$N" -n -r 4M "nbd+unix:///?socket=/x&tls=require"
  err_has "the only query parameter is socket=PATH"
  run 2 "$N" -n -r 4M "nbd+unix:///"
  err_has "nbd+unix:// needs ?socket=PATH"
  run 2 "$N" -n -r 4M "nbd://192.0.2.1:99999/"
  err_has "bad port"
  run 2 "$N" -n -r 4M "http://192.0.2.1/"
  err_has "no path to the image on the server"
  # in a --from list too, before anything is opened
  img=$(img_copy win.raw list.raw); cp "$img" "$WORK/orig"
  printf '%s\n' "$img" "http://192.0.2.1/win.img" >"$WORK/list"
  run 2 "$N" --direct -r 4M --from "$WORK/list"
  err_has "http://192.0.2.1/win.img: "
  same_bytes "$img" "$WORK/orig"
  # host file handling needs a host file
  run 2 "$N" -r 4M --hive "nbd://192.0.2.1/x"
  err_has "--hive nbd://192.0.2.1/x: a hive is a local file, not a URI"
  run 2 "$N" -r 4M --hive "$hv" -o "nbd://192.0.2.1/x"
  err_has "-o nbd://192.0.2.1/x: the output is a local file, not a URI"
  same_bytes "$hv" "$WORK/hive.orig"
  no_temps
}

local_file_named_like_uri () {
  # "./" keeps a file whose name starts like a URI a file: nbd://w.raw
  # is the directory "nbd:" and the file w.raw in it
  mkdir "$WORK/nbd:"
  cp --sparse=always "$IMAGES/win.raw" "$WORK/nbd:/w.raw"
  (cd "$WORK" && run 0 "$N" --direct -r 4M ./nbd://w.raw)
  out_has "./nbd://w.raw (raw, /dev/sda1 /Windows/System32/config/SYSTEM): patched"
  extract "$WORK/nbd:/w.raw" "$WORK/SYSTEM.out"
  [ "$(hget "$WORK/SYSTEM.out" "$KEY1" ReceiveBufferSize)" = 4096 ]
  no_temps
}

# http:// through the appliance (qemu's curl driver, qemu-block-extra),
# served with byte ranges by tests/http-range.py: a dry run reads the
# image (one launch); a wrong address is one line before any launch; a
# write is a usage error; the file is untouched.
http_appliance () {
  mkdir "$WORK/www"; img_copy win.raw www/win.raw >/dev/null; cp "$WORK/www/win.raw" "$WORK/orig"
  python3 "$TOP/tests/http-range.py" "$WORK/www" >"$WORK/http.port" 2>"$WORK/http.log" &
  echo $! >"$WORK/http.pid"
  for _ in $(seq 100); do [ -s "$WORK/http.port" ] && break; sleep 0.05; done
  base="http://127.0.0.1:$(cat "$WORK/http.port")"
  run 0 "$N" -n -r 4M -s 2M "$base/win.raw"
  out_has "$base/win.raw (raw, /dev/sda1 /Windows/System32/config/SYSTEM)"
  out_has "ReceiveBufferSize  (not set) -> 0x1000 (4096 KB)"
  out_has "SendBufferSize     (not set) -> 0x800 (2048 KB)"
  run 1 "$N" -n -r 4M "$base/nothere.raw"
  err_has "$base/nothere.raw: cannot open the image: "
  err_has "404"
  err_lines 1
  run 2 "$N" -r 4M "$base/win.raw"
  err_has "$base/win.raw: http:// images are read-only"
  same_bytes "$WORK/www/win.raw" "$WORK/orig"
  stop http
}

# https:// through the appliance, served with byte ranges and a
# certificate from a CA made here.  qemu's curl driver (GnuTLS) trusts the
# system's store only: the runs that should trust it run in a private
# mount namespace (unshare -m) where the store is that CA alone; the
# host's store is never touched, and a run outside it must refuse the
# certificate.
tls_ca () {
  local d=$WORK/tls
  mkdir -p "$d" &&
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 \
      -subj "/CN=netvsc-patch test CA" 2>/dev/null &&
    openssl req -newkey rsa:2048 -nodes -keyout "$d/srv.key" -out "$d/srv.csr" \
      -subj "/CN=127.0.0.1" 2>/dev/null &&
    printf 'subjectAltName=IP:127.0.0.1\n' >"$d/ext" &&
    openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
      -out "$d/srv.pem" -days 2 -extfile "$d/ext" 2>/dev/null || { echo "openssl failed"; return 1; }
  [ -f /etc/ssl/certs/ca-certificates.crt ] || { echo "no system trust store file"; return 1; }
  unshare -m true 2>/dev/null || { echo "no private mount namespace (unshare -m)"; return 1; }
}
# trusting CMD...: CMD where the system trust store is the test CA.
trusting () {
  unshare -m sh -c 'mount --bind "$1" /etc/ssl/certs/ca-certificates.crt && shift && exec "$@"' \
    sh "$WORK/tls/ca.pem" "$@"
}
https_appliance () {
  mkdir "$WORK/sss"; img_copy win.raw sss/win.raw >/dev/null; cp "$WORK/sss/win.raw" "$WORK/orig"
  python3 "$TOP/tests/http-range.py" "$WORK/sss" "$WORK/tls/srv.pem" "$WORK/tls/srv.key" \
    >"$WORK/https.port" 2>"$WORK/https.log" &
  echo $! >"$WORK/https.pid"
  for _ in $(seq 100); do [ -s "$WORK/https.port" ] && break; sleep 0.05; done
  base="https://127.0.0.1:$(cat "$WORK/https.port")"
  # not trusted: one line, before any launch
  run 1 timeout 60 "$N" -n -r 4M "$base/win.raw"
  err_has "$base/win.raw: cannot open the image: "
  err_has "certificate"
  err_lines 1
  # trusted: the plan read through the appliance (one launch)
  t0=$(date +%s.%N)
  run 0 trusting timeout 300 "$N" -n -r 4M -s 2M "$base/win.raw"
  echo "# https:// dry run (preflight + one appliance launch): $(elapsed "$t0") s"
  out_has "$base/win.raw (raw, /dev/sda1 /Windows/System32/config/SYSTEM): would patch (dry run, nothing written), 1 adapter matched"
  out_has "ReceiveBufferSize  (not set) -> 0x1000 (4096 KB)"
  out_has "SendBufferSize     (not set) -> 0x800 (2048 KB)"
  run 2 trusting "$N" -r 4M "$base/win.raw"
  err_has "$base/win.raw: https:// images are read-only"
  same_bytes "$WORK/sss/win.raw" "$WORK/orig"
  # the host's own store was never changed
  if cmp -s "$WORK/tls/ca.pem" /etc/ssl/certs/ca-certificates.crt; then
    echo "the host's trust store is the test CA"; return 1
  fi
  stop https
}

# ssh:// through the appliance (qemu's ssh driver, libssh) against a
# private sshd on 127.0.0.1, everything in $WORK/ssh: its host key and
# config, the user's key held only by an ssh-agent (the key file is
# deleted once added), and a known_hosts in $WORK/home.  libssh finds
# ~/.ssh through getpwuid(), not $HOME, so the tool runs under
# nss_wrapper (libnss-wrapper) with a passwd file that gives this user
# $WORK/home: the real ~/.ssh is never read or written.
SSHD=$(command -v sshd || echo /usr/sbin/sshd)
free_port () {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# ssh_start: sshd on a free port ($WORK/ssh/port); fails only if sshd
# cannot be started at all (the case is then skipped).  Bounded by
# timeout 900 too, should the test be SIGKILLed.
ssh_start () {
  local d=$WORK/ssh port pid
  [ -x "$SSHD" ] || { echo "no sshd (openssh-server)"; return 1; }
  # without PAM, sshd refuses any login to an account whose password
  # field is locked ("!..."), keys included
  case "$(getent shadow "$(id -un)" 2>/dev/null | cut -d: -f2)" in
    '!'*) echo "the account $(id -un) is locked (shadow \"!\"): sshd would refuse it"; return 1 ;;
  esac
  mkdir -p "$d" && ssh-keygen -q -t ed25519 -N '' -C netvsc-test-host -f "$d/host_key" ||
    return 1
  : >"$d/authorized_keys"
  # as root, sshd insists on its privilege separation directory (made by
  # its service; the path is compiled in): an empty root-owned directory
  if [ "$(id -u)" -eq 0 ] && [ ! -d /run/sshd ]; then mkdir -p -m 755 /run/sshd || return 1; fi
  for _ in 1 2 3; do
    port=$(free_port)
    printf '%s\n' "Port $port" "ListenAddress 127.0.0.1" "HostKey $d/host_key" \
      "PidFile $d/sshd.pidfile" "AuthorizedKeysFile $d/authorized_keys" \
      "AllowUsers $(id -un)" "UsePAM no" "StrictModes no" "PubkeyAuthentication yes" \
      "AuthenticationMethods publickey" "PasswordAuthentication no" \
      "KbdInteractiveAuthentication no" "PermitRootLogin prohibit-password" \
      "ForceCommand internal-sftp" "Subsystem sftp internal-sftp" >"$d/sshd_config"
    timeout 900 "$SSHD" -D -e -f "$d/sshd_config" >"$WORK/sshd.log" 2>&1 &
    pid=$!; echo $pid >"$WORK/sshd.pid"
    for _ in $(seq 200); do
      if grep -q "Server listening on 127.0.0.1 port $port" "$WORK/sshd.log"; then
        echo "$port" >"$d/port"; return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    stop sshd
  done
  cat "$WORK/sshd.log"; echo "$SSHD did not listen (3 tries)"; return 1
}
# sshenv CMD...: CMD with the test's ssh-agent and home (see above).
sshenv () {
  env LD_PRELOAD=libnss_wrapper.so NSS_WRAPPER_PASSWD="$WORK/ssh/${SSH_PASSWD:-passwd}" \
      NSS_WRAPPER_GROUP="$WORK/ssh/group" SSH_AUTH_SOCK="$WORK/ssh/agent.sock" "$@"
}
# sshenv_home2 CMD...: the same with $WORK/home2, whose known_hosts lacks the key.
sshenv_home2 () { SSH_PASSWD=passwd2 sshenv "$@"; }
# logins: how many logins the sshd accepted with the agent's key (its
# -e lines end in CR LF).
logins () {
  grep -F "Accepted publickey for $(id -un) from 127.0.0.1 " "$WORK/sshd.log" |
    grep -cF " $(cat "$WORK/ssh/fpr")" || true
}
# elapsed T0: seconds since T0 (date +%s.%N), one decimal.
elapsed () { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

ssh_appliance () {
  local d=$WORK/ssh user port img u t0 logged
  user=$(id -un); port=$(cat "$d/port")
  # the user's key, in an agent only
  ssh-keygen -q -t ed25519 -N '' -C netvsc-test-user -f "$d/user_key"
  cp "$d/user_key.pub" "$d/authorized_keys"
  ssh-keygen -l -f "$d/user_key.pub" | awk '{ print $2 }' >"$d/fpr"
  timeout 900 ssh-agent -D -a "$d/agent.sock" >"$WORK/agent.log" 2>&1 &
  echo $! >"$WORK/agent.pid"
  for _ in $(seq 100); do [ -S "$d/agent.sock" ] && break; sleep 0.05; done
  SSH_AUTH_SOCK="$d/agent.sock" timeout 10 ssh-add -q "$d/user_key"
  rm "$d/user_key"
  # this user's home is $WORK/home for libssh, with only known_hosts in
  # it; $WORK/home2 has no known_hosts
  mkdir -p "$WORK/home/.ssh" "$WORK/home2/.ssh"
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$d/host_key.pub")" >"$WORK/home/.ssh/known_hosts"
  printf '%s:x:%s:%s:netvsc test:%s:/bin/sh\n' "$user" "$(id -u)" "$(id -g)" "$WORK/home" \
    >"$d/passwd"
  printf '%s:x:%s:%s:netvsc test:%s:/bin/sh\n' "$user" "$(id -u)" "$(id -g)" "$WORK/home2" \
    >"$d/passwd2"
  printf '%s:x:%s:\n' "$(id -gn)" "$(id -g)" >"$d/group"
  [ "$(sshenv getent passwd "$user" | cut -d: -f6)" = "$WORK/home" ] ||
    { echo "nss_wrapper does not work (libnss-wrapper: scripts/install-deps.sh)"; return 1; }

  # the served image: win.raw with ReceiveBufferSize already 1024 KB
  # (--direct, locally), so that the plan can only come from this file
  mkdir "$WORK/srv"; img=$(img_copy win.raw srv/win.raw)
  run 0 "$N" --direct -r 1M "$img"
  extract "$img" "$WORK/SYSTEM.srv"
  [ "$(hget "$WORK/SYSTEM.srv" "$KEY1" ReceiveBufferSize)" = 1024 ]
  hget_absent "$WORK/SYSTEM.srv" "$KEY1" SendBufferSize
  [ "$(hget "$WORK/SYSTEM.srv" "$KEY1" DriverDesc)" = "Microsoft Hyper-V Network Adapter" ]
  cp "$img" "$WORK/orig"

  # a dry run through the appliance: one launch
  u="ssh://$user@127.0.0.1:$port$img"
  t0=$(date +%s.%N)
  run 0 sshenv timeout 300 "$N" -n -r 4M -s 2M "$u"
  echo "# ssh:// dry run (preflight + one appliance launch): $(elapsed "$t0") s"
  out_has "$u (raw, /dev/sda1 /Windows/System32/config/SYSTEM): would patch (dry run, nothing written), 1 adapter matched"
  out_has "{4d36e972-...}\\0001  Microsoft Hyper-V Network Adapter"
  out_has "ReceiveBufferSize  0x400 (1024 KB) -> 0x1000 (4096 KB)"
  out_has "SendBufferSize     (not set) -> 0x800 (2048 KB)"
  # it came through this sshd, as this user, with the agent's key
  # (qemu-img's preflight, then the appliance's qemu)
  # (err_lines sets a global n: "logged")
  logged=$(logins)
  [ "$logged" -ge 2 ] || { echo "sshd accepted $logged logins:"; cat "$WORK/sshd.log"; return 1; }
  same_bytes "$img" "$WORK/orig"

  # a write through the appliance (a second launch), warned about the
  # server's file being unlocked; the served file read back here
  t0=$(date +%s.%N)
  run 0 sshenv timeout 300 "$N" -r 4M -s 2M "$u"
  echo "# ssh:// write (preflight + one appliance launch): $(elapsed "$t0") s"
  err_has "netvsc-patch: $u: warning: qemu takes no lock on an ssh server's file"
  out_has "$u (raw, /dev/sda1 /Windows/System32/config/SYSTEM): patched, 1 adapter matched"
  extract "$img" "$WORK/SYSTEM.written"
  [ "$(hget "$WORK/SYSTEM.written" "$KEY1" ReceiveBufferSize)" = 4096 ]
  [ "$(hget "$WORK/SYSTEM.written" "$KEY1" SendBufferSize)" = 2048 ]
  [ "$(logins)" -gt "$logged" ] || { echo "the write did not go through sshd"; return 1; }
  logged=$(logins)
  cp "$img" "$WORK/orig"

  # the host key is checked: a home whose known_hosts lacks it
  t0=$(date +%s.%N)
  run 1 sshenv_home2 timeout 60 "$N" -n -r 4M "$u"
  err_has "netvsc-patch: $u: cannot open the image: no host key was found in known_hosts"
  err_lines 1
  [ "$(logins)" = "$logged" ] || { echo "logged in with an unknown host key"; return 1; }
  echo "# unknown host key: $(elapsed "$t0") s"

  # no server on the port: one line naming the URI, quickly
  u="ssh://$user@127.0.0.1:$(free_port)$img"
  t0=$(date +%s.%N)
  run 1 sshenv timeout 60 "$N" -n -r 4M "$u"
  err_has "netvsc-patch: $u: cannot open the image: "
  err_has "Connection refused"
  err_lines 1
  echo "# no server: $(elapsed "$t0") s"

  # a server that accepts and never speaks: libssh gives up (10 s)
  python3 -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
held = []
while True:
    held.append(s.accept()[0])' "$WORK/mute.port" &
  echo $! >"$WORK/mute.pid"
  for _ in $(seq 100); do [ -s "$WORK/mute.port" ] && break; sleep 0.05; done
  u="ssh://$user@127.0.0.1:$(cat "$WORK/mute.port")$img"
  t0=$(date +%s.%N)
  run 1 sshenv timeout 60 "$N" -n -r 4M "$u"
  err_has "netvsc-patch: $u: cannot open the image: "
  err_lines 1
  echo "# silent server: $(elapsed "$t0") s"
  stop mute

  same_bytes "$img" "$WORK/orig"
  no_temps
}

check "--direct, nbd+unix://, qcow2 served by qemu-nbd: check, patch (--backup), read back" direct_unix_qcow2
check "--direct, nbd://HOST:PORT/EXPORT over TCP, raw" direct_tcp_export_name
check "appliance, two nbd+unix:// exports (raw, qcow2) in one launch" appliance_two_uris
check "--format qcow2 over NBD: read by a local qemu-nbd, list/dry run only" qcow2_bytes_over_nbd
check "qcow2 over NBD naming a backing file: refused, never opened" qcow2_backing_refused
check "no NBD server (missing socket, dead socket): one line, exit 1" no_server
check "read-only export: write refused, image unchanged" read_only_export
check "URI usage errors (http write, --direct http, unknown scheme, --hive/-o)" usage_errors
check "a local file named like a URI, with ./" local_file_named_like_uri
check "http:// (appliance, byte ranges): dry run read, wrong address one line, write refused" http_appliance
if tls_ca >"$WORK/tls.start" 2>&1; then
  check "https:// (appliance, a test CA trusted in a private mount namespace): untrusted one line, dry run plan, write refused" https_appliance
else
  skip "https:// through the appliance" "$(tail -1 "$WORK/tls.start")"
fi
if ssh_start >"$WORK/sshd.start" 2>&1; then
  check "ssh:// (appliance, private sshd, ssh-agent, known_hosts): dry run plan, write warned and read back, host key checked, no server one line" ssh_appliance
  stop sshd
else
  skip "ssh:// through the appliance" "sshd cannot be started: $(tail -1 "$WORK/sshd.start")"
fi
finish
