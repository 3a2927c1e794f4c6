/* netvsc-patch: the SYSTEM hive, through hivex.
 *
 * Reference for the base block layout: the public "Windows registry
 * file format specification" (base block: signature, primary and
 * secondary sequence numbers, checksum at 508 = XOR of the preceding
 * 127 dwords, with 0 and -1 mapped to 1 and -2). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hive.h"
#include "hive_count.h"
#include "regf.h"
#include "strbuf.h"
#include "utf16.h"

#define BASE_BLOCK_SIZE 4096


int
hive_read_base_block (const char *path, struct base_block *bb,
                      struct np_error *err)
{
  unsigned char block[BASE_BLOCK_SIZE];
  struct stat st;
  ssize_t r;
  int fd;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot open: %s",
                         path, strerror (errno));
  r = pread (fd, block, sizeof block, 0);
  if (r >= 0 && fstat (fd, &st) == -1)
    r = -1;
  close (fd);
  if (r == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot read: %s",
                         path, strerror (errno));
  if (r < (ssize_t) sizeof block || memcmp (block, "regf", 4) != 0)
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: not a registry hive (no \"regf\" base block)", path);
  /* before hivex copies the whole file into memory */
  if (st.st_size > (off_t) REGF_BASE_BLOCK_SIZE + REGF_MAX_BINS ||
      get_le32 (block + REGF_BINS_SIZE_AT) > REGF_MAX_BINS)
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: not a registry hive: larger than the 2 GB a hive's cells can "
                         "address (%lld bytes, %" PRIu32 " declared)", path,
                         (long long) st.st_size, get_le32 (block + REGF_BINS_SIZE_AT));

  bb->seq_primary = get_le32 (block + 4);
  bb->seq_secondary = get_le32 (block + 8);
  bb->major = get_le32 (block + 20);
  bb->minor = get_le32 (block + 24);
  bb->type = get_le32 (block + 28);
  bb->checksum = get_le32 (block + 508);
  bb->checksum_computed = regf_checksum (block);

  if (bb->major != 1)
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: unsupported registry hive version %" PRIu32 ".%" PRIu32,
                         path, bb->major, bb->minor);
  if (bb->type != 0)
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: not a primary hive file (file type %" PRIu32 "; a transaction log?)",
                         path, bb->type);
  return 0;
}

int
base_block_is_dirty (const struct base_block *bb)
{
  return bb->seq_primary != bb->seq_secondary ||
    bb->checksum != bb->checksum_computed;
}

void
base_block_describe (const struct base_block *bb, char *buf, size_t len)
{
  if (bb->seq_primary != bb->seq_secondary)
    snprintf (buf, len, "sequence numbers differ (0x%" PRIx32 " / 0x%" PRIx32 ")",
              bb->seq_primary, bb->seq_secondary);
  else if (bb->checksum != bb->checksum_computed)
    snprintf (buf, len, "base block checksum is wrong (0x%08" PRIx32
              ", expected 0x%08" PRIx32 ")", bb->checksum, bb->checksum_computed);
  else
    snprintf (buf, len, "clean");
}

int
hive_open (struct hive *hv, const char *path, int writable, struct np_error *err)
{
  hv->path = path;
  hv->census = writable ? hive_count_start (path) : NULL;
  hv->h = hivex_open (path, writable ? HIVEX_OPEN_WRITE : 0);
  if (hv->h == NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: damaged or unsupported registry hive (hivex: %s)",
                  path, strerror (errno));
    hive_close (hv);
    return -1;
  }
  return 0;
}

void
hive_close (struct hive *hv)
{
  /* a count not taken (nothing to write, or a failure): its thread */
  hive_count_discard (hv->census);
  hv->census = NULL;
  if (hv->h)
    hivex_close (hv->h);
  hv->h = NULL;
}

int
cs_request_parse (const char *arg, struct cs_request *req)
{
  char *end;
  unsigned long n;

  req->number = 0;
  if (strcasecmp (arg, "current") == 0)
    req->mode = CS_CURRENT;
  else if (strcasecmp (arg, "default") == 0)
    req->mode = CS_DEFAULT;
  else if (strcasecmp (arg, "all") == 0)
    req->mode = CS_ALL;
  else {
    if (strncasecmp (arg, "ControlSet", 10) == 0)
      arg += 10;
    if (!isdigit ((unsigned char) *arg))
      return -1;
    errno = 0;
    n = strtoul (arg, &end, 10);
    if (errno || *end || n == 0 || n > 999)
      return -1;
    req->mode = CS_NUMBER;
    req->number = (unsigned) n;
  }
  return 0;
}

