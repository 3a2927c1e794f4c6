/* netvsc-patch: what other files an image names, checked.
 *
 * Images come from other people.  A VMDK descriptor names its extents,
 * a qcow2 its backing file and external data file, a differencing
 * VHD/VHDX its parent: qemu opens whatever they name, read-write for
 * extents and data files.  Before qemu opens anything, these names are
 * read here from the image's own bytes and each must be a regular file
 * in the same directory as the file naming it (or one the user allowed
 * with --allow-external); `json:` and protocol names are refused.
 *
 * The parsers are pure (bytes in through a read callback, names out) so
 * the unit tests and the fuzz target call them with no file. */
#ifndef NETVSC_PATCH_LAYERS_H
#define NETVSC_PATCH_LAYERS_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "status.h"

#define LAYERS_NAMES_MAX 64     /* names one file may hold that we keep */
#define LAYERS_FILES_MAX 64     /* files in one image, all layers */
#define LAYERS_DEPTH_MAX 16     /* backing chain / nested descriptors */
#define LAYERS_NAME_MAX 1024    /* qemu keeps at most 1023 bytes */

enum layer_role {
  LAYER_EXTENT,                 /* VMDK extent: opened read-write */
  LAYER_BACKING,                /* qcow2 backing file, VMDK parentFileNameHint */
  LAYER_DATA_FILE,              /* qcow2 external data file: read-write */
  LAYER_PARENT,                 /* VHD/VHDX parent: qemu cannot read it */
};

struct layer_name {
  enum layer_role role;
  char name[LAYERS_NAME_MAX];   /* as the image spells it */
  char format[16];              /* backing format the header records, or "" */
};

struct layer_names {
  size_t n;
  struct layer_name v[LAYERS_NAMES_MAX];
  int needs_data_file;          /* qcow2 incompatible bit 2 */
  int has_parent;               /* VHD/VHDX: differencing */
};

/* Random access to an image's bytes: READ fills LEN bytes at OFF, or
 * returns -1 (past the end, I/O error). */
struct layers_src {
  uint64_t size;
  int (*read) (void *ctx, void *buf, size_t len, uint64_t off);
  void *ctx;
};

/* A source over a buffer in memory (tests, fuzzing). */
struct layers_mem {
  const unsigned char *data;
  size_t len;
};
void layers_mem_src (struct layers_src *src, struct layers_mem *m,
                     const void *data, size_t len);

/* The names in an image of FORMAT ("qcow2", "vmdk", "vpc", "vhdx";
 * "raw" names nothing).  AS_EXTENT: the file is a VMDK extent, not an
 * image opened on its own (qemu reads no parent hint from extents).
 * Returns 0, or -1 with WHY (a phrase) when the metadata cannot be
 * read the way qemu would read it. */
int layers_parse (const char *format, int as_extent, const struct layers_src *src,
                  struct layer_names *out, char *why, size_t whylen);

/* The files of one image, checked. */
struct layer_file {
  char path[4096];              /* v[0]: the user's path; others: resolved */
  const char *format;           /* by magic ("raw" for extents) */
  enum layer_role role;         /* how it was named (v[0]: unused) */
  int backing;                  /* index of its backing layer, or -1 */
  int data_file;                /* index of its external data file, or -1 */
  int recorded_format;          /* its parent named its format */
};

struct layers {
  size_t n;
  struct layer_file v[LAYERS_FILES_MAX];
};

/* Walk everything the image at PATH (of FORMAT, already detected) names,
 * recursively.  ALLOWED: real paths the user allowed (--allow-external).
 * Returns 0 with *OUT filled, or -1 with *err (exit 1, naming the
 * image and the file). */
int layers_check (const char *path, const char *format, char *const *allowed,
                  size_t n_allowed, struct layers *out, struct np_error *err);

/* The appliance gives qemu only the top layer's format: every backing
 * layer must have its format recorded in its child's header, or qemu
 * would probe it.  Returns 0 or -1 with *err. */
int layers_recorded (const char *path, const struct layers *l, struct np_error *err);

/* A qemu "json:{...}" file name opening exactly the checked chain with
 * every layer's format and file given (*SPEC, for qemu-nbd), and one
 * per layer of the chain with "backing":null (*EACH, NULL-terminated,
 * for qemu-img info, which opens images without their backing and
 * refuses backing options); both NULL (and 0) when the image has no
 * other layer than extents (then "-f FORMAT PATH" says it all).
 * Returns 0, or -1 when out of memory.  Free with free and
 * layers_specs_free. */
int layers_qemu_spec (const struct layers *l, char **spec, char ***each);
void layers_specs_free (char **each);

/* S as a JSON string on F (quotes, backslashes and control bytes
 * escaped), for the qemu json: specs built here and in uri.c. */
int layers_json_str (FILE *f, const char *s);

#endif
