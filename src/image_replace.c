/* netvsc-patch: the appliance backend's replace: a new SYSTEM (or any
 * file of the hive's directory) uploaded beside the original, synced,
 * read back, given the original's NTFS security descriptor and
 * attributes, and renamed over it. */

#include "image-internal.h"
#include "escape.h"
#include "hostfile.h"

/* Set the extended attribute NAME of guest file PATH to the LEN bytes
 * of VAL, and read it back.
 *
 * Not with guestfs_setxattr: its value travels to the appliance as an
 * XDR string, cut at the first NUL byte, which every NTFS security
 * descriptor and attribute word contains (the daemon then passes VALLEN
 * bytes of which only the first arrived: ntfs-3g rejects a descriptor
 * with EINVAL and takes garbage for the rest of an attribute word).
 * The value goes hex-encoded to setfattr inside the appliance instead,
 * through guestfs_debug's "sh" (libguestfs has no binary-safe call
 * that sets an attribute), and what ntfs-3g then returns for it is
 * compared with VAL. */
int
image_set_xattr (struct image *im, const char *path, const char *name, const char *val,
                 size_t len, struct np_error *err)
{
  static const char hex[] = "0123456789abcdef";
  size_t cap = strlen (name) + 2 * len + 4 * strlen (path) + 64, n = 0, blen = 0;
  char *cmd = malloc (cap), *out, *back;
  int same;

  if (cmd == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  n += (size_t) snprintf (cmd + n, cap - n, "setfattr -n %s -v 0x", name);
  for (size_t i = 0; i < len; i++) {
    cmd[n++] = hex[(unsigned char) val[i] >> 4];
    cmd[n++] = hex[(unsigned char) val[i] & 15];
  }
  /* The daemon sets $root to where the guest's volume is mounted;
   * PATH is single-quoted. */
  n += (size_t) snprintf (cmd + n, cap - n, " -- \"$root\"'");
  for (const char *p = path; *p; p++) {
    if (*p == '\'') {
      memcpy (cmd + n, "'\\''", 4);
      n += 4;
    }
    else
      cmd[n++] = *p;
  }
  cmd[n++] = '\'';
  cmd[n] = '\0';
  out = guestfs_debug (im->g, "sh", (char *[]) { cmd, NULL });
  free (cmd);
  if (out == NULL) {
    char what[128];
    snprintf (what, sizeof what, "cannot set %s", name);
    return image_path_error (im, path, what, err);
  }
  free (out);
  back = guestfs_getxattr (im->g, path, name, &blen);
  same = back && blen == len && memcmp (back, val, len) == 0;
  free (back);
  if (!same)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: cannot set %s (it does not read "
                         "back as written)", im->path, path, name);
  return 0;
}

/* Give the new file the original's NTFS security descriptor and
 * attributes (ntfs-3g exposes them as extended attributes). */
int
image_copy_ntfs_metadata (struct image *im, const char *from, const char *to, struct np_error *err)
{
  const char *names[] = { "system.ntfs_acl", "system.ntfs_attrib" };

  for (size_t i = 0; i < 2; i++) {
    size_t size;
    char *val = guestfs_getxattr (im->g, from, names[i], &size);
    int r;

    if (val == NULL) {
      char what[64];
      snprintf (what, sizeof what, "cannot read %s", names[i]);
      return image_path_error (im, from, what, err);
    }
    r = image_set_xattr (im, to, names[i], val, size, err);
    free (val);
    if (r == -1)
      return -1;
    if (im->verbose)
      esc_line (stderr, "netvsc-patch: %s: %s of %s copied to %s", im->path, names[i],
               from, to);
  }
  return 0;
}

int
image_replace (struct disk *d, const char *name, const char *local,
               const char *scratch, struct np_error *err)
{
  struct image *im = (struct image *) d;
  char *tmp = NULL, *target = NULL;
  int same, r = -1;

  if (image_ensure_mounted (im, 1, err) == -1)
    return -1;
  target = image_config_file (im, name);
  if (target == NULL && asprintf (&target, "%s/%s", im->config_dir, name) == -1)
    target = NULL;
  if (target == NULL || asprintf (&tmp, "%s%s", target, TMP_SUFFIX) == -1) {
    free (target);
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  }

  if (guestfs_upload (im->g, local, tmp) == -1) {
    image_guest_error (im, err, NP_EXIT_RUNTIME, "cannot copy the new file into the guest");
    goto fail;
  }
  if (guestfs_sync (im->g) == -1) {
    image_guest_error (im, err, NP_EXIT_RUNTIME, "sync failed");
    goto fail;
  }
  /* Read back what the guest filesystem holds before trusting it. */
  unlink (scratch);
  if (guestfs_download (im->g, tmp, scratch) == -1) {
    image_guest_error (im, err, NP_EXIT_RUNTIME, "cannot read back the new file");
    goto fail;
  }
  same = hostfile_same (local, scratch);
  unlink (scratch);
  if (same != 0) {
    np_error_set (err, NP_EXIT_RUNTIME,
                  "%s: %s does not read back identically; original left in place",
                  im->path, tmp);
    goto fail;
  }
  /* The new file must not keep ntfs-3g's default descriptor (full
   * control for Everyone) in place of the original's. */
  if (guestfs_is_file (im->g, target) == 1 &&
      image_copy_ntfs_metadata (im, target, tmp, err) == -1)
    goto fail;
  if (guestfs_rename (im->g, tmp, target) == -1) {
    image_guest_error (im, err, NP_EXIT_RUNTIME, "cannot rename the new file into place");
    goto fail;
  }
  if (guestfs_sync (im->g) == -1) {
    image_guest_error (im, err, NP_EXIT_RUNTIME, "sync failed");
    goto out;
  }
  r = 0;
  goto out;

 fail:
  /* Leave no stray file in the guest; the original is untouched. */
  guestfs_rm_f (im->g, tmp);
 out:
  free (tmp);
  free (target);
  return r;
}