hive_node_h
hive_lookup (struct hive *hv, hive_node_h node, const char *path)
{
  char *copy = strdup (path), *save = NULL;

  if (copy == NULL)
    return 0;
  for (char *part = strtok_r (copy, "\\", &save); part && node;
       part = strtok_r (NULL, "\\", &save))
    node = hivex_node_get_child (hv->h, node, part);
  free (copy);
  return node;
}

/* Read Select\NAME and turn it into a control set entry. */
static int
selected_set (struct hive *hv, hive_node_h select, const char *which,
              struct control_set *cs, struct np_error *err)
{
  hive_value_h v = hivex_node_get_value (hv->h, select, which);
  hive_type t;
  size_t len;

  if (v == 0 || hivex_value_type (hv->h, v, &t, &len) == -1 ||
      t != hive_t_REG_DWORD || len != 4)
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: Select\\%s is missing or not a REG_DWORD", hv->path, which);
  uint32_t n = (uint32_t) hivex_value_dword (hv->h, v);
  if (n == 0 || n > 999)
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: Select\\%s holds %" PRIu32 ", not a control set number",
                         hv->path, which, n);
  snprintf (cs->name, sizeof cs->name, "ControlSet%03" PRIu32, n);
  cs->node = hivex_node_get_child (hv->h, hivex_root (hv->h), cs->name);
  if (cs->node == 0)
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: Select\\%s points at %s, which does not exist",
                         hv->path, which, cs->name);
  snprintf (cs->why, sizeof cs->why, "%s", which);
  for (char *p = cs->why; *p; p++)
    *p = (char) tolower ((unsigned char) *p);
  return 0;
}

static int
is_control_set_name (const char *name)
{
  return strncasecmp (name, "ControlSet", 10) == 0 && strlen (name) == 13 &&
    isdigit ((unsigned char) name[10]) && isdigit ((unsigned char) name[11]) &&
    isdigit ((unsigned char) name[12]);
}

static int
all_control_sets (struct hive *hv, struct control_sets *out, struct np_error *err)
{
  hive_node_h *children = hivex_node_children (hv->h, hivex_root (hv->h));

  if (children == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot list the root key: %s",
                         hv->path, strerror (errno));
  size_t n = 0;
  while (children[n])
    n++;
  out->v = calloc (n ? n : 1, sizeof *out->v);
  if (out->v == NULL) {
    free (children);
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    char *name = hivex_node_name (hv->h, children[i]);
    if (name && is_control_set_name (name)) {
      struct control_set *cs = &out->v[out->n++];
      snprintf (cs->name, sizeof cs->name, "%s", name);
      cs->node = children[i];
      snprintf (cs->why, sizeof cs->why, "all");
    }
    free (name);
  }
  free (children);
  if (out->n == 0)
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: no ControlSetNNN key: not a SYSTEM hive?", hv->path);
  return 0;
}

int
hive_control_sets (struct hive *hv, const struct cs_request *req,
                   struct control_sets *out, struct np_error *err)
{
  hive_node_h root = hivex_root (hv->h), select;

  out->v = NULL;
  out->n = 0;
  if (req->mode == CS_ALL)
    return all_control_sets (hv, out, err);

  out->v = calloc (2, sizeof *out->v);
  if (out->v == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");

  if (req->mode == CS_NUMBER) {
    struct control_set *cs = &out->v[0];
    snprintf (cs->name, sizeof cs->name, "ControlSet%03u", req->number);
    cs->node = hivex_node_get_child (hv->h, root, cs->name);
    if (cs->node == 0)
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s does not exist",
                           hv->path, cs->name);
    snprintf (cs->why, sizeof cs->why, "requested");
    out->n = 1;
    return 0;
  }

