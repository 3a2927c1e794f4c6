/* netvsc-patch: the direct backend's replacement of the hive: new data
 * in free clusters, flushed and read back, then one MFT record write
 * switches SYSTEM's $DATA to them (see "the swap" below). */

#include "direct-internal.h"
#include "hostfile.h"

#include <sys/mman.h>

/* --- the swap --------------------------------------------------------
 *
 * Why not a temporary file renamed over SYSTEM, as the appliance does:
 * libntfs-3g has no rename, only ntfs_link and ntfs_delete, and it does
 * not order its writes for crashes.  A first version of this backend
 * swapped names in \Windows\System32\config (a case variant of SYSTEM
 * kept the hive reachable at every step).  Killing it at random moments
 * (tests/t-direct.sh) showed that ntfs_link and ntfs_delete write the
 * directory entry and the inode's list of names separately, which then
 * needs repairing, and, worse, that adding a name can make libntfs-3g
 * move the directory's index out of its MFT record into a new index
 * block, writing the record that points at the block before the block
 * itself: killed in between, the whole directory is unreadable.  Any
 * change to the directory's index can do that.
 *
 * So no directory is changed, and no inode is created either: even one
 * new MFT record can make libntfs-3g extend $MFT itself (its own record,
 * $MFTMirr, the MFT bitmap: the same killed-in-between hazard, for the
 * whole volume).  The one write that is atomic for us is a single MFT
 * record: qemu-nbd carries out a request it has received whatever
 * happens to this process, and a record torn by a power cut is caught by
 * its update sequence array.  SYSTEM's data runs live in its MFT record:
 *
 *   1. clusters are allocated for the new hive (bits set in $Bitmap:
 *      nothing refers to them yet), the hive is written into them; then
 *      unmounted (flushed), mounted again, read back and compared with
 *      LOCAL byte for byte;
 *   2. COMMIT: SYSTEM's $DATA attribute is rewritten to describe those
 *      clusters and the new size: one MFT record write;
 *   3. flushed, mounted again, SYSTEM read back through the filesystem
 *      and compared with LOCAL; a mismatch puts the old runs back (again
 *      one record write);
 *   4. the old clusters are freed.
 *
 * Before 2 SYSTEM holds the old hive, from 2 on the new one, at every
 * instant, under the same name and inode: its security descriptor,
 * attributes, DOS name and creation time cannot change, so there is
 * nothing to copy; no temporary name ever appears in the guest, and
 * nothing needs repairing after a crash.  A crash costs at most leaked
 * clusters (the new ones before 2, the old ones after), which chkdsk
 * reclaims.  At 2 libntfs-3g first refreshes the sizes duplicated in
 * SYSTEM's directory entry (an in-place change of that one entry: the
 * index is not restructured), then writes the record; killed between
 * the two, the entry shows the new size for the old data, which is
 * harmless (Windows and chkdsk treat those sizes as a cache).
 *
 * The switch needs SYSTEM's $DATA to be a plain (not compressed, sparse
 * or encrypted) non-resident attribute held whole in its base MFT
 * record, with room there for the new runs (a fresh allocation is one
 * or a few runs).  Otherwise the write is refused before anything is
 * written.  A file whose data is resident in its MFT record (an empty
 * transaction log, which job.c replaces after a replay, or the small
 * files of --defer) is replaced by rewriting that value: the same
 * single-record commit.  If the new content does not fit there, steps 1
 * to 3 run as above and step 2 rewrites the resident attribute as a
 * non-resident one describing the new clusters (set_form): still one
 * record write, and its undo puts the old value back.
 */

/* Where an inode's unnamed $DATA is described. */
struct data_rec {
  ntfs_attr_search_ctx *ctx;
  ATTR_RECORD *a;
};

/* Find NI's unnamed $DATA record and check it can be switched (or, if
 * resident, rewritten in place); *WHY says why not. */
