/* netvsc-patch: the appliance backend's calls for other files of the
 * Windows volume (--defer): read, create or replace, remove, with
 * case-insensitive paths and inherited security descriptors. */

#include "image-internal.h"

/* Only to compute inherited security descriptors (write_file): pure
 * functions over bytes, no filesystem access from this process.
 * libntfs-3g's headers expect the system headers above first. */
#include <ntfs-3g/types.h>
#include <ntfs-3g/layout.h>
#include <ntfs-3g/security.h>
#include <ntfs-3g/acls.h>

#include "escape.h"

/* --- other files of the volume (--defer) ------------------------------
 *
 * read_file, write_file and remove_file on any file of the Windows
 * volume, PATH resolved one component at a time with
 * guestfs_case_sensitive_path (which resolves a path whose parent
 * exists), so that missing directories can be told apart and created
 * in the case PATH spells them.
 *
 * write_file works as image_replace does: the content goes to a
 * temporary name beside the target (PATH + TMP_SUFFIX, a stale one is
 * removed first), is synced and read back, takes the NTFS security
 * descriptor and attributes of the file it replaces, and is renamed
 * over it; then sync.  A new file or directory gets the security
 * descriptor Windows would give it, inherited from its directory, not
 * ntfs-3g's default (full control for Everyone: for a startup script
 * run as SYSTEM, a way for any user to run code as SYSTEM).  The
 * computation is the one libntfs-3g does for the direct backend
 * (ntfs_inherited_id), so that both backends write the same descriptor;
 * it runs here on bytes read from the guest, checked first. */

/* The bytes ntfs_inherit_acl may use to inherit from ACL, whose N ACEs
 * (checked) take S bytes: each ACE can give one for access, one for
 * further inheritance and one for its creator owner or group, and the
 * function copies an ACE past its output before deciding to keep it. */
static size_t
inherit_room (const ACL *acl)
{
  size_t s = 0, n = le16_to_cpu (acl->ace_count), off = sizeof (ACL);

  for (size_t i = 0; i < n; i++) {
    size_t sz = le16_to_cpu (((const ACCESS_ALLOWED_ACE *) ((const char *) acl + off))->size);
    s += sz;
    off += sz;
  }
  return sizeof (ACL) + 3 * s + n * (8 + 2 * 68) + 64;
}

/* The security descriptor a new file (directory if FORDIR) gets in a
 * directory whose descriptor is PARENT (PLEN bytes, from the guest):
 * what libntfs-3g's ntfs_inherited_id builds for a process running as
 * root without a user mapping.  The parent's inheritable ACEs (DACL and
 * SACL, by ntfs_inherit_acl, marked inherited if the parent's are auto-
 * inherited), owner and group Administrators.  Returns it (malloc'd,
 * *LEN bytes), or NULL if PARENT is not a descriptor libntfs-3g
 * accepts. */
