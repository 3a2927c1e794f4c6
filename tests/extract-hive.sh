#!/bin/sh
# extract-hive.sh IMAGE OUT [PARTNUM]
#
# Copy Windows/System32/config/SYSTEM out of a disk image into OUT without
# libguestfs: an independent reader for checking what netvsc-patch wrote.
#
#   1. the image is converted to raw with qemu-img (skipped when it is raw
#      already); its format is $FORMAT if set, else what `qemu-img info`
#      says -- except that a fixed VHD (raw data + a 512-byte "conectix"
#      footer, which qemu probes as raw) is recognised by its footer;
#   2. the partition table is read with sfdisk (MBR or GPT; a disk with no
#      partition table is tried as one whole-disk filesystem); with
#      $SECTOR_SIZE=4096 (a disk with 4K logical sectors, GPT header at
#      byte 4096) with fdisk -b 4096 instead, which sfdisk cannot do;
#   3. the partition is copied out with dd and the file read with ntfscat.
#
# PARTNUM picks the partition; by default every partition is tried in
# order and the first that holds the file wins.  The partition used is
# reported on stderr.  $HIVE_PATH overrides the file to extract.
# Exits 0 on success, 1 on failure (with a message), 2 on bad usage.
set -eu

me=extract-hive
die() { echo "$me: $*" >&2; exit 1; }

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 IMAGE OUT [PARTNUM]" >&2
    exit 2
fi
image=$1
out=$2
want=${3:-}
path=${HIVE_PATH:-/Windows/System32/config/SYSTEM}
sector=${SECTOR_SIZE:-512}
case $sector in
    512|4096) ;;
    *) echo "$me: bad SECTOR_SIZE '$sector' (512 or 4096)" >&2; exit 2 ;;
esac

case $want in
    '') ;;
    *[!0-9]*|0*) echo "$me: bad PARTNUM '$want'" >&2; exit 2 ;;
esac
[ -f "$image" ] || die "$image: no such file"
for tool in qemu-img sfdisk ntfscat dd; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/extract-hive.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# --- 1. format and raw copy ---
fmt=${FORMAT:-}
if [ -z "$fmt" ]; then
    fmt=$(qemu-img info -U -- "$image" 2>"$tmp/err" |
          sed -n 's/^file format: //p') ||
        true
    [ -n "$fmt" ] || die "$image: qemu-img info failed: $(cat "$tmp/err")"
    if [ "$fmt" = raw ]; then
        size=$(wc -c < "$image")
        if [ "$size" -ge 1024 ] &&
           [ "$(tail -c 512 "$image" | head -c 8)" = conectix ]; then
            fmt=vpc     # fixed VHD: qemu probes these as raw
        fi
    fi
fi
case $fmt in
    vhd) fmt=vpc ;;
esac

if [ "$fmt" = raw ]; then
    disk=$image
else
    disk=$tmp/disk.raw
    qemu-img convert -U -f "$fmt" -O raw -- "$image" "$disk" \
        2>"$tmp/err" || die "$image: qemu-img convert from $fmt failed: $(cat "$tmp/err")"
fi

# --- 2. partitions: lines "NUM START SIZE" in $sector-byte sectors ---
if [ "$sector" != 512 ]; then
    fdisk -b "$sector" -l -o Device,Start,Sectors -- "$disk" > "$tmp/dump" 2>"$tmp/err" ||
        die "$image: fdisk -b $sector failed: $(cat "$tmp/err")"
    # the lines after the "Device Start Sectors" header: DEVICE START SECTORS
    awk 'p && NF == 3 { print } $1 == "Device" { p = 1 }' "$tmp/dump" |
    while read -r node start size; do
        echo "${node##*[!0-9]} $start $size"
    done > "$tmp/parts"
    [ -s "$tmp/parts" ] || die "$image: no partitions with $sector-byte sectors"
    table=yes
elif sfdisk --dump -- "$disk" > "$tmp/dump" 2>"$tmp/err"; then
    sed -n 's/^\([^ ]*\) *: *start= *\([0-9]*\), *size= *\([0-9]*\).*/\1 \2 \3/p' \
        "$tmp/dump" |
    while read -r node start size; do
        echo "${node##*[!0-9]} $start $size"
    done > "$tmp/parts"
    [ -s "$tmp/parts" ] || die "$image: the partition table has no partitions"
    table=yes
else
    # No partition table: try the whole disk as one filesystem.
    bytes=$(wc -c < "$disk")
    echo "0 0 $((bytes / sector))" > "$tmp/parts"
    table=no
fi

if [ -n "$want" ]; then
    grep -q "^$want " "$tmp/parts" ||
        die "$image: no partition $want (partitions: $(cut -d' ' -f1 "$tmp/parts" | tr '\n' ' '))"
fi

# ntfscat looks paths up case-sensitively while Windows does not (XP-era
# hives are config/system, later ones config/SYSTEM): resolve PATH one
# component at a time against ntfsls listings.
resolve_ci() {     # resolve_ci DEVICE PATH -> the path as spelt on disk
    r_rest=${2#/} r_cur=
    while [ -n "$r_rest" ]; do
        r_comp=${r_rest%%/*}
        case $r_rest in */*) r_rest=${r_rest#*/} ;; *) r_rest= ;; esac
        [ -n "$r_comp" ] || continue
        r_match=$(ntfsls -p "${r_cur:-/}" "$1" 2>/dev/null |
                  awk -v c="$r_comp" 'tolower($0) == tolower(c) { print; exit }')
        [ -n "$r_match" ] || return 1
        r_cur=$r_cur/$r_match
    done
    printf '%s\n' "$r_cur"
}

# --- 3. copy each candidate partition out and try ntfscat ---
tried=""
while read -r num start size; do
    [ -z "$want" ] || [ "$num" = "$want" ] || continue
    dd if="$disk" of="$tmp/part" bs=1M iflag=skip_bytes,count_bytes \
       skip=$((start * sector)) count=$((size * sector)) conv=sparse status=none ||
        die "$image: dd of partition $num failed"
    found=$path
    if ! ntfscat -q "$tmp/part" "$found" > "$tmp/hive" 2>"$tmp/err"; then
        found=$(resolve_ci "$tmp/part" "$path") || found=
        [ -z "$found" ] ||
            ntfscat -q "$tmp/part" "$found" > "$tmp/hive" 2>"$tmp/err" ||
            found=
    fi
    if [ -n "$found" ] && [ -s "$tmp/hive" ]; then
        mv -f "$tmp/hive" "$out" 2>/dev/null || cp "$tmp/hive" "$out"
        if [ "$table" = yes ]; then
            echo "$me: $found from partition $num ($fmt)" >&2
        else
            echo "$me: $found from the unpartitioned disk ($fmt)" >&2
        fi
        exit 0
    fi
    why=$(head -n 1 "$tmp/err")
    tried="$tried
  partition $num: ${why:-file missing or empty}"
    rm -f "$tmp/part" "$tmp/hive"
done < "$tmp/parts"

if [ "$table" = no ]; then
    die "$image: no partition table, and the whole disk holds no NTFS $path:$tried"
fi
die "$image: no partition holds $path:$tried"
