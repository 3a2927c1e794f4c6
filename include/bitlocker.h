/* netvsc-patch: BitLocker volumes: recognising one from its first
 * sector (both backends, one rule), and the keys the user gives for
 * them (--key DEVICE:key:KEY, --key DEVICE:file:FILE,
 * --keys-from-stdin), in the form the virt tools take them.
 *
 * A key is a secret: it is never printed, and any message that might
 * carry it (a library's error) goes through keystore_scrub first. */
#ifndef NETVSC_PATCH_BITLOCKER_H
#define NETVSC_PATCH_BITLOCKER_H

#include <stddef.h>

#include "status.h"

/* The filesystem type of a BitLocker volume, as blkid (and so the
 * appliance) names it; the direct backend reports the same. */
#define BITLOCKER_TYPE "BitLocker"

/* Is BOOT, a volume's first LEN bytes (512 needed), a BitLocker volume
 * header?  "-FVE-FS-" as the OEM id at offset 3 (Windows Vista, 7 and
 * later, BitLocker To Go on NTFS), or a FAT boot sector "MSWIN4.1"
 * carrying BitLocker To Go's identifier at offset 424 (libbde's format
 * description). */
int bitlocker_signature (const unsigned char *boot, size_t len);

/* The keys given on the command line. */
struct key_entry {
  char *device;                /* "/dev/sda2" as netvsc-patch names it; NULL: any */
  char *key;
};

struct keystore {
  struct key_entry *v;
  size_t n;
};

/* --key SELECTOR: DEVICE:key:KEY (the rest of the argument, colons
 * included) or DEVICE:file:FILE (FILE's first line, its line end
 * removed).  Returns 0, or -1 with *err (NP_EXIT_USAGE; the message
 * shows the device and the file, never a key). */
int keystore_add_selector (struct keystore *ks, const char *selector, struct np_error *err);

/* --keys-from-stdin: keys from FD, one a line, each for any encrypted
 * volume that no --key names; from a terminal, one line read with echo
 * off after a prompt on it.  Returns 0, or -1 with *err (no key read). */
int keystore_add_stream (struct keystore *ks, int fd, struct np_error *err);

/* The keys to try on DEVICE, in order: those given for it, else those
 * given for any volume.  Fills KEYS (at most MAX); returns how many. */
size_t keystore_find (const struct keystore *ks, const char *device, const char **keys,
                      size_t max);

/* Every key in ERR's message replaced by "***". */
void keystore_scrub (const struct keystore *ks, struct np_error *err);

void keystore_free (struct keystore *ks);

#endif