static int
data_record (ntfs_inode *ni, struct data_rec *r, const char **why)
{
  const ntfs_volume *vol = ni->vol;
  s64 alloc;

  *why = NULL;
  r->a = NULL;
  r->ctx = ntfs_attr_get_search_ctx (ni, NULL);
  if (r->ctx == NULL)
    return -1;
  if (ntfs_attr_lookup (AT_DATA, AT_UNNAMED, 0, CASE_SENSITIVE, 0, NULL, 0, r->ctx) != 0) {
    *why = "it has no data stream";
    return -1;
  }
  r->a = r->ctx->attr;
  if (r->a->flags & (ATTR_COMPRESSION_MASK | ATTR_IS_SPARSE | ATTR_IS_ENCRYPTED))
    *why = "it is compressed, sparse or encrypted";
  else if (r->ctx->mrec != ni->mrec)
    *why = "its data is described in another MFT record";
  else if (r->a->non_resident) {       /* else the data is in the record itself */
    alloc = sle64_to_cpu (r->a->allocated_size);
    if (sle64_to_cpu (r->a->lowest_vcn) != 0 ||
        sle64_to_cpu (r->a->highest_vcn) + 1 != alloc >> vol->cluster_size_bits)
      *why = "its data runs do not fit in its own MFT record";
  }
  return *why ? -1 : 0;
}

/* DR's search context put back, NI closed (either may be absent); closing
 * writes a dirty record, so its result is the commit's. */
static int
data_record_release (ntfs_inode *ni, struct data_rec *dr)
{
  if (dr->ctx)
    ntfs_attr_put_search_ctx (dr->ctx);
  return ni ? ntfs_inode_close (ni) : 0;
}

/* NI's $DATA record rewritten in memory: the sizes its directory entry
 * duplicates, the times of a write, dirty so that closing writes it. */
static void
mark_rewritten (ntfs_inode *ni, s64 size, s64 alloc)
{
  ni->data_size = size;
  ni->allocated_size = alloc;
  ntfs_inode_update_times (ni, NTFS_UPDATE_MCTIME);
  NInoFileNameSetDirty (ni);
  ntfs_inode_mark_dirty (ni);
}

/* A copy of the runs of NI's unnamed $DATA (terminated as libntfs-3g
 * terminates them), its size and allocated size. */
struct runs {
  runlist_element *rl;
  s64 size, alloc;
};

static int
get_runs (ntfs_inode *ni, struct runs *r)
{
  ntfs_attr *na = ntfs_attr_open (ni, AT_DATA, AT_UNNAMED, 0);
  size_t n = 0;
  int e = 0;

  r->rl = NULL;
  if (na == NULL)
    return -1;
  if (!NAttrNonResident (na) || ntfs_attr_map_whole_runlist (na) != 0)
    e = errno ? errno : EINVAL;
  else {
    while (na->rl[n].length)
      if (na->rl[n++].lcn < 0)
        e = EINVAL;                    /* a hole: not a plain file */
    r->rl = malloc ((n + 1) * sizeof *r->rl);
    if (r->rl == NULL)
      e = ENOMEM;
    else
      memcpy (r->rl, na->rl, (n + 1) * sizeof *r->rl);
    r->size = na->data_size;
    r->alloc = na->allocated_size;
  }
  ntfs_attr_close (na);
  if (e) {
    free (r->rl);
    r->rl = NULL;
    errno = e;
    return -1;
  }
  return 0;
}

/* The size SYSTEM's $DATA record takes with RL as its runs, and whether
 * that fits in its MFT record. */
static int
runs_fit (ntfs_volume *vol, const struct data_rec *dr, const runlist_element *rl, u32 *len)
{
  const MFT_RECORD *m = dr->ctx->mrec;
  int mp = ntfs_get_size_for_mapping_pairs (vol, rl, 0, INT_MAX);
  u32 off = le16_to_cpu (dr->a->mapping_pairs_offset);

  if (mp < 0)
    return 0;
  *len = (off + (u32) mp + 7) & ~7u;
  return *len <= le32_to_cpu (dr->a->length) + le32_to_cpu (m->bytes_allocated) -
    le32_to_cpu (m->bytes_in_use);
}

