/* netvsc-patch: the partition table of a disk image (MBR with logical
 * partitions, GPT with 512- or 4096-byte sectors), read from its raw
 * bytes.  Hostile input: every offset and count from the disk is
 * checked before use.  Knows nothing of NBD, NTFS or libguestfs: the
 * caller supplies a function that reads the disk. */
#ifndef NETVSC_PATCH_PARTTABLE_H
#define NETVSC_PATCH_PARTTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define PARTTABLE_MAX 128

/* A filesystem candidate: a partition, or the whole disk. */
struct part {
  char dev[32];                /* "/dev/sda2", as libguestfs (and Linux) name it */
  uint64_t offset, size;       /* bytes, within the disk */
  const char *type;            /* filled by the caller: "ntfs", "vfat", ... NULL: unknown */
};

/* Read LEN bytes at OFFSET of the disk into BUF; past the disk's end,
 * zeros.  Returns 0, or -1 with *err. */
typedef int (*parttable_reader) (void *ctx, void *buf, size_t len, uint64_t offset,
                                 struct np_error *err);

/* Fill PARTS (at most MAX) and *N with the disk's partitions, numbered
 * as Linux numbers them: GPT entry N is sdaN (unused entries keep their
 * numbers; the backup header is used when the primary is damaged); MBR
 * primaries are sda1-4, logical partitions sda5 on in chain order.
 * With no partition table (or an NTFS boot sector at sector 0), the
 * whole disk is the one candidate "/dev/sda".  Partitions running past
 * the disk's end are cut at it, as the kernel does.  Returns 0, or -1
 * with *err if the disk cannot be read. */
int parttable_read (parttable_reader read, void *ctx, uint64_t disk_size,
                    struct part *parts, size_t max, size_t *n, struct np_error *err);

/* The same with the disk's logical sector size SECTOR: 512 or 4096 (the
 * user's --blocksize), as the kernel reads a disk with that sector size:
 * the GPT header at SECTOR only, MBR and EBR addresses in SECTOR units.
 * 0: unknown, as parttable_read (a GPT at 512, else at 4096; MBR in
 * 512-byte units). */
int parttable_read_sector (parttable_reader read, void *ctx, uint64_t disk_size,
                           unsigned sector, struct part *parts, size_t max, size_t *n,
                           struct np_error *err);

/* The logical sector size parttable_read finds a disk's partitions
 * with: 4096 if its only valid GPT header (primary or backup) is the
 * 4096-byte one, else 512.  What the appliance's disk is given
 * (--blocksize's default), so that its kernel sees what --direct
 * sees.  Returns 0 with *SECTOR, or -1 with *err. */
int parttable_sector_size (parttable_reader read, void *ctx, uint64_t disk_size,
                           unsigned *sector, struct np_error *err);

#endif