  select = hivex_node_get_child (hv->h, root, "Select");
  if (select == 0)
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: no Select key: not a SYSTEM hive? (use --control-set all or N)",
                         hv->path);
  if (req->mode != CS_DEFAULT) {
    if (selected_set (hv, select, "Current", &out->v[out->n], err) == -1)
      return -1;
    out->n++;
  }
  if (req->mode != CS_CURRENT) {
    struct control_set def;
    if (selected_set (hv, select, "Default", &def, err) == -1)
      return -1;
    if (out->n == 1 && out->v[0].node == def.node)
      snprintf (out->v[0].why, sizeof out->v[0].why, "current, default");
    else
      out->v[out->n++] = def;
  }
  return 0;
}

void
control_sets_free (struct control_sets *cs)
{
  free (cs->v);
  cs->v = NULL;
  cs->n = 0;
}

char *
hive_get_string (struct hive *hv, hive_node_h node, const char *name)
{
  hive_value_h v = hivex_node_get_value (hv->h, node, name);
  hive_type t;
  size_t len;

  if (v == 0 || hivex_value_type (hv->h, v, &t, &len) == -1)
    return NULL;
  if (t == hive_t_REG_SZ || t == hive_t_REG_EXPAND_SZ)
    return hivex_value_string (hv->h, v);
  if (t == hive_t_REG_MULTI_SZ) {
    char **strs = hivex_value_multiple_strings (hv->h, v);
    char *first = NULL;
    if (strs == NULL)
      return NULL;
    if (strs[0])
      first = strdup (strs[0]);
    for (size_t i = 0; strs[i]; i++)
      free (strs[i]);
    free (strs);
    return first;
  }
  return NULL;
}

const char *
hive_type_name (hive_type t)
{
  switch (t) {
  case hive_t_REG_NONE: return "REG_NONE";
  case hive_t_REG_SZ: return "REG_SZ";
  case hive_t_REG_EXPAND_SZ: return "REG_EXPAND_SZ";
  case hive_t_REG_BINARY: return "REG_BINARY";
  case hive_t_REG_DWORD: return "REG_DWORD";
  case hive_t_REG_DWORD_BIG_ENDIAN: return "REG_DWORD_BIG_ENDIAN";
  case hive_t_REG_LINK: return "REG_LINK";
  case hive_t_REG_MULTI_SZ: return "REG_MULTI_SZ";
  case hive_t_REG_RESOURCE_LIST: return "REG_RESOURCE_LIST";
  case hive_t_REG_FULL_RESOURCE_DESCRIPTOR: return "REG_FULL_RESOURCE_DESCRIPTOR";
  case hive_t_REG_RESOURCE_REQUIREMENTS_LIST: return "REG_RESOURCE_REQUIREMENTS_LIST";
  case hive_t_REG_QWORD: return "REG_QWORD";
  }
  return "REG_UNKNOWN";
}

int
hive_value_state (struct hive *hv, hive_node_h node, const char *name,
                  struct value_state *vs)
{
  hive_value_h v = hivex_node_get_value (hv->h, node, name);
  size_t len;

  memset (vs, 0, sizeof *vs);
  if (v == 0)
    return 0;
  if (hivex_value_type (hv->h, v, &vs->type, &len) == -1)
    return -1;
  vs->present = 1;
  if (vs->type == hive_t_REG_DWORD && len == 4) {
    vs->is_dword = 1;
    vs->dword = (uint32_t) hivex_value_dword (hv->h, v);
    if (asprintf (&vs->text, "0x%" PRIx32, vs->dword) == -1)
      vs->text = NULL;
  }
  else if (vs->type == hive_t_REG_SZ || vs->type == hive_t_REG_EXPAND_SZ)
    vs->text = hivex_value_string (hv->h, v);
  else if (asprintf (&vs->text, "(%zu bytes)", len) == -1)
    vs->text = NULL;
  if (vs->text == NULL)
    vs->text = strdup ("?");
  return vs->text ? 0 : -1;
}

void
value_state_free (struct value_state *vs)
{
  free (vs->text);
  vs->text = NULL;
}

int
hive_set_dword (struct hive *hv, hive_node_h node, const char *name,
                uint32_t value)
{
  unsigned char le[4] = {
    value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff, (value >> 24) & 0xff
  };
  hive_set_value sv = {
    .key = (char *) name, .t = hive_t_REG_DWORD, .len = 4, .value = (char *) le,
  };

  return hivex_node_set_value (hv->h, node, &sv, 0);
}