/* The sizes of non-resident record A that must agree with its runs R. */
static void
runs_sizes (const ntfs_volume *vol, ATTR_RECORD *a, const struct runs *r)
{
  a->highest_vcn = cpu_to_sle64 ((r->alloc >> vol->cluster_size_bits) - 1);
  a->allocated_size = cpu_to_sle64 (r->alloc);
  a->data_size = cpu_to_sle64 (r->size);
  a->initialized_size = cpu_to_sle64 (r->size);
}

/* set_runs' and set_form's end: NI closed (the record write), the first
 * error (E, else the close's) told as the switch's. */
static int
switch_end (struct direct *d, const char *path, ntfs_inode *ni, struct data_rec *dr, int e,
            struct np_error *err)
{
  if (data_record_release (ni, dr) != 0 && !e)
    e = errno;
  if (e)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot switch %s to its new data: %s",
                         d->path, path, strerror (e));
  return 0;
}

/* Step 2, the commit point (and its undo): make inode MREF's unnamed $DATA describe runs
 * R.  Only its base MFT record changes, written by ntfs_inode_close. */
static int
set_runs (struct direct *d, MFT_REF mref, const char *path, const struct runs *r,
          struct np_error *err)
{
  ntfs_inode *ni = ntfs_inode_open (d->vol, mref);
  struct data_rec dr;
  const char *why;
  u32 len, off;
  int e = 0;

  if (ni == NULL)
    return direct_ntfs_failed (d, err, "cannot open SYSTEM", errno);
  if (data_record (ni, &dr, &why) == -1 || !dr.a->non_resident ||
      !runs_fit (d->vol, &dr, r->rl, &len)) {
    e = why || (dr.a && !dr.a->non_resident) ? EINVAL : errno ? errno : ENOSPC;
    goto out;
  }
  off = le16_to_cpu (dr.a->mapping_pairs_offset);
  if (ntfs_attr_record_resize (dr.ctx->mrec, dr.a, len) != 0 ||
      ntfs_mapping_pairs_build (d->vol, (u8 *) dr.a + off, (int) (len - off), r->rl, 0,
                                NULL) != 0) {
    e = errno ? errno : EIO;
    goto out;
  }
  runs_sizes (d->vol, dr.a, r);
  mark_rewritten (ni, r->size, r->alloc);
 out:
  return switch_end (d, path, ni, &dr, e, err);
}

/* A file whose data is resident (held in its MFT record: small files,
 * such as empty transaction logs) is replaced by rewriting that value:
 * one MFT record write again.  Only if the new content fits there. */
static int
set_resident (struct direct *d, MFT_REF mref, const char *path, const char *buf, size_t len,
              struct np_error *err)
{
  ntfs_inode *ni = ntfs_inode_open (d->vol, mref);
  struct data_rec dr = { NULL, NULL };
  const char *why;
  int e = 0;

  if (ni == NULL)
    return direct_ntfs_failed (d, err, "cannot open the file to replace", errno);
  if (data_record (ni, &dr, &why) == -1 || dr.a->non_resident) {
    e = EINVAL;
    goto out;
  }
  if (ntfs_resident_attr_value_resize (dr.ctx->mrec, dr.a, (u32) len) != 0) {
    e = errno ? errno : ENOSPC;
    goto out;
  }
  memcpy ((u8 *) dr.a + le16_to_cpu (dr.a->value_offset), buf, len);
  mark_rewritten (ni, (s64) len, ((s64) len + 7) & ~7);
 out:
  if (data_record_release (ni, &dr) != 0 && !e)
    e = errno;
  if (e)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot rewrite %s in its MFT record: %s%s",
                         d->path, path, strerror (e),
                         e == ENOSPC ? " (the new content does not fit there)" : "");
  return 0;
}

/* Step 1: clusters for BUF, allocated (only $Bitmap changes) and
 * written; R describes them.  The last cluster's tail is zeros. */
static int
write_clusters (struct direct *d, const char *path, const char *buf, size_t len,
                struct runs *r, struct np_error *err)
{
  ntfs_volume *vol = d->vol;
  s64 clusters = ((s64) len + vol->cluster_size - 1) >> vol->cluster_size_bits;
  s64 alloc = clusters << vol->cluster_size_bits, tail = alloc - (s64) len;
  char *zeros;
  s64 w;
  int e;

