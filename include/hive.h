/* netvsc-patch: an open SYSTEM hive and the small reads and writes the
 * rest of the program needs.  Registry strings are UTF-16LE on disk and
 * UTF-8 everywhere above this module. */
#ifndef NETVSC_PATCH_HIVE_H
#define NETVSC_PATCH_HIVE_H

#include <stddef.h>
#include <stdint.h>
#include <hivex.h>

#include "status.h"

/* The fields of the 4 KiB base block ("regf") that decide whether a
 * hive may be edited: Windows replays SYSTEM.LOG1/LOG2 at boot when the
 * sequence numbers differ, which would undo (or corrupt) our change. */
struct base_block {
  uint32_t seq_primary;        /* offset 4 */
  uint32_t seq_secondary;      /* offset 8 */
  uint32_t checksum;           /* offset 0x1fc, as stored */
  uint32_t checksum_computed;  /* XOR of the first 508 bytes */
  uint32_t major, minor, type;
};

/* Read and check the base block of the hive file at PATH.  Fails
 * (NP_EXIT_RUNTIME) when the file cannot be read or is not a registry
 * hive at all.  Dirtiness is reported, not judged: see
 * base_block_is_dirty. */
int hive_read_base_block (const char *path, struct base_block *bb,
                          struct np_error *err);
int base_block_is_dirty (const struct base_block *bb);
/* Describe why the base block is dirty, e.g. "sequence numbers differ
 * (0x656 / 0x655)". */
void base_block_describe (const struct base_block *bb, char *buf, size_t len);

struct hive_count_job;
struct hive {
  hive_h *h;
  const char *path;            /* borrowed: for messages */
  struct hive_count_job *census;  /* a writable open's count (hive_count.h) */
};

/* Open PATH with hivex.  A writable open is for patching it: the
 * structure count that verification compares with starts alongside
 * (hive_count.h). */
int hive_open (struct hive *hv, const char *path, int writable,
               struct np_error *err);
void hive_close (struct hive *hv);

/* Which control sets to work on. */
enum cs_mode {
  CS_SELECTED,   /* Select\Current and Select\Default (once if equal) */
  CS_CURRENT,
  CS_DEFAULT,
  CS_ALL,        /* every ControlSetNNN key */
  CS_NUMBER,     /* ControlSet<number> */
};
struct cs_request {
  enum cs_mode mode;
  unsigned number;
};
/* Parse a --control-set argument.  Returns 0 or -1. */
int cs_request_parse (const char *arg, struct cs_request *req);

struct control_set {
  char name[16];               /* "ControlSet001" */
  hive_node_h node;
  char why[32];                /* "current", "default", "current, default", ... */
};
struct control_sets {
  struct control_set *v;
  size_t n;
};
int hive_control_sets (struct hive *hv, const struct cs_request *req,
                       struct control_sets *out, struct np_error *err);
void control_sets_free (struct control_sets *cs);

/* Follow a backslash-separated PATH of subkeys from NODE (names are
 * matched case-insensitively, as Windows does).  0 if absent. */
hive_node_h hive_lookup (struct hive *hv, hive_node_h node, const char *path);

/* A string value (REG_SZ, REG_EXPAND_SZ, or the first string of a
 * REG_MULTI_SZ) as UTF-8, or NULL if absent or of another type. */
char *hive_get_string (struct hive *hv, hive_node_h node, const char *name);

/* What a value currently holds, for plans and reports. */
struct value_state {
  int present;
  hive_type type;
  int is_dword;                /* REG_DWORD with 4 bytes of data */
  uint32_t dword;
  char *text;                  /* printable form of any value, malloc'd */
};
int hive_value_state (struct hive *hv, hive_node_h node, const char *name,
                      struct value_state *vs);
void value_state_free (struct value_state *vs);
const char *hive_type_name (hive_type t);

/* Set NAME to a REG_DWORD, replacing any value of that name. */
int hive_set_dword (struct hive *hv, hive_node_h node, const char *name,
                    uint32_t value);
/* Set NAME to a REG_SZ holding UTF8 (stored as UTF-16LE). */
int hive_set_string (struct hive *hv, hive_node_h node, const char *name,
                     const char *utf8);

/* Can hivex rewrite NODE's values (hive_set_*, hive_delete_value) on
 * this hive?  Doing so, libhivex frees the value list, each value and
 * each value's data without checking that they are distinct cells: a
 * list naming a value twice, or values sharing a cell (with each other,
 * the list or the key), makes it abort (assertion in mark_block_unused)
 * or write into a freed cell.  Checked on the hive's file before the
 * first change to NODE: 0, or -1 with errno EINVAL (a cell named twice,
 * a value that is not one, data not in a cell) or another errno. */
int hive_values_rewritable (struct hive *hv, hive_node_h node);

/* Delete value NAME from NODE (hivex has no single-value delete: the
 * node's remaining values are written back as a set). */
int hive_delete_value (struct hive *hv, hive_node_h node, const char *name);
#endif
