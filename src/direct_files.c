/* netvsc-patch: the direct backend's calls for other files of the
 * Windows volume (--defer): read, create or replace, remove, with
 * case-insensitive paths and inherited security descriptors. */

#include "direct-internal.h"

/* --- other files of the volume (--defer) ------------------------------
 *
 * read_file, write_file and remove_file work on any file of the Windows
 * volume, named by an absolute '/'-separated path matched one component
 * at a time, case-insensitively (the exact spelling preferred), as
 * lookup() does for the hive.
 *
 * An existing file is replaced by the swap above: its data changes by
 * one MFT record write (new runs, a new resident value, or a resident
 * value turned into runs), with no directory change at all.  Not by a
 * temporary file renamed over it: libntfs-3g has no rename, and with
 * ntfs_link and ntfs_delete the old name would have to go before the
 * new one can take its place, so a crash in between would leave no file
 * at all.
 *
 * A new file has to appear in its directory, and ntfs_create makes the
 * name and an empty file at once.  So it is created under a temporary
 * name beside the final one, written, flushed and read back; only then
 * is the final name linked to it (ntfs_link) and flushed, and the
 * temporary name deleted (ntfs_delete).  The final name therefore never
 * names anything but the complete new content: before the link a reader
 * finds no file (the old state), after it the new one.  A crash can
 * leave the temporary name (empty, partial or complete, with or without
 * the final name as a second link to it): the next write of that path
 * deletes it first.  Missing directories are created the same way,
 * one at a time, each flushed before anything goes into it.  Each step
 * ends with commit(): everything so far is in the image before the next
 * step starts.
 *
 * What this cannot make crash-proof is libntfs-3g's own ordering inside
 * one ntfs_create, ntfs_link or ntfs_delete (see "the swap": the
 * directory index and the inode's record are written separately, and a
 * new MFT record or a full index root may need more).  A kill inside
 * one of those may leave the directory needing chkdsk, never a final
 * name with partial content.  The files --defer writes are small and
 * their directories hold a handful of entries, so the index stays in
 * the directory's own record; only creating \Windows\System32\GroupPolicy
 * itself changes a large directory.
 *
 * New files and directories get the security descriptor Windows would
 * give them, inherited from their directory (ntfs_inherited_id: the
 * inheritable ACEs, owner and group of the parent), not ntfs-3g's default
 * of full control for Everyone, which for a startup script run as SYSTEM
 * would let any user of the guest run code as SYSTEM.  Only where
 * nothing can be inherited (an NTFS 1.x volume) is ntfs-3g's default
 * used. */

/* Suffix of the temporary name a new file is written under, the same
 * as the appliance backend's. */
#define TMP_SUFFIX ".netvsc-patch.tmp"

/* The security id a new file or directory in DIR_NI gets: inherited
 * from DIR_NI as Windows does, or 0 (libntfs-3g's default) if nothing
 * can be. */
static le32
inherited_securid (struct direct *d, ntfs_inode *dir_ni, int fordir)
{
  struct PERMISSIONS_CACHE *cache = NULL;
  struct SECURITY_CONTEXT scx;
  le32 id;

  memset (&scx, 0, sizeof scx);
  scx.vol = d->vol;
  scx.pseccache = &cache;              /* no user mapping: owner and group */
  id = ntfs_inherited_id (&scx, dir_ni, fordir);    /* are the parent's */
  ntfs_destroy_security_context (&scx);
  return id;
}

/* Create NAME (a directory if DIR, else an empty file) in directory
 * PARENT, and flush.  *MREF is the new inode. */
static int
create_in (struct direct *d, MFT_REF parent, const char *name, int dir, MFT_REF *mref,
           const char *shown, struct np_error *err)
{
  ntfschar *uname = NULL;
  int ulen = ntfs_mbstoucs (name, &uname), e = 0;
  ntfs_inode *dir_ni = NULL, *ni = NULL;
  le32 securid;

  if (ulen <= 0 || ulen > 255) {
    e = ulen <= 0 ? errno : ENAMETOOLONG;
    goto out;
  }
  dir_ni = ntfs_inode_open (d->vol, parent);
  if (dir_ni == NULL) {
    e = errno;
    goto out;
  }
  securid = inherited_securid (d, dir_ni, dir);
  ni = ntfs_create (dir_ni, securid, uname, (u8) ulen, dir ? S_IFDIR : S_IFREG);
  if (ni == NULL) {
    e = errno ? errno : EIO;
    goto out;
  }
  *mref = MK_MREF (ni->mft_no, le16_to_cpu (ni->mrec->sequence_number));
  direct_trace (d, "direct: created %s%s (inode %llu, %s security descriptor)", shown,
         dir ? "/" : "", (unsigned long long) ni->mft_no, securid ? "inherited" : "default");
  if (!securid)
    direct_warn (d, "%s: nothing to inherit from its directory: it has ntfs-3g's default security "
          "descriptor (full control for Everyone)", shown);
 out:
  /* The new inode's record first, then the directory that names it. */
  if (ni && ntfs_inode_close (ni) != 0 && !e)
    e = errno;
  if (dir_ni && ntfs_inode_close (dir_ni) != 0 && !e)
    e = errno;
  free (uname);
  if (e)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot create %s: %s", d->path, shown,
                         strerror (e));
  return direct_commit (d, dir ? "directory created" : "file created", err);
}