  r->rl = NULL;
  r->size = (s64) len;
  r->alloc = alloc;
  if (clusters == 0) {                 /* an empty file: no runs at all */
    r->rl = calloc (1, sizeof *r->rl);
    if (r->rl == NULL)
      return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    r->rl[0].lcn = LCN_ENOENT;
    return 0;
  }
  /* less than a cluster: BUF itself is written, not a padded copy */
  zeros = calloc (1, tail ? (size_t) tail : 1);
  if (zeros == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  /* One request for all of it: as contiguous as the free space allows. */
  r->rl = ntfs_cluster_alloc (vol, 0, clusters, -1, DATA_ZONE);
  if (r->rl == NULL) {
    e = errno;
    free (zeros);
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot allocate space for the new %s: %s",
                         d->path, path, strerror (e));
  }
  w = ntfs_rl_pwrite (vol, r->rl, 0, 0, (s64) len, (void *) buf);
  if (w == (s64) len && tail)
    w += ntfs_rl_pwrite (vol, r->rl, 0, (s64) len, tail, zeros);
  e = errno;
  free (zeros);
  if (w != alloc)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot write the new %s: %s",
                         d->path, path, strerror (w < 0 ? e : EIO));
  return 0;
}

/* Read-backs compare a chunk at a time: the same bytes compared, without
 * a second copy of a 12 MB hive in memory. */
#define COMPARE_CHUNK (1 << 20)

/* The clusters of R hold BUF? */
static int
clusters_equal (struct direct *d, const struct runs *r, const char *buf, size_t len)
{
  char *back = malloc (COMPARE_CHUNK);
  int same = back != NULL;

  for (size_t pos = 0; same && pos < len; pos += COMPARE_CHUNK) {
    s64 n = len - pos < COMPARE_CHUNK ? (s64) (len - pos) : COMPARE_CHUNK;
    same = ntfs_rl_pread (d->vol, r->rl, (s64) pos, n, back) == n &&
      memcmp (back, buf + pos, (size_t) n) == 0;
  }
  free (back);
  return same;
}

/* The unnamed $DATA of inode MREF equals BUF? */
int
direct_data_equals (struct direct *d, MFT_REF mref, const char *buf, size_t len)
{
  ntfs_inode *ni = ntfs_inode_open (d->vol, mref);
  ntfs_attr *na = ni ? ntfs_attr_open (ni, AT_DATA, AT_UNNAMED, 0) : NULL;
  char *back = malloc (COMPARE_CHUNK);
  int same = na != NULL && back != NULL && na->data_size == (s64) len;

  for (size_t pos = 0; same && pos < len; pos += COMPARE_CHUNK) {
    s64 n = len - pos < COMPARE_CHUNK ? (s64) (len - pos) : COMPARE_CHUNK, got = 0;
    while (got < n) {                  /* ntfs_attr_pread may return less */
      s64 k = ntfs_attr_pread (na, (s64) pos + got, n - got, back + got);
      if (k <= 0)
        break;
      got += k;
    }
    same = got == n && memcmp (back, buf + pos, (size_t) n) == 0;
  }
  free (back);
  if (na)
    ntfs_attr_close (na);
  if (ni)
    ntfs_inode_close (ni);
  return same;
}

/* The whole replacement for a file whose data is resident: the new
 * value is written in its MFT record (one record write), read back, and
 * the old value put back if it does not read back. */
static int
replace_resident (struct direct *d, MFT_REF mref, const char *path, const char *buf, size_t len,
                  struct np_error *err)
{
  char *oldbuf = NULL;
  size_t oldlen = 0;
  struct np_error ignored;
  int r = -1;

