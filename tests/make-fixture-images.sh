#!/bin/sh
# make-fixture-images.sh HIVEDIR OUTDIR
#
# Build the disk-image fixtures from the hives made by
# make-fixture-hives.sh (HIVEDIR/ws2019.hive, multi.hive, w2008r2.hive,
# software.hive).  All partitioned images are made in ONE guestfish
# launch; the other formats are converted from win.raw with qemu-img,
# without the appliance.
#
#   win.raw      64 MiB, MBR, 1 NTFS partition: Windows tree, SYSTEM = ws2019
#   sysres.raw  128 MiB, MBR: p1 32 MiB NTFS "System Reserved" (/bootmgr,
#                /Boot/BCD), p2 NTFS Windows tree, SYSTEM = multi
#   nowin.raw    32 MiB, MBR, 1 NTFS partition with files but no Windows
#   twowin.raw  128 MiB, MBR: p1 Windows tree (SYSTEM = ws2019),
#                p2 Windows tree (SYSTEM = w2008r2)
#   nopart.raw   32 MiB of zeros, no partition table
#   win-dyn.vhd win-fixed.vhd win.vhdx win.qcow2 win.vmdk  (from win.raw)
#   dirty.qcow2  Windows tree whose SYSTEM is dirty (sequence numbers 0x11/0x10)
#   hiber.qcow2  Windows tree + hiberfil.sys with the "hibr" signature
#   badhive.qcow2 Windows tree whose SYSTEM is random bytes
#   template.qcow2 Windows tree whose SYSTEM has no Hyper-V adapter (a
#                sysprepped or foreign template: no-netvsc), with a local
#                Group Policy object that already runs someone's startup
#                script (directory names in other case than Windows', a
#                UTF-16LE scripts.ini and a gpt.ini at Version 65537)
#   casewin.raw  32 MiB, MBR, 1 NTFS partition with two Windows trees whose
#                names differ only in case: /Windows (SYSTEM = ws2019) and
#                /WINDOWS (SYSTEM = w2008r2); ntfs-3g's POSIX namespace is
#                case-sensitive, Windows would see only one of them
#   casesys.raw  32 MiB, MBR: /Windows tree (SYSTEM = ws2019) and
#                /Windows/SYSTEM32/config/SYSTEM (w2008r2) beside System32
#   casecfg.raw  32 MiB, MBR: /Windows tree (SYSTEM = ws2019) and an empty
#                /Windows/System32/Config beside config
#   win4k.raw    32 MiB disk with 4096-byte logical sectors: GPT (header at
#                byte 4096), 1 NTFS partition (made on the 4K disk: 4096
#                bytes per sector) with a Windows tree, SYSTEM = ws2019;
#                win4k.qcow2 is the same disk as qcow2
#   bitlocker.raw 32 MiB, MBR, 1 partition whose first sector is a
#                BitLocker (Windows 7 and later) volume header: "-FVE-FS-"
#                and the BitLocker GUID, and "-FVE-FS-" FVE metadata blocks
#                where it points (what blkid checks); the rest zeros.  Not
#                a real BitLocker volume (none can be made on Linux): for
#                recognising one, not opening it
#
# A "Windows tree" is what libguestfs inspection needs to call the
# filesystem a Windows root (/Windows/System32/config and a PE32+
# /Windows/System32/cmd.exe: its architecture is read with file(1)), plus
# the SOFTWARE hive inspection reads the product name from:
#   /Windows/System32/config/{SYSTEM,SOFTWARE,SYSTEM.LOG1,SYSTEM.LOG2}
#   /Windows/System32/cmd.exe, /Windows/System32/drivers/netvsc.sys,
#   /Windows/explorer.exe, /Program Files/, /Users/
# (SYSTEM.LOG1/LOG2 are empty.)
#
# The caller decides how libguestfs runs (e.g. LIBGUESTFS_BACKEND_SETTINGS=
# force_tcg where KVM does not work); this script does not force it.
# Outputs are overwritten.
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 HIVEDIR OUTDIR" >&2
    exit 2
fi
hivedir=$1
outdir=$2

for h in ws2019 multi w2008r2 no-netvsc software; do
    if [ ! -f "$hivedir/$h.hive" ]; then
        echo "$0: $hivedir/$h.hive missing (run make-fixture-hives.sh)" >&2
        exit 1
    fi
done
for tool in guestfish qemu-img sfdisk truncate iconv; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "$0: $tool not found" >&2
        exit 1
    }