int
hive_set_string (struct hive *hv, hive_node_h node, const char *name,
                 const char *utf8)
{
  struct strbuf data = { 0 };
  int r;

  if (utf8_to_utf16le ((const unsigned char *) utf8, strlen (utf8), &data) == -1) {
    free (data.p);
    errno = EILSEQ;             /* as iconv said it, which did this before */
    return -1;
  }
  strbuf_add (&data, "\0\0", 2);  /* REG_SZ data includes its terminator */
  if (data.oom) {
    free (data.p);
    errno = ENOMEM;
    return -1;
  }
  {
    hive_set_value sv = {
      .key = (char *) name, .t = hive_t_REG_SZ, .len = data.len, .value = data.p,
    };
    r = hivex_node_set_value (hv->h, node, &sv, 0);
  }
  free (data.p);
  return r;
}

static int
cmp_offset (const void *a, const void *b)
{
  size_t x = *(const size_t *) a, y = *(const size_t *) b;

  return x < y ? -1 : x > y;
}

int
hive_values_rewritable (struct hive *hv, hive_node_h node)
{
  hive_value_h *values = hivex_node_values (hv->h, node);
  size_t n = 0, k = 0, *cells = NULL;
  unsigned char list[4];
  int fd, r = -1;

  if (values == NULL)
    return -1;
  while (values[n])
    n++;
  if (n == 0) {
    free (values);
    return 0;                   /* nothing to free */
  }
  /* the list's own cell, read from the key's "nk" record in the file
   * (hivex's API does not give it; its node handles are file offsets) */
  errno = 0;                    /* a short read sets none */
  fd = open (hv->path, O_RDONLY | O_CLOEXEC);
  if (fd == -1 || pread (fd, list, 4, (off_t) node + 4 + REGF_NK_VALUE_LIST_AT) != 4) {
    if (fd != -1)
      close (fd);
    if (errno == 0)
      errno = EINVAL;
    free (values);
    return -1;
  }
  close (fd);
  cells = malloc ((2 * n + 2) * sizeof *cells);
  if (cells == NULL)
    goto out;
  /* the key's own cell too: freed as a value's data, the key would be
   * written to after its cell was given to something else */
  cells[k++] = node;
  cells[k++] = (size_t) get_le32 (list) + REGF_BASE_BLOCK_SIZE;
  for (size_t i = 0; i < n; i++) {
    size_t len, data;
    cells[k++] = values[i];
    errno = 0;
    data = hivex_value_data_cell_offset (hv->h, values[i], &len);
    if (data == 0 && errno != 0) {
      errno = EINVAL;           /* not a value, or its data not in a cell */
      goto out;
    }
    if (data)
      cells[k++] = data;
  }
  qsort (cells, k, sizeof *cells, cmp_offset);
  for (size_t i = 1; i < k; i++)
    if (cells[i] == cells[i - 1]) {
      errno = EINVAL;
      goto out;
    }
  r = 0;
 out:
  free (cells);
  free (values);
  return r;
}

int
hive_delete_value (struct hive *hv, hive_node_h node, const char *name)
{
  hive_value_h *values = hivex_node_values (hv->h, node);
  hive_set_value *keep = NULL;
  size_t n = 0, n_keep = 0;
  int r = -1;

  if (values == NULL)
    return -1;
  while (values[n])
    n++;
  keep = calloc (n ? n : 1, sizeof *keep);
  if (keep == NULL)
    goto out;
  for (size_t i = 0; i < n; i++) {
    char *key = hivex_value_key (hv->h, values[i]);
    if (key == NULL)
      goto out;
    if (strcasecmp (key, name) == 0) {
      free (key);
      continue;
    }
    hive_set_value *sv = &keep[n_keep++];
    sv->key = key;
    sv->value = hivex_value_value (hv->h, values[i], &sv->t, &sv->len);
    if (sv->value == NULL)
      goto out;
  }
  r = hivex_node_set_values (hv->h, node, n_keep, keep, 0);

 out:
  for (size_t i = 0; keep && i < n_keep; i++) {
    free (keep[i].key);
    free (keep[i].value);
  }
  free (keep);
  free (values);
  return r;
}