  if (direct_read_data (d->vol, mref, SIZE_MAX, &oldbuf, &oldlen) == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot read %s: %s", d->path, path,
                         strerror (errno));
  direct_trace (d, "direct: rewrite %s in its MFT record", path);
  if (set_resident (d, mref, path, buf, len, err) == -1 ||
      direct_commit (d, "resident data rewritten", err) == -1)
    goto out;
  if (!direct_data_equals (d, mref, buf, len)) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s does not read back identically; ", d->path, path);
    np_error_clear (&ignored);
    if (set_resident (d, mref, path, oldbuf, oldlen, &ignored) == 0 &&
        direct_commit (d, "undo: old value back", &ignored) == 0)
      np_error_append (err, "original put back");
    else
      np_error_append (err, "putting the original back failed too");
    goto out;
  }
  r = 0;
 out:
  free (oldbuf);
  return r;
}

/* The most bytes DR's attribute record can take in its MFT record. */
static u64
record_room (const struct data_rec *dr)
{
  const MFT_RECORD *m = dr->ctx->mrec;

  return (u64) le32_to_cpu (dr->a->length) + le32_to_cpu (m->bytes_allocated) -
    le32_to_cpu (m->bytes_in_use);
}

/* Headers of an unnamed $DATA attribute record, resident and
 * non-resident (uncompressed): the value or the mapping pairs follow. */
#define RES_HEADER 0x18
#define NONRES_HEADER 0x40

/* Would a resident value of LEN bytes fit in place of DR's (resident)
 * record? */
static int
resident_fits (const struct data_rec *dr, size_t len)
{
  return (((u64) le16_to_cpu (dr->a->value_offset) + len + 7) & ~(u64) 7) <= record_room (dr);
}

/* The size of a non-resident record with runs RL, and whether it fits
 * in place of DR's (resident) one. */
static int
nonresident_fits (ntfs_volume *vol, const struct data_rec *dr, const runlist_element *rl,
                  u32 *len)
{
  int mp = ntfs_get_size_for_mapping_pairs (vol, rl, 0, INT_MAX);

  if (mp < 0)
    return 0;
  *len = (NONRES_HEADER + (u32) mp + 7) & ~7u;
  return *len <= record_room (dr);
}

/* The commit point (and its undo) when the form of the data changes: the
 * unnamed $DATA record of inode MREF is rewritten as a non-resident one
 * describing runs R, or (R NULL) as a resident one holding BUF.  Only
 * its base MFT record changes, written by ntfs_inode_close: one record
 * write, as in set_runs. */
static int
set_form (struct direct *d, MFT_REF mref, const char *path, const struct runs *r,
          const char *buf, size_t len, struct np_error *err)
{
  ntfs_inode *ni = ntfs_inode_open (d->vol, mref);
  struct data_rec dr = { NULL, NULL };
  const char *why;
  u32 newlen;
  le16 instance;
  ATTR_FLAGS flags;
  int e = 0;

  if (ni == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot open %s: %s", d->path, path,
                         strerror (errno));
  if (data_record (ni, &dr, &why) == -1) {
    e = EINVAL;
    goto out;
  }
  if (r) {
    if (!nonresident_fits (d->vol, &dr, r->rl, &newlen)) {
      e = ENOSPC;
      goto out;
    }
  }
  else {
    newlen = (RES_HEADER + (u32) len + 7) & ~7u;
    if (newlen > record_room (&dr)) {
      e = ENOSPC;
      goto out;
    }
  }
  instance = dr.a->instance;
  flags = dr.a->flags;
  if (ntfs_attr_record_resize (dr.ctx->mrec, dr.a, newlen) != 0) {
    e = errno ? errno : ENOSPC;
    goto out;
  }
  /* A fresh header: type and length stay, the rest is rebuilt. */
  memset ((u8 *) dr.a + 8, 0, newlen - 8);
  dr.a->instance = instance;
  dr.a->flags = flags;
  if (r) {
    dr.a->non_resident = 1;
    dr.a->name_offset = const_cpu_to_le16 (NONRES_HEADER);
    dr.a->lowest_vcn = const_cpu_to_sle64 (0);
    dr.a->mapping_pairs_offset = const_cpu_to_le16 (NONRES_HEADER);
    runs_sizes (d->vol, dr.a, r);
    if (ntfs_mapping_pairs_build (d->vol, (u8 *) dr.a + NONRES_HEADER,
                                  (int) (newlen - NONRES_HEADER), r->rl, 0, NULL) != 0) {
      /* The record in memory is half rebuilt, but the inode is not
       * marked dirty: closing it writes nothing. */
      e = errno ? errno : EIO;
      goto out;
    }
    mark_rewritten (ni, r->size, r->alloc);
  }
  else {
    dr.a->non_resident = 0;
    dr.a->name_offset = const_cpu_to_le16 (RES_HEADER);
    dr.a->value_length = cpu_to_le32 ((u32) len);
    dr.a->value_offset = const_cpu_to_le16 (RES_HEADER);
    memcpy ((u8 *) dr.a + RES_HEADER, buf, len);
    mark_rewritten (ni, (s64) len, ((s64) len + 7) & ~7);
  }
 out:
  return switch_end (d, path, ni, &dr, e, err);
}

