/* netvsc-patch: a libvirt domain as a target (-d NAME, -c URI).
 *
 * A domain's disks are one guest: the Windows system volume is searched
 * across all of them.  This module only asks libvirt (a read-only
 * connection) for the domain's state and XML and reads the disks from
 * the XML; job.c takes every disk through the same checks as an image
 * named on the command line (format, the files it names, qemu-img
 * preflight) and opens them together.
 *
 * Why not guestfs_add_domain: what qemu opens must be exactly what was
 * checked (layers.h), and --direct needs the same list; one reading of
 * the XML serves both backends.  libguestfs 1.48's rules are kept: a
 * running domain is opened read-only or not at all ("live" is ignored
 * in 1.48), and a disk the XML marks <readonly/> is added read-only
 * (its readonlydisk="read" default). */
#ifndef NETVSC_PATCH_DOMAIN_H
#define NETVSC_PATCH_DOMAIN_H

#include <stddef.h>

#include "status.h"

struct domain_disk {
  char *path;                   /* <source file=> or <source dev=> */
  const char *format;           /* from <driver type=>, canonical; NULL: detect */
  int readonly;                 /* <readonly/>, or a CD-ROM */
  char target[32];              /* <target dev=>, for messages ("vda") */
};

struct domain {
  char *name;                   /* as libvirt spells it */
  int active;                   /* running, paused, ...: not shut off */
  const char *state;            /* "running", "paused", "shut off", ... */
  size_t n;
  struct domain_disk *disks;    /* in the XML's order */
};

/* Connect to URI (NULL: libvirt's default) read-only, find the domain
 * NAME (a name, or a UUID), read its state and disks.  Returns 0, or
 * -1 with *err (exit 1) naming the domain: cannot connect, no such
 * domain, no disks, a disk that is not a local file or block device, a
 * format netvsc-patch does not open. */
int domain_lookup (const char *uri, const char *name, struct domain *out,
                   struct np_error *err);

/* The disks of the domain XML (LEN bytes) into OUT->n/disks; NAME for
 * messages.  Pure: the unit tests call it.  Returns 0 or -1 with *err. */
int domain_parse_xml (const char *name, const char *xml, size_t len, struct domain *out,
                      struct np_error *err);

void domain_free (struct domain *d);

/* "sda", "sdb", ... "sdz", "sdaa": how drive I of a guest is named (as
 * Linux and libguestfs name the I-th drive added). */
void domain_drive_name (size_t i, char *buf, size_t len);

#endif