static char *
inherited_sd (const char *parent, size_t plen, int fordir, size_t *len)
{
  const SECURITY_DESCRIPTOR_RELATIVE *ph = (const SECURITY_DESCRIPTOR_RELATIVE *) parent;
  SECURITY_DESCRIPTOR_RELATIVE *nh;
  size_t room = sizeof *nh + 2 * (size_t) ntfs_sid_size (adminsid), pos;
  const ACL *dacl = NULL, *sacl = NULL;
  char *sd;
  int sz;

  if (plen < sizeof *ph || plen > 65536 || !ntfs_valid_descr (parent, (unsigned) plen))
    return NULL;
  if (ph->dacl) {
    dacl = (const ACL *) (parent + le32_to_cpu (ph->dacl));
    room += inherit_room (dacl);
  }
  if (ph->sacl) {
    sacl = (const ACL *) (parent + le32_to_cpu (ph->sacl));
    room += inherit_room (sacl);
  }
  sd = calloc (1, room);
  if (sd == NULL)
    return NULL;
  nh = (SECURITY_DESCRIPTOR_RELATIVE *) sd;
  nh->revision = SECURITY_DESCRIPTOR_REVISION;
  nh->control = (ph->control & (SE_DACL_AUTO_INHERITED | SE_SACL_AUTO_INHERITED)) |
    SE_SELF_RELATIVE;
  pos = sizeof *nh;
  if (dacl) {
    sz = ntfs_inherit_acl (dacl, (ACL *) (sd + pos), adminsid, adminsid, fordir,
                           ph->control & SE_DACL_AUTO_INHERITED);
    if (sz > 65535)
      goto bad;
    if (sz > 0) {
      nh->dacl = cpu_to_le32 ((u32) pos);
      nh->control |= SE_DACL_PRESENT;
      pos += (size_t) sz;
    }
  }
  if (sacl) {
    sz = ntfs_inherit_acl (sacl, (ACL *) (sd + pos), adminsid, adminsid, fordir,
                           ph->control & SE_SACL_AUTO_INHERITED);
    if (sz > 65535)
      goto bad;
    if (sz > 0) {
      nh->sacl = cpu_to_le32 ((u32) pos);
      nh->control |= SE_SACL_PRESENT;
      pos += (size_t) sz;
    }
  }
  memcpy (sd + pos, adminsid, (size_t) ntfs_sid_size (adminsid));
  nh->owner = cpu_to_le32 ((u32) pos);
  pos += (size_t) ntfs_sid_size (adminsid);
  memcpy (sd + pos, adminsid, (size_t) ntfs_sid_size (adminsid));
  nh->group = cpu_to_le32 ((u32) pos);
  pos += (size_t) ntfs_sid_size (adminsid);
  *len = pos;
  return sd;
 bad:
  free (sd);
  return NULL;
}

/* Give the new file or directory CHILD the descriptor inherited from
 * its directory DIR.  If none can be computed, it keeps ntfs-3g's
 * default, and that is said (as a warning, since it is not an error:
 * an NTFS 1.x volume has no inheritance). */
static int
inherit_security (struct image *im, const char *dir, const char *child, int fordir,
                  struct np_error *err)
{
  size_t plen = 0, len = 0;
  char *parent = guestfs_getxattr (im->g, dir, "system.ntfs_acl", &plen);
  char *sd = parent ? inherited_sd (parent, plen, fordir, &len) : NULL;
  int r = 0;

  if (sd == NULL) {
    if (!im->quiet)
      esc_line (stderr, "netvsc-patch: warning: %s: %s: nothing to inherit from %s: it keeps "
               "ntfs-3g's default security descriptor (full control for Everyone)",
               im->path, child, dir);
  }
  else if (image_set_xattr (im, child, "system.ntfs_acl", sd, len, err) == -1)
    r = -1;
  else if (im->verbose)
    esc_line (stderr, "netvsc-patch: %s: %s: security descriptor inherited from %s",
             im->path, child, dir);
  free (parent);
  free (sd);
  return r;
}

/* Resolve the directories of PATH (COMPS[0..N-2]) one at a time.
 * Returns 1 and *DIR (the directory as spelt on disk, malloc'd), 0 if
 * one is missing and !CREATE, -1 with *err.  With CREATE the missing
 * ones are made, in the case PATH spells them. */