/* Replace the data of the existing regular file MREF (PATH in messages,
 * NAME in traces) with BUF: the swap described above.  Returns 0 or -1
 * with *err; on failure the file holds its old data. */
int
direct_swap_data (struct direct *d, MFT_REF sys, const char *path, const char *name,
           const char *buf, size_t len, struct np_error *err)
{
  struct runs old = { NULL, 0, 0 }, new = { NULL, 0, 0 };
  char *oldbuf = NULL;
  size_t oldlen = 0;
  const char *why = NULL;
  int r = -1, fits, resident, in_place = 0;
  struct np_error ignored;

  /* Can the file take new runs (or a new resident value) at all?
   * Refused before anything is written. */
  {
    ntfs_inode *ni = ntfs_inode_open (d->vol, sys);
    struct data_rec dr = { NULL, NULL };
    int ok = ni != NULL && data_record (ni, &dr, &why) == 0, e;

    resident = ok && !dr.a->non_resident;
    if (ok && !resident)
      ok = get_runs (ni, &old) == 0;
    if (ok && resident)
      in_place = resident_fits (&dr, len);
    e = errno;
    data_record_release (ni, &dr);
    if (!ok) {
      np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot replace %s in place: %s", d->path,
                    path, why ? why : strerror (e ? e : EIO));
      goto out;
    }
  }
  if (in_place) {
    r = replace_resident (d, sys, path, buf, len, err);
    goto out;
  }
  /* Resident data that the new content would outgrow: the record is
   * rewritten as a non-resident attribute at the commit point (the
   * undo needs the old value). */
  if (resident && direct_read_data (d->vol, sys, SIZE_MAX, &oldbuf, &oldlen) == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot read %s: %s", d->path, path,
                  strerror (errno));
    goto out;
  }

  /* 1: the new data in clusters nothing refers to yet; flushed, read
   * back from the image. */
  direct_trace (d, "direct: step 1: write the new %s to free clusters", name);
  if (write_clusters (d, path, buf, len, &new, err) == -1 ||
      direct_commit (d, "step 1: new data flushed", err) == -1)
    goto drop;
  if (!clusters_equal (d, &new, buf, len)) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: the new %s does not read back identically; "
                  "original left in place", d->path, name);
    goto drop;
  }
  {
    ntfs_inode *si = ntfs_inode_open (d->vol, sys);
    struct data_rec dr = { NULL, NULL };
    u32 need;
    fits = si && data_record (si, &dr, &why) == 0 &&
      (resident ? nonresident_fits (d->vol, &dr, new.rl, &need)
       : runs_fit (d->vol, &dr, new.rl, &need));
    data_record_release (si, &dr);
    if (!fits) {
      np_error_set (err, NP_EXIT_RUNTIME, "%s: the new data runs of %s do not fit in its MFT "
                    "record (free space too fragmented); original left in place", d->path, path);
      goto drop;
    }
  }

  /* 2: the commit point. */
  direct_trace (d, "direct: step 2: switch %s to the new clusters", path);
  if ((resident ? set_form (d, sys, path, &new, NULL, 0, err)
       : set_runs (d, sys, path, &new, err)) == -1) {
    /* libntfs-3g writes the record even when refreshing the directory
     * entry failed, so the switch may have happened: look.  If it did,
     * go on; if not (or if we cannot tell), the new clusters stay
     * allocated rather than be freed under a file that may use them:
     * a leak, which chkdsk reclaims. */
    np_error_clear (&ignored);
    if (direct_commit (d, "after a failed switch", &ignored) == 0 && direct_data_equals (d, sys, buf, len)) {
      direct_warn (d, "%s (the switch was written all the same)", err->msg);
      np_error_clear (err);
    }
    else
      goto out;
  }
  else if (direct_commit (d, "step 2: the file holds the new data", err) == -1)
    goto out;

  /* 3: read back what the file now is, through the filesystem. */
  if (!direct_data_equals (d, sys, buf, len)) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s does not read back identically; ", d->path, path);
    np_error_clear (&ignored);
    if ((resident ? set_form (d, sys, path, NULL, oldbuf, oldlen, &ignored)
         : set_runs (d, sys, path, &old, &ignored)) == 0 &&
        direct_commit (d, "undo: old data back", &ignored) == 0)
      np_error_append (err, "original put back");
    else
      np_error_append (err, "putting the original back failed too");
    goto out;
  }

  /* 4: the old clusters are free. */
  direct_trace (d, "direct: step 4: free the old data's clusters");
  if ((!resident && ntfs_cluster_free_from_rl (d->vol, old.rl) != 0) ||
      direct_commit (d, "step 4: done", err) == -1) {
    /* The file holds the new data; only the old clusters may be left allocated. */
    direct_warn (d, "the old clusters of %s could not be freed (chkdsk reclaims them)", path);
    np_error_clear (err);
  }
  r = 0;
  goto out;

 drop:
  /* The new clusters go back; the file was not touched. */
  if (new.rl && d->vol && d->rw) {
    np_error_clear (&ignored);
    ntfs_cluster_free_from_rl (d->vol, new.rl);
    direct_commit (d, "new clusters given back", &ignored);
  }
 out:
  free (old.rl);
  free (new.rl);
  free (oldbuf);
  return r;
}