/* Delete the name NAME (spelt as on disk) of inode MREF from directory
 * DIR, and flush. */
static int
delete_name (struct direct *d, MFT_REF dir, MFT_REF mref, const char *name, const char *shown,
             struct np_error *err)
{
  ntfschar *uname = NULL;
  int ulen = ntfs_mbstoucs (name, &uname), e = 0;
  ntfs_inode *ni = NULL, *dir_ni = NULL;

  if (ulen <= 0 || ulen > 255) {
    e = ulen <= 0 ? errno : ENAMETOOLONG;
    goto out;
  }
  ni = ntfs_inode_open (d->vol, mref);
  dir_ni = ni ? ntfs_inode_open (d->vol, dir) : NULL;
  if (dir_ni == NULL) {
    e = errno;
    if (ni)
      ntfs_inode_close (ni);
    goto out;
  }
  direct_trace (d, "direct: delete %s", shown);
  /* It closes both inodes, whatever happens. */
  if (ntfs_delete (d->vol, NULL, ni, dir_ni, uname, (u8) ulen) != 0)
    e = errno ? errno : EIO;
 out:
  free (uname);
  if (e)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot delete %s: %s", d->path, shown,
                         strerror (e));
  return direct_commit (d, "name deleted", err);
}

/* Walk PATH's directories (COMPS[0..N-2]) from the root.  Returns 1 and
 * *DIR, 0 if one is missing and !CREATE, -1 with *err.  With CREATE the
 * missing ones are made, in the case PATH spells them. */
static int
walk_dirs (struct direct *d, const char *path, char **comps, size_t n, int create,
           MFT_REF *dir, struct np_error *err)
{
  MFT_REF cur = FILE_root, next;
  char shown[PATH_MAX] = "";

  for (size_t i = 0; i + 1 < n; i++) {
    unsigned dt;
    char *spelt = NULL;
    int l = direct_lookup (d->vol, cur, comps[i], &next, &dt, &spelt);

    snprintf (shown + strlen (shown), sizeof shown - strlen (shown), "/%s",
              spelt ? spelt : comps[i]);
    free (spelt);
    if (l < 0)
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: cannot read the directory %s: %s",
                           d->path, path, i ? shown : "/", strerror (errno));
    if (l == 1 && dt != NTFS_DT_DIR)
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: %s is not a directory", d->path,
                           path, shown);
    if (l == 0) {
      if (!create)
        return 0;
      if (create_in (d, cur, comps[i], 1, &next, shown, err) == -1) {
        np_error_context (err, d->path, path);
        return -1;
      }
    }
    cur = next;
  }
  *dir = cur;
  return 1;
}

/* The regular file PATH: 1 and *MREF, *SPELT (its name as on disk,
 * malloc'd) and *DIR, 0 if absent, -1 with *err. */
static int
find_file (struct direct *d, const char *path, MFT_REF *dir, MFT_REF *mref, char **spelt,
           struct np_error *err)
{
  char *buf, **comps;
  size_t n;
  unsigned dt;
  int r;

  *spelt = NULL;
  if (disk_path_split (d->path, path, &buf, &comps, &n, err) == -1)
    return -1;
  r = walk_dirs (d, path, comps, n, 0, dir, err);
  if (r == 1) {
    r = direct_lookup (d->vol, *dir, comps[n - 1], mref, &dt, spelt);
    if (r < 0)
      r = np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: cannot read its directory: %s",
                        d->path, path, strerror (errno));
    else if (r == 1 && dt != NTFS_DT_REG) {
      free (*spelt);
      *spelt = NULL;
      r = np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: not a regular file%s", d->path, path,
                        dt == NTFS_DT_DIR ? " (a directory)" : "");
    }
  }
  free (comps);
  free (buf);
  return r;
}

int
direct_read_file (struct disk *dk, const char *path, char **buf, size_t *len,
                  struct np_error *err)
{
  struct direct *d = (struct direct *) dk;
  MFT_REF dir, mref;
  char *spelt = NULL, *data = NULL;
  size_t n = 0;
  int r;

