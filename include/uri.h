/* netvsc-patch: images named by a URI instead of a host path, as
 * libguestfs tools take them with -a URI.
 *
 * A target is a URI when it starts with "SCHEME://" (SCHEME: a letter,
 * then letters, digits, '+', '-' or '.'); any other target is a host
 * path.  A local file whose name starts like that is reached with a
 * "./" prefix ("./nbd://x").  Known schemes: nbd, nbd+unix (writable),
 * ssh (writable, appliance only: qemu takes no lock on the server's
 * file, uri_write_warning), http and https (read-only, appliance only);
 * any other scheme is a usage error.
 *
 * The bytes of a remote image are interpreted by qemu on this host only
 * when a format other than raw is given: its header is then read first
 * (NBD only) and refused if it names any other file, and qemu gets
 * "backing": null (direct backend).  Raw is the default: the server
 * (e.g. qemu-nbd -f qcow2) does the interpreting. */
#ifndef NETVSC_PATCH_URI_H
#define NETVSC_PATCH_URI_H

#include <limits.h>

#include "options.h"
#include "status.h"

enum uri_scheme {
  URI_NBD,                      /* nbd://HOST[:PORT][/EXPORT] */
  URI_NBD_UNIX,                 /* nbd+unix:///[EXPORT]?socket=PATH */
  URI_SSH,                      /* ssh://[USER@]HOST[:PORT]/PATH */
  URI_HTTP,                     /* http://HOST[:PORT]/PATH[?QUERY] */
  URI_HTTPS,
};

struct image_uri {
  enum uri_scheme scheme;
  const char *name;             /* the scheme: "nbd", "nbd+unix", ... */
  const char *protocol;         /* libguestfs's: "nbd", "ssh", "http", "https" */
  int read_only;                /* the protocol cannot write (http, https) */
  int is_nbd;
  int unlocked;                 /* writable, but qemu locks nothing there (ssh) */
  char host[256];               /* "" with nbd+unix; IPv6 without brackets */
  int port;                     /* 0: the protocol's default */
  char socket[PATH_MAX];        /* nbd+unix: the server's socket */
  char username[128];           /* ssh: "" for the current user */
  /* nbd: the export name (percent-decoded, no leading '/', "" for the
   * default export); ssh: the remote path; http(s): the path with its
   * query, as sent to the server. */
  char path[4096];
  /* libguestfs's server string: "tcp:HOST:PORT", "unix:PATH", "HOST[:PORT]" */
  char server[PATH_MAX + 16];
};

/* Is TARGET written as a URI (see above)?  No syntax check beyond that. */
int uri_looks_like (const char *target);

/* Parse TARGET (uri_looks_like is true).  Returns 0, or -1 with *err
 * (NP_EXIT_USAGE) naming TARGET: unknown scheme, a password in it,
 * query parameters other than nbd+unix's socket, bad port... */
int uri_parse (const char *target, struct image_uri *u, struct np_error *err);

/* What the options allow for the URI TARGET of FORMAT (NULL: raw),
 * before anything is opened: a write to a read-only protocol, --direct
 * with ssh/http, a format qemu would interpret on this host over a
 * protocol whose header cannot be checked.  Returns 0, or -1 with *err
 * (NP_EXIT_USAGE). */
/* The warning a run writing to TARGET should print (one line, no
 * target name), or NULL. */
const char *uri_write_warning (const struct options *o, const char *target);

int uri_allowed (const struct options *o, const char *target, const char *format,
                 struct np_error *err);

/* Everything before a backend opens the URI TARGET: uri_allowed, the
 * format (FORMAT, or raw), a local socket that must exist, and for a
 * format other than raw the header read over NBD and refused if it
 * names another file (layers.h).  *SPEC (malloc'd, or NULL) is the qemu
 * "json:" spec the direct backend's qemu-nbd opens it with ("backing":
 * null).  Returns 0 with *FORMAT_OUT set, or -1 with *err. */
int uri_prepare (const struct options *o, const char *target, const char *format,
                 const char **format_out, char **spec, struct np_error *err);

/* In the image module (uri_header.c; reached through backends.h): read
 * the header of TARGET (a non-raw FORMAT over NBD) with libnbd and refuse
 * one that names another file.  Returns 0 or -1 with *err. */
int uri_check_header (const char *target, const char *format, struct np_error *err);

#endif