static int
resolve_dirs (struct image *im, const char *path, char **comps, size_t n, int create,
              char **dir, struct np_error *err)
{
  char *cur = strdup ("");

  *dir = NULL;
  if (cur == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  for (size_t i = 0; i + 1 < n; i++) {
    char *want = NULL, *got;
    int exists, isdir;

    if (asprintf (&want, "%s/%s", cur, comps[i]) == -1) {
      free (cur);
      return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    }
    got = guestfs_case_sensitive_path (im->g, want);
    free (want);
    if (got == NULL) {
      free (cur);
      return image_path_error (im, path, "cannot resolve the path", err);
    }
    exists = guestfs_exists (im->g, got);
    isdir = exists == 1 ? guestfs_is_dir (im->g, got) : 0;
    if (exists == -1 || isdir == -1) {
      free (cur);
      free (got);
      return image_path_error (im, path, "cannot look at a directory on the way", err);
    }
    if (exists && !isdir) {
      np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: %s is not a directory", im->path, path,
                    got);
      free (cur);
      free (got);
      return -1;
    }
    if (!exists) {
      if (!create) {
        free (cur);
        free (got);
        return 0;
      }
      if (im->verbose)
        esc_line (stderr, "netvsc-patch: %s: create the directory %s", im->path, got);
      if (guestfs_mkdir (im->g, got) == -1) {
        char what[PATH_MAX + 64];
        snprintf (what, sizeof what, "cannot create the directory %s", got);
        image_path_error (im, path, what, err);
        free (cur);
        free (got);
        return -1;
      }
      if (inherit_security (im, *cur ? cur : "/", got, 1, err) == -1) {
        np_error_context (err, im->path, path);
        free (cur);
        free (got);
        return -1;
      }
    }
    free (cur);
    cur = got;
  }
  if (*cur == '\0') {
    free (cur);
    cur = strdup ("/");
    if (cur == NULL)
      return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  }
  *dir = cur;
  return 1;
}

/* Where PATH is, or would be: its directory and itself as spelt on
 * disk (the file's own name as PATH spells it when it does not exist).
 * Returns 1 (*EXISTS says whether the file does), 0 if a directory on
 * the way is missing and !CREATE, -1 with *err.  A PATH that exists
 * but is not a regular file is an error. */
static int
resolve_file (struct image *im, const char *path, int create, char **dir, char **file,
              int *exists, struct np_error *err)
{
  char *buf, **comps, *want = NULL;
  size_t n;
  int r;

  *dir = *file = NULL;
  *exists = 0;
  if (disk_path_split (im->path, path, &buf, &comps, &n, err) == -1)
    return -1;
  r = resolve_dirs (im, path, comps, n, create, dir, err);
  if (r == 1) {
    if (asprintf (&want, "%s/%s", strcmp (*dir, "/") ? *dir : "", comps[n - 1]) == -1) {
      want = NULL;
      r = np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    }
    else if ((*file = guestfs_case_sensitive_path (im->g, want)) == NULL)
      r = image_path_error (im, path, "cannot resolve the path", err);
    else if ((*exists = guestfs_exists (im->g, *file)) == -1)
      r = image_path_error (im, path, "cannot look at it", err);
    else if (*exists && guestfs_is_file (im->g, *file) != 1)
      r = np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: not a regular file%s", im->path, path,
                        guestfs_is_dir (im->g, *file) == 1 ? " (a directory)" : "");
  }
  if (r != 1) {
    free (*dir);
    free (*file);
    *dir = *file = NULL;
  }
  free (want);
  free (comps);
  free (buf);
  return r;
}

int
image_read_file (struct disk *d, const char *path, char **buf, size_t *len,
                 struct np_error *err)
{
  struct image *im = (struct image *) d;
  char *dir = NULL, *file = NULL, *data;
  size_t n = 0;
  int64_t size;
  int exists, r;

  *buf = NULL;
  *len = 0;
  if (image_ensure_mounted (im, 0, err) == -1) {
    np_error_context (err, im->path, path);
    return -1;
  }
  r = resolve_file (im, path, 0, &dir, &file, &exists, err);
  if (r != 1 || !exists) {
    free (dir);
    free (file);
    return r == -1 ? -1 : 1;
  }
  /* Small files: the protocol carries up to a few MB in one message;
   * larger, refused alike by both backends */
  size = guestfs_filesize (im->g, file);
  data = size >= 0 && (uint64_t) size <= DISK_READ_MAX ? guestfs_read_file (im->g, file, &n) : NULL;
  if (size > (int64_t) DISK_READ_MAX)
    r = np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: larger than %u MB: not read", im->path,
                      path, DISK_READ_MAX >> 20);
  else if (data == NULL)
    r = image_path_error (im, path, "cannot read it", err);
  else if ((*buf = malloc (n + 1)) == NULL)
    r = np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  else {
    memcpy (*buf, data, n);
    (*buf)[n] = '\0';
    *len = n;
    r = 0;
  }
  free (data);
  free (dir);
  free (file);
  return r;
}