  *buf = NULL;
  *len = 0;
  if (direct_mount_ro (d, err) == -1) {
    np_error_context (err, d->path, path);
    return -1;
  }
  r = find_file (d, path, &dir, &mref, &spelt, err);
  free (spelt);
  if (r != 1)
    return r == 0 ? 1 : -1;
  if (direct_read_data (d->vol, mref, DISK_READ_MAX, &data, &n) == -1)
    return errno == EFBIG
      ? np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: larger than %u MB: not read", d->path,
                      path, DISK_READ_MAX >> 20)
      : np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: cannot read it: %s", d->path, path,
                      strerror (errno));
  /* one more byte for the NUL the contract promises */
  *buf = realloc (data, n + 1);
  if (*buf == NULL) {
    free (data);
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  }
  (*buf)[n] = '\0';
  *len = n;
  direct_trace (d, "direct: read %s (%zu bytes)", path, n);
  return 0;
}

/* Bytes a $FILE_NAME attribute of a ULEN-character name takes in an
 * MFT record: resident header, the fixed part, the name, 8-aligned. */
static uint32_t
filename_attr_size (int ulen)
{
  return (uint32_t) ((0x18 + 0x42 + 2 * ulen + 7) & ~7);
}

/* A new file NAME in directory DIR holding BUF, the way described above. */
static int
create_file (struct direct *d, MFT_REF dir, const char *name, const char *path,
             const char *buf, size_t len, struct np_error *err)
{
  char *tmpname = NULL, *shown = NULL, *spelt = NULL;
  ntfschar *uname = NULL;
  ntfs_inode *ni = NULL, *dir_ni = NULL;
  ntfs_attr *na = NULL;
  MFT_REF tmp, got;
  unsigned dt;
  int ulen, e = 0, r = -1;

  if (asprintf (&tmpname, "%s%s", name, TMP_SUFFIX) == -1 ||
      asprintf (&shown, "%s%s", path, TMP_SUFFIX) == -1) {
    tmpname = shown = NULL;
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    goto out;
  }
  ulen = ntfs_mbstoucs (name, &uname);
  if (ulen <= 0 || ulen > 255) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: %s", d->path, path,
                  strerror (ulen <= 0 ? errno : ENAMETOOLONG));
    goto out;
  }

  /* 1: the content under the temporary name, flushed, read back. */
  if (create_in (d, dir, tmpname, 0, &tmp, shown, err) == -1)
    goto out;
  direct_trace (d, "direct: write %zu bytes to %s", len, shown);
  ni = ntfs_inode_open (d->vol, tmp);
  na = ni ? ntfs_attr_open (ni, AT_DATA, AT_UNNAMED, 0) : NULL;
  if (na == NULL || (len && ntfs_attr_pwrite (na, 0, (s64) len, buf) != (s64) len))
    e = errno ? errno : EIO;
  /* The link of step 2 adds a second $FILE_NAME to this record; with
   * resident data (a few hundred bytes) it may not fit, and ntfs_link
   * then fails with EIO.  Move the data to clusters first. */
  if (!e && na && !NAttrNonResident (na) &&
      le32_to_cpu (ni->mrec->bytes_in_use) + filename_attr_size (ulen) >
      d->vol->mft_record_size) {
    direct_trace (d, "direct: %s: data made non-resident, for the second name", shown);
    if (ntfs_attr_force_non_resident (na) != 0)
      e = errno ? errno : EIO;
  }
  if (na)
    ntfs_attr_close (na);
  if (ni && ntfs_inode_close (ni) != 0 && !e)
    e = errno;
  ni = NULL;
  if (e) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot write %s: %s", d->path, shown,
                  strerror (e));
    goto drop;
  }
  if (direct_commit (d, "temporary file written", err) == -1)
    goto drop;
  if (!direct_data_equals (d, tmp, buf, len)) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s does not read back identically; nothing "
                  "written under the final name", d->path, shown);
    goto drop;
  }

  /* 2: the commit point: the final name links to the complete file. */
  direct_trace (d, "direct: link %s to it", path);
  ni = ntfs_inode_open (d->vol, tmp);
  dir_ni = ni ? ntfs_inode_open (d->vol, dir) : NULL;
  if (dir_ni == NULL || ntfs_link (ni, dir_ni, uname, (u8) ulen) != 0)
    e = errno ? errno : EIO;
  /* The file's record (its new name) first, then the directory's. */
  if (ni && ntfs_inode_close (ni) != 0 && !e)
    e = errno;
  if (dir_ni && ntfs_inode_close (dir_ni) != 0 && !e)
    e = errno;
  ni = dir_ni = NULL;
  if (e) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot link %s to the new file: %s", d->path,
                  path, strerror (e));
    goto drop;
  }
  if (direct_commit (d, "final name linked", err) == -1)
    goto out;
  if (direct_lookup (d->vol, dir, name, &got, &dt, NULL) != 1 || MREF (got) != MREF (tmp) ||
      !direct_data_equals (d, got, buf, len)) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s does not read back identically after the "
                  "link", d->path, path);
    goto out;
  }

  /* 3: the temporary name goes.  The file is in place whatever happens
   * here: a failure only leaves the temporary name behind. */
  if (direct_lookup (d->vol, dir, tmpname, &got, &dt, &spelt) == 1 && MREF (got) == MREF (tmp) &&
      delete_name (d, dir, tmp, spelt ? spelt : tmpname, shown, err) == -1) {
    direct_warn (d, "%s (left behind; the next write of %s removes it)", err->msg, path);
    np_error_clear (err);
  }
  r = 0;
  goto out;

 drop:
  /* Nothing names the new file but the temporary name: delete it. */
  if (d->vol && d->rw) {
    struct np_error ignored;
    np_error_clear (&ignored);
    if (direct_lookup (d->vol, dir, tmpname, &got, &dt, &spelt) == 1 && MREF (got) == MREF (tmp))
      delete_name (d, dir, tmp, spelt ? spelt : tmpname, shown, &ignored);
  }
 out:
  free (spelt);
  free (uname);
  free (shown);
  free (tmpname);
  return r;
}