/* LOCAL mapped read-only (*MAPPED 1), or read whole when it cannot be
 * (an empty file): the new content, without a copy in our own memory. */
static int
map_local (const char *local, char **buf, size_t *len, int *mapped, struct np_error *err)
{
  struct stat st;
  int fd = open (local, O_RDONLY | O_CLOEXEC);
  void *p = MAP_FAILED;

  *mapped = 0;
  if (fd >= 0 && fstat (fd, &st) == 0 && S_ISREG (st.st_mode) && st.st_size > 0)
    p = mmap (NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  if (fd >= 0)
    close (fd);
  if (p != MAP_FAILED) {
    *buf = p;
    *len = (size_t) st.st_size;
    *mapped = 1;
    return 0;
  }
  return hostfile_read_all (local, buf, len, err);
}

int
direct_replace (struct disk *dk, const char *name, const char *local, const char *scratch,
                struct np_error *err)
{
  struct direct *d = (struct direct *) dk;
  MFT_REF sys;
  unsigned dt;
  char *buf = NULL, *path = NULL;
  size_t len = 0;
  int r = -1, l, mapped;

  (void) scratch;                      /* compared in memory */
  if (map_local (local, &buf, &len, &mapped, err) == -1)
    return -1;
  if (direct_mount_rw (d, err) == -1)
    goto out;
  if (asprintf (&path, "%s/%s", d->config_dir, name) == -1) {
    path = NULL;
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    goto out;
  }
  l = direct_lookup (d->vol, d->config, name, &sys, &dt, NULL);
  if (l != 1 || dt != NTFS_DT_REG) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s %s", d->path, path,
                  l < 0 ? strerror (errno) : "is not a regular file");
    goto out;
  }
  r = direct_swap_data (d, sys, path, name, buf, len, err);
 out:
  free (path);
  if (mapped)
    munmap (buf, len);
  else
    free (buf);
  return r;
}