int
image_write_file (struct disk *d, const char *path, const char *buf, size_t len,
                  struct np_error *err)
{
  struct image *im = (struct image *) d;
  char *dir = NULL, *file = NULL, *tmp = NULL, *back = NULL;
  size_t blen = 0;
  int exists, r = -1, written = 0;

  /* A read-only drive has a throwaway overlay: a write would vanish. */
  if (im->readonly)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: the image was opened read-only",
                         im->path, path);
  /* Refuses a hibernated volume (exit 4) before anything is written. */
  if (image_ensure_mounted (im, 1, err) == -1) {
    np_error_context (err, im->path, path);
    return -1;
  }
  if (resolve_file (im, path, 1, &dir, &file, &exists, err) != 1)
    goto out;
  if (asprintf (&tmp, "%s%s", file, TMP_SUFFIX) == -1) {
    tmp = NULL;
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    goto out;
  }
  if (im->verbose)
    esc_line (stderr, "netvsc-patch: %s: write %s (%zu bytes) by way of %s", im->path, file,
             len, tmp);
  /* What a killed run left (our name: never anything else's). */
  if (guestfs_rm_f (im->g, tmp) == -1) {
    image_path_error (im, tmp, "cannot remove a stale temporary file", err);
    goto out;
  }
  written = 1;
  if (guestfs_write (im->g, tmp, buf, len) == -1) {
    image_path_error (im, tmp, "cannot write", err);
    goto out;
  }
  if (guestfs_sync (im->g) == -1) {
    image_path_error (im, path, "sync failed", err);
    goto out;
  }
  /* Read back what the guest filesystem holds before trusting it. */
  back = guestfs_read_file (im->g, tmp, &blen);
  if (back == NULL) {
    image_path_error (im, tmp, "cannot read back the new file", err);
    goto out;
  }
  if (blen != len || memcmp (back, buf, len) != 0) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s does not read back identically; %s left "
                  "unchanged", im->path, tmp, path);
    goto out;
  }
  if (exists) {
    if (image_copy_ntfs_metadata (im, file, tmp, err) == -1)
      goto out;
  }
  else if (inherit_security (im, dir, tmp, 0, err) == -1)
    goto out;
  if (guestfs_rename (im->g, tmp, file) == -1) {
    image_path_error (im, path, "cannot rename the new file into place", err);
    goto out;
  }
  written = 0;
  if (guestfs_sync (im->g) == -1) {
    image_path_error (im, path, "sync failed", err);
    goto out;
  }
  r = 0;

 out:
  /* Leave no stray file in the guest; PATH is untouched. */
  if (written)
    guestfs_rm_f (im->g, tmp);
  if (r == -1)
    np_error_context (err, im->path, path);
  free (back);
  free (tmp);
  free (dir);
  free (file);
  return r;
}

int
image_remove_file (struct disk *d, const char *path, struct np_error *err)
{
  struct image *im = (struct image *) d;
  char *dir = NULL, *file = NULL;
  int exists, r;

  /* Absent is success, and needs no write (nor a writable volume). */
  if (image_ensure_mounted (im, 0, err) == -1) {
    np_error_context (err, im->path, path);
    return -1;
  }
  r = resolve_file (im, path, 0, &dir, &file, &exists, err);
  if (r == 1 && exists) {
    r = -1;
    if (im->verbose)
      esc_line (stderr, "netvsc-patch: %s: remove %s", im->path, file);
    if (im->readonly)
      np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: the image was opened read-only", im->path,
                    path);
    else if (image_ensure_mounted (im, 1, err) == -1)
      np_error_context (err, im->path, path);
    else if (guestfs_rm (im->g, file) == -1)
      image_path_error (im, path, "cannot remove it", err);
    else if (guestfs_sync (im->g) == -1)
      image_path_error (im, path, "sync failed", err);
    else
      r = 0;
  }
  free (dir);
  free (file);
  return r == -1 ? -1 : 0;
}
