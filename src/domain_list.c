/* netvsc-patch: a domain's disk list as the program keeps it (domain.h).
 * Apart from domain.c, which reads it through libvirt and libxml2 in the
 * image module (backends.h): hive mode loads neither. */
#include <stdio.h>
#include <stdlib.h>

#include "domain.h"

void
domain_drive_name (size_t i, char *buf, size_t len)
{
  if (i < 26)
    snprintf (buf, len, "sd%c", (char) ('a' + i));
  else
    snprintf (buf, len, "sd%c%c", (char) ('a' + (i / 26 - 1) % 26), (char) ('a' + i % 26));
}

void
domain_free (struct domain *d)
{
  for (size_t i = 0; i < d->n; i++)
    free (d->disks[i].path);
  free (d->disks);
  free (d->name);
  d->disks = NULL;
  d->name = NULL;
  d->n = 0;
}