done
case $hivedir$outdir in
    *\"*|*\\*) echo "$0: paths must not contain \" or \\" >&2; exit 2 ;;
esac

mkdir -p "$outdir"
hivedir=$(cd "$hivedir" && pwd)
outdir=$(cd "$outdir" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/fixture-images.XXXXXX")
trap 'rm -rf "$work"; rm -f "$outdir"/.tmp-*.raw' EXIT
trap 'exit 1' HUP INT TERM

t0=$(date +%s)

# --- dummy PE32+ x86-64 files (file(1) must say "PE32+ executable") ---
# shellcheck disable=SC2059 # $3 is a printf format of octal escapes
poke() { printf "$3" | dd of="$1" bs=1 seek=$(($2)) conv=notrunc status=none; }
mkpe() {    # mkpe FILE SUBSYSTEM-DIGIT (1 native, 2 GUI, 3 console)
    dd if=/dev/zero of="$1" bs=1024 count=1 status=none
    poke "$1" 0 'MZ\220\000\003'        # DOS header
    poke "$1" 0x18 '\100'               # e_lfarlc >= 0x40: "new" executable
    poke "$1" 0x3c '\200'               # e_lfanew = 0x80
    poke "$1" 0x80 'PE\000\000\144\206' # signature, machine AMD64 (0x8664)
    poke "$1" 0x94 '\360\000\042\000'   # optional header size, characteristics
    poke "$1" 0x98 '\013\002'           # optional header magic: PE32+
    poke "$1" 0xdc "\\00$2"             # subsystem
}
mkpe "$work/cmd.exe" 3
mkpe "$work/explorer.exe" 2
mkpe "$work/netvsc.sys" 1
printf 'fixture placeholder for bootmgr\r\n' > "$work/bootmgr"
printf 'fixture placeholder for the BCD store\r\n' > "$work/BCD"
printf 'Quarterly numbers.\r\n' > "$work/report.txt"
printf 'not a Windows system volume\r\n' > "$work/readme.txt"
: > "$work/empty"

# Commands that fill the filesystem mounted at / with a Windows tree
# whose SYSTEM hive is $1.
wintree() {
    case $1 in */*) hive=$1 ;; *) hive=$hivedir/$1.hive ;; esac
    cat <<EOF
mkdir-p /Windows/System32/config
mkdir-p /Windows/System32/drivers
upload "$hive" /Windows/System32/config/SYSTEM
upload "$hivedir/software.hive" /Windows/System32/config/SOFTWARE
upload "$work/empty" /Windows/System32/config/SYSTEM.LOG1
upload "$work/empty" /Windows/System32/config/SYSTEM.LOG2
upload "$work/cmd.exe" /Windows/System32/cmd.exe
upload "$work/netvsc.sys" /Windows/System32/drivers/netvsc.sys
upload "$work/explorer.exe" /Windows/explorer.exe
mkdir "/Program Files"
mkdir "/Program Files (x86)"
mkdir-p /Users/Public
EOF
}

# Partitioned images are built under temporary names and renamed only
# when guestfish succeeded.  The MBR partition tables are written here with
# sfdisk (parted inside the TCG appliance costs ~0.8 s per call, ~15 s in
# all); the appliance only makes the filesystems and copies files in.
# Fixed disk identifiers keep the layout reproducible.
mkdisk() {  # mkdisk NAME SIZE DISK-ID PARTITION-LINE...
    f=$outdir/.tmp-$1.raw
    rm -f "$f"
    truncate -s "$2" "$f"
    id=$3
    shift 3
    { printf 'label: dos\nlabel-id: %s\nunit: sectors\n\n' "$id"
      for p in "$@"; do printf '%s\n' "$p"; done
    } | sfdisk -q --no-reread --no-tell-kernel "$f" >/dev/null
}
#                                (512-byte sectors; no size = to the end)
mkdisk win    64M  0x4e560001 'start=2048, type=7, bootable'
mkdisk sysres 128M 0x4e560002 'start=2048, size=65536, type=7, bootable' \
                              'start=67584, type=7'
mkdisk nowin  32M  0x4e560003 'start=2048, type=7'
mkdisk twowin 128M 0x4e560004 'start=2048, size=129024, type=7, bootable' \
                              'start=131072, type=7'
mkdisk dirty  32M  0x4e560005 'start=2048, type=7, bootable'
mkdisk hiber  32M  0x4e560006 'start=2048, type=7, bootable'
mkdisk badhive 32M 0x4e560007 'start=2048, type=7, bootable'
mkdisk template 32M 0x4e560008 'start=2048, type=7, bootable'
mkdisk casewin 32M 0x4e560009 'start=2048, type=7, bootable'
mkdisk casesys 32M 0x4e56000a 'start=2048, type=7, bootable'
mkdisk casecfg 32M 0x4e56000b 'start=2048, type=7, bootable'
mkdisk bitlocker 32M 0x4e56000c 'start=2048, type=7, bootable'
# the 4K disk's GPT is written in the appliance, which sees 4K sectors
rm -f "$outdir/.tmp-win4k.raw"
truncate -s 32M "$outdir/.tmp-win4k.raw"

# A BitLocker (Windows 7 and later) volume header at the partition's
# start (libbde's format description; blkid's checks): jump eb 58 90,
# "-FVE-FS-", 512 bytes per sector, the BitLocker GUID
# 4967d63b-2e29-4ad8-8399-f6a339e3d000 at 160, three FVE metadata block
# offsets at 176, each block starting "-FVE-FS-", size, version 2.
bl=$outdir/.tmp-bitlocker.raw
blpart=$((2048 * 512))
poke "$bl" $blpart '\353\130\220-FVE-FS-\000\002\010'
poke "$bl" $((blpart + 160)) '\073\326\147\111\051\056\330\112\203\231\366\243\071\343\320\000'
for i in 0 1 2; do
    off=$((0x100000 + i * 0x10000))
    # little-endian 64-bit offset (the rest of it stays zero)
    poke "$bl" $((blpart + 176 + 8 * i)) "$(printf '\\%03o\\%03o\\%03o' \
        $((off & 255)) $(((off >> 8) & 255)) $(((off >> 16) & 255)))"
    poke "$bl" $((blpart + off)) '\055FVE-FS-\000\001\002\000'
done
poke "$bl" $((blpart + 510)) '\125\252'

# Hibernated Windows: hiberfil.sys starts with the "hibr" signature,
# which ntfs-3g checks before a read-write mount.
{ printf 'hibr'; head -c 8188 /dev/zero; } > "$work/hiberfil.sys"
# A SYSTEM "hive" that is not one.
head -c 16384 /dev/urandom > "$work/garbage.hive"

# The template's existing local Group Policy: gpedit writes scripts.ini
# in UTF-16LE with a byte-order mark, gpt.ini in ASCII.
{ printf '\377\376'
  printf '\r\n[Startup]\r\n0CmdLine=inventory.cmd\r\n0Parameters=/quiet\r\n' |
      iconv -f ASCII -t UTF-16LE; } > "$work/scripts.ini"
printf '[General]\r\ngPCMachineExtensionNames=[{35378EAC-683F-11D2-A89A-00C04FBBCFA2}{D02B1F72-3407-48AE-BA88-E8213C6761F1}]\r\nVersion=65537\r\n' > "$work/gpt.ini"
printf '@echo off\r\necho inventory\r\n' > "$work/inventory.cmd"

# A dirty hive: primary sequence number ahead of the secondary, as Windows
# leaves it when SYSTEM.LOG1/LOG2 hold changes not yet in the file.
cp "$hivedir/ws2019.hive" "$work/dirty.hive"
poke "$work/dirty.hive" 4 '\021\000\000\000\020\000\000\000'

t1=$(date +%s)
{
    cat <<EOF
add "$outdir/.tmp-win.raw" format:raw
add "$outdir/.tmp-sysres.raw" format:raw
add "$outdir/.tmp-nowin.raw" format:raw
add "$outdir/.tmp-twowin.raw" format:raw
add "$outdir/.tmp-dirty.raw" format:raw
add "$outdir/.tmp-hiber.raw" format:raw
add "$outdir/.tmp-badhive.raw" format:raw
add "$outdir/.tmp-template.raw" format:raw
add "$outdir/.tmp-casewin.raw" format:raw
add "$outdir/.tmp-casesys.raw" format:raw
add "$outdir/.tmp-casecfg.raw" format:raw
add "$outdir/.tmp-win4k.raw" format:raw blocksize:4096
run

mkfs ntfs /dev/sda1 label:Windows
mount /dev/sda1 /
EOF
    wintree ws2019
    cat <<EOF
umount /

mkfs ntfs /dev/sdb1 "label:System Reserved"
mkfs ntfs /dev/sdb2 label:Windows
mount /dev/sdb1 /
mkdir /Boot
upload "$work/BCD" /Boot/BCD
upload "$work/bootmgr" /bootmgr
umount /
mount /dev/sdb2 /
EOF
    wintree multi
    cat <<EOF
umount /

mkfs ntfs /dev/sdc1 label:Data
mount /dev/sdc1 /
mkdir-p /Documents
mkdir-p /Backup
upload "$work/report.txt" /Documents/report.txt
upload "$work/readme.txt" /readme.txt
umount /

mkfs ntfs /dev/sdd1 label:Windows
mkfs ntfs /dev/sdd2 label:Windows2
mount /dev/sdd1 /
EOF
    wintree ws2019
    cat <<EOF
umount /
mount /dev/sdd2 /
EOF
    wintree w2008r2
    cat <<EOF
umount /

mkfs ntfs /dev/sde1 label:Windows
mount /dev/sde1 /
EOF
    wintree "$work/dirty.hive"
    cat <<EOF
umount /

mkfs ntfs /dev/sdf1 label:Windows
mount /dev/sdf1 /
upload "$work/hiberfil.sys" /hiberfil.sys
EOF
    wintree ws2019
    cat <<EOF
umount /

mkfs ntfs /dev/sdg1 label:Windows
mount /dev/sdg1 /
EOF
    wintree "$work/garbage.hive"
    cat <<EOF
umount /

mkfs ntfs /dev/sdh1 label:Windows
mount /dev/sdh1 /
EOF
    wintree no-netvsc
    cat <<EOF
mkdir-p /Windows/System32/GROUPPOLICY/machine/scripts/STARTUP
upload "$work/gpt.ini" /Windows/System32/GROUPPOLICY/GPT.INI
upload "$work/scripts.ini" /Windows/System32/GROUPPOLICY/machine/scripts/scripts.ini
upload "$work/inventory.cmd" /Windows/System32/GROUPPOLICY/machine/scripts/STARTUP/inventory.cmd
umount /

mkfs ntfs /dev/sdi1 label:Windows
mount /dev/sdi1 /
EOF
    wintree ws2019
    cat <<EOF
mkdir-p /WINDOWS/System32/config
upload "$hivedir/w2008r2.hive" /WINDOWS/System32/config/SYSTEM
umount /

mkfs ntfs /dev/sdj1 label:Windows
mount /dev/sdj1 /
EOF
    wintree ws2019
    cat <<EOF
mkdir-p /Windows/SYSTEM32/config
upload "$hivedir/w2008r2.hive" /Windows/SYSTEM32/config/SYSTEM
umount /

mkfs ntfs /dev/sdk1 label:Windows
mount /dev/sdk1 /
EOF
    wintree ws2019
    cat <<EOF
mkdir /Windows/System32/Config
umount /

part-init /dev/sdl gpt
part-add /dev/sdl p 256 -256
part-set-gpt-type /dev/sdl 1 EBD0A0A2-B9E5-4433-87C0-68B6B72699C7
mkfs ntfs /dev/sdl1 label:Windows
mount /dev/sdl1 /
EOF
    wintree ws2019
    cat <<EOF
umount /
sync
shutdown
EOF
} > "$work/script.gf"

guestfish -f "$work/script.gf"
t2=$(date +%s)

for n in win sysres nowin twowin casewin casesys casecfg bitlocker win4k; do
    mv -f "$outdir/.tmp-$n.raw" "$outdir/$n.raw"
done

rm -f "$outdir/nopart.raw"
truncate -s 32M "$outdir/nopart.raw"

# --- other container formats, converted without the appliance ---
raw=$outdir/win.raw
conv() {    # conv OUT FORMAT [OPTIONS]
    rm -f "$outdir/$1"
    qemu-img convert -f raw -O "$2" ${3:+-o "$3"} "$raw" "$outdir/$1"
}
conv win-dyn.vhd vpc subformat=dynamic
conv win-fixed.vhd vpc subformat=fixed,force_size=on
conv win.vhdx vhdx
conv win.qcow2 qcow2
conv win.vmdk vmdk
rm -f "$outdir/win4k.qcow2"
qemu-img convert -f raw -O qcow2 "$outdir/win4k.raw" "$outdir/win4k.qcow2"
for n in dirty hiber badhive template; do
    rm -f "$outdir/$n.qcow2"
    qemu-img convert -f raw -O qcow2 "$outdir/.tmp-$n.raw" "$outdir/$n.qcow2"
    rm -f "$outdir/.tmp-$n.raw"
done
t3=$(date +%s)

echo "make-fixture-images: guestfish (1 launch) $((t2 - t1))s," \
     "qemu-img $((t3 - t2))s, total $((t3 - t0))s; images in $outdir"
