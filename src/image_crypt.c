/* netvsc-patch: BitLocker volumes in the appliance backend.  The
 * appliance's cryptsetup (BITLK support, cryptsetup >= 2.3) opens a
 * volume with a recovery key or password given with --key or
 * --keys-from-stdin (bitlocker.h); the decrypted device is then one
 * more filesystem for winvol.c.  Keys never reach a message or a trace. */

#include "image-internal.h"
#include "bitlocker.h"

int
image_crypt_is_bitlocker (struct image *im, const char *dev)
{
  size_t got = 0;
  char *b = guestfs_pread_device (im->g, dev, 512, 0, &got);
  int r = b && bitlocker_signature ((const unsigned char *) b, got);

  free (b);
  return r;
}

int
image_crypt_open (struct image *im, const char *dev, const char *local,
                  const char **mapped, char *why, size_t len)
{
  const char *keys[16];
  size_t n = im->keys ? keystore_find (im->keys, local, keys, 16) : 0;
  const char *base = strrchr (dev, '/') ? strrchr (dev, '/') + 1 : dev;
  char name[48];
  int trace;

  *mapped = NULL;
  if (n == 0)
    return 1;
  if (im->n_crypt == sizeof im->crypt / sizeof im->crypt[0]) {
    snprintf (why, len, "too many encrypted volumes");
    return -1;
  }
  /* one name per appliance drive: a batch's images never clash */
  snprintf (name, sizeof name, "netvsc_%s", base);
  /* libguestfs's trace (-vv) would print the call's arguments */
  trace = guestfs_get_trace (im->g);
  guestfs_set_trace (im->g, 0);
  for (size_t i = 0; i < n; i++) {
    struct np_error e = { NP_EXIT_RUNTIME, "" };
    const char *msg;

    if (guestfs_cryptsetup_open (im->g, dev, keys[i], name,
                                 GUESTFS_CRYPTSETUP_OPEN_READONLY, im->readonly,
                                 GUESTFS_CRYPTSETUP_OPEN_CRYPTTYPE, "bitlk", -1) == 0) {
      guestfs_set_trace (im->g, trace);
      snprintf (im->crypt[im->n_crypt].local, sizeof im->crypt[0].local, "%s", local);
      snprintf (im->crypt[im->n_crypt].mapped, sizeof im->crypt[0].mapped, "/dev/mapper/%s",
                name);
      *mapped = im->crypt[im->n_crypt++].mapped;
      return 0;
    }
    msg = guestfs_last_error (im->g);
    snprintf (e.msg, sizeof e.msg, "%s", msg ? msg : "cryptsetup failed");
    np_one_line (e.msg);
    {
      char *advice = strstr (e.msg, " This usually means");
      if (advice)
        *advice = '\0';
    }
    keystore_scrub (im->keys, &e);
    /* the appliance names its devices its own way: this one is LOCAL */
    for (char *at = strstr (e.msg, "/dev/sd"); at; at = strstr (at + 1, "/dev/sd")) {
      size_t n = 7;
      char tail[sizeof e.msg];
      while (at[n] >= 'a' && at[n] <= 'z')
        n++;
      while (at[n] >= '0' && at[n] <= '9')
        n++;
      snprintf (tail, sizeof tail, "%s", at + n);
      snprintf (at, sizeof e.msg - (size_t) (at - e.msg), "%s%s", local, tail);
    }
    snprintf (why, len, "%s%s", e.msg, n > 1 ? "; no other key given opened it either" : "");
  }
  guestfs_set_trace (im->g, trace);
  return -1;
}

const char *
image_crypt_mapped (const struct image *im, const char *local)
{
  for (size_t i = 0; i < im->n_crypt; i++)
    if (strcmp (im->crypt[i].local, local) == 0)
      return im->crypt[i].mapped;
  return NULL;
}

void
image_crypt_close (struct image *im)
{
  for (size_t i = 0; i < im->n_crypt; i++)
    guestfs_cryptsetup_close (im->g, im->crypt[i].mapped);
  im->n_crypt = 0;
}