int
direct_write_file (struct disk *dk, const char *path, const char *buf, size_t len,
                   struct np_error *err)
{
  struct direct *d = (struct direct *) dk;
  char *pbuf = NULL, **comps = NULL, *spelt = NULL, *tmpname = NULL, *shown = NULL;
  size_t n;
  MFT_REF dir, mref, stale;
  unsigned dt;
  int l, r = -1;

  if (disk_path_split (d->path, path, &pbuf, &comps, &n, err) == -1)
    return -1;
  /* Refuses a hibernated volume before anything is written. */
  if (direct_mount_rw (d, err) == -1)
    goto out;
  if (walk_dirs (d, path, comps, n, 1, &dir, err) == -1)
    goto out;

  /* A temporary name left by a crash: it only ever names our own
   * temporary file (possibly also linked under the final name). */
  if (asprintf (&tmpname, "%s%s", comps[n - 1], TMP_SUFFIX) == -1 ||
      asprintf (&shown, "%s%s", path, TMP_SUFFIX) == -1) {
    tmpname = shown = NULL;
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    goto out;
  }
  l = direct_lookup (d->vol, dir, tmpname, &stale, &dt, &spelt);
  if (l == 1 && dt != NTFS_DT_REG) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: %s is in the way (not a regular file)",
                  d->path, path, shown);
    goto out;
  }
  if (l == 1 && delete_name (d, dir, stale, spelt ? spelt : tmpname, shown, err) == -1)
    goto out;
  free (spelt);
  spelt = NULL;

  l = direct_lookup (d->vol, dir, comps[n - 1], &mref, &dt, &spelt);
  if (l < 0) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: cannot read its directory: %s", d->path,
                  path, strerror (errno));
    goto out;
  }
  if (l == 1 && dt != NTFS_DT_REG) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: not a regular file%s", d->path, path,
                  dt == NTFS_DT_DIR ? " (a directory)" : "");
    goto out;
  }
  if (l == 1) {
    direct_trace (d, "direct: replace the data of %s (%zu bytes)", path, len);
    r = direct_swap_data (d, mref, path, spelt ? spelt : comps[n - 1], buf, len, err);
  }
  else {
    direct_trace (d, "direct: new file %s (%zu bytes)", path, len);
    r = create_file (d, dir, comps[n - 1], path, buf, len, err);
  }
 out:
  if (r == -1)
    np_error_context (err, d->path, path);
  free (shown);
  free (tmpname);
  free (spelt);
  free (comps);
  free (pbuf);
  return r;
}

int
direct_remove_file (struct disk *dk, const char *path, struct np_error *err)
{
  struct direct *d = (struct direct *) dk;
  MFT_REF dir, mref;
  char *spelt = NULL;
  int r;

  /* Absent is success, and needs no write (nor a writable volume). */
  if (direct_mount_ro (d, err) == -1) {
    np_error_context (err, d->path, path);
    return -1;
  }
  r = find_file (d, path, &dir, &mref, &spelt, err);
  /* (ntfs_delete also matches a name ignoring case: PATH's spelling
   * would do if the on-disk one could not be converted) */
  if (r == 1 && direct_mount_rw (d, err) == 0)
    r = delete_name (d, dir, mref, spelt ? spelt : strrchr (path, '/') + 1, path, err) == 0
      ? 0 : -1;
  else if (r == 1)
    r = -1;
  free (spelt);
  if (r == -1)
    np_error_context (err, d->path, path);
  return r == -1 ? -1 : 0;
}
