/* netvsc-patch: the direct backend reading raw images and fixed VHDs
 * itself, without qemu-nbd (src/direct_file.c). */
#ifndef NETVSC_PATCH_DIRECTFILE_H
#define NETVSC_PATCH_DIRECTFILE_H

/* Does the direct backend read PATH (FORMAT, QEMU_SPEC as in
 * disk_request) itself?  Then it checks qemu's locks and the image's
 * bounds itself when it opens it, and qemu-img's preflight has nothing
 * to add.  1 or 0; a truncated fixed VHD counts (its open refuses it). */
int direct_file_serves (const char *path, const char *format, const char *qemu_spec);

#endif
