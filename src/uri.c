/* netvsc-patch: images named by a URI (see uri.h).
 *
 * The parser accepts a deliberately small subset of each scheme, the
 * part libguestfs (the appliance) and libnbd (--direct) read the same
 * way: no passwords, no query parameters other than nbd+unix's socket,
 * no fragments.  What is refused is said, as a usage error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


#include "backends.h"
#include "disk.h"
#include "layers.h"
#include "uri.h"

static const struct {
  const char *name;
  enum uri_scheme scheme;
  const char *protocol;
  int read_only, is_nbd, unlocked;
} schemes[] = {
  /* an NBD server locks its export (qemu-nbd does); qemu's ssh driver
   * locks nothing on the server */
  { "nbd", URI_NBD, "nbd", 0, 1, 0 },
  { "nbd+unix", URI_NBD_UNIX, "nbd", 0, 1, 0 },
  { "ssh", URI_SSH, "ssh", 0, 0, 1 },
  { "http", URI_HTTP, "http", 1, 0, 0 },
  { "https", URI_HTTPS, "https", 1, 0, 0 },
};

#define SCHEME_LIST "nbd://, nbd+unix://, ssh://, http:// or https://"

/* The scheme's length if TARGET starts with "SCHEME://", else 0. */
static size_t
scheme_len (const char *target)
{
  size_t k = 0;

  if (!((target[0] >= 'a' && target[0] <= 'z') || (target[0] >= 'A' && target[0] <= 'Z')))
    return 0;
  while (target[k] && strchr ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "0123456789+-.", target[k]))
    k++;
  return strncmp (target + k, "://", 3) == 0 ? k : 0;
}

int
uri_looks_like (const char *target)
{
  return target && scheme_len (target) > 0;
}

static int
bad (struct np_error *err, const char *target, const char *why)
{
  return np_error_set (err, NP_EXIT_USAGE, "%s: not a usable image URI: %s (a local file "
                       "named like this: ./%s)", target, why, target);
}

static int
hexval (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Percent-decode S[0..LEN) into OUT; -1 on a bad escape, %00 or overflow. */
static int
decode (const char *s, size_t len, char *out, size_t outlen)
{
  size_t j = 0;

  for (size_t i = 0; i < len; i++) {
    int c = (unsigned char) s[i];
    if (c == '%') {
      int h, l;
      if (i + 2 >= len || (h = hexval (s[i + 1])) < 0 || (l = hexval (s[i + 2])) < 0)
        return -1;
      c = h * 16 + l;
      if (c == 0)
        return -1;
      i += 2;
    }
    if (j + 1 >= outlen)
      return -1;
    out[j++] = (char) c;
  }
  out[j] = '\0';
  return 0;
}

/* AUTH[0..LEN): [USER@]HOST[:PORT], HOST possibly "[v6]". */
static int
parse_authority (const char *target, const char *auth, size_t len, struct image_uri *u,
                 struct np_error *err)
{
  const char *at = memchr (auth, '@', len), *h = auth, *end = auth + len, *colon;

  if (at) {
    size_t ul = (size_t) (at - auth);
    if (u->scheme != URI_SSH)
      return bad (err, target, "a user name goes with ssh:// only");
    if (memchr (auth, ':', ul))
      return bad (err, target, "a password in the URI is not accepted (use an ssh key "
                  "or agent)");
    if (ul == 0 || decode (auth, ul, u->username, sizeof u->username) == -1)
      return bad (err, target, "bad user name");
    h = at + 1;
  }
  if (h < end && *h == '[') {
    const char *close = memchr (h, ']', (size_t) (end - h));
    if (close == NULL || close == h + 1 || (size_t) (close - h - 1) >= sizeof u->host)
      return bad (err, target, "bad IPv6 address");
    memcpy (u->host, h + 1, (size_t) (close - h - 1));
    u->host[close - h - 1] = '\0';
    if (strspn (u->host, "0123456789abcdefABCDEF:.") != strlen (u->host))
      return bad (err, target, "bad IPv6 address");
    colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
    if (close + 1 < end && colon == NULL)
      return bad (err, target, "bad IPv6 address");
  }
  else {
    colon = memchr (h, ':', (size_t) (end - h));
    size_t hl = (size_t) ((colon ? colon : end) - h);
    if (hl >= sizeof u->host)
      return bad (err, target, "host name too long");
    memcpy (u->host, h, hl);
    u->host[hl] = '\0';
    for (const char *p = u->host; *p; p++)
      if (!strchr ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_", *p))
        return bad (err, target, "bad host name");
  }
  if (colon) {
    long port = 0;
    const char *p = colon + 1;
    if (p == end)
      return bad (err, target, "empty port");
    for (; p < end; p++) {
      if (*p < '0' || *p > '9' || (port = port * 10 + (*p - '0')) > 65535)
        return bad (err, target, "bad port (1 to 65535)");
    }
    if (port == 0)
      return bad (err, target, "bad port (1 to 65535)");
    u->port = (int) port;
  }
  return 0;
}

int
uri_parse (const char *target, struct image_uri *u, struct np_error *err)
{
  size_t sl = scheme_len (target), i;
  const char *auth, *path, *query, *end;
  char scheme[16];

  memset (u, 0, sizeof *u);
  if (sl == 0)
    return bad (err, target, "expected SCHEME://");
  for (const unsigned char *p = (const unsigned char *) target; *p; p++)
    if (*p <= 0x20 || *p == 0x7f)
      return bad (err, target, "spaces and control characters must be written %XX");
  if (strchr (target, '#'))
    return bad (err, target, "a fragment (#...) means nothing here");
  snprintf (scheme, sizeof scheme, "%.*s", (int) (sl < 15 ? sl : 15), target);
  for (char *p = scheme; *p; p++)
    if (*p >= 'A' && *p <= 'Z')
      *p = (char) (*p - 'A' + 'a');
  for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    if (sl < sizeof scheme && strcmp (scheme, schemes[i].name) == 0)
      break;
  if (i == sizeof schemes / sizeof schemes[0])
    return np_error_set (err, NP_EXIT_USAGE, "%s: unknown URI scheme '%.*s': netvsc-patch "
                         "takes " SCHEME_LIST " (a local file named like this: ./%s)",
                         target, (int) (sl < 32 ? sl : 32), target, target);
  u->scheme = schemes[i].scheme;
  u->name = schemes[i].name;
  u->protocol = schemes[i].protocol;
  u->read_only = schemes[i].read_only;
  u->is_nbd = schemes[i].is_nbd;
  u->unlocked = schemes[i].unlocked;

  auth = target + sl + 3;
  end = target + strlen (target);
  path = auth + strcspn (auth, "/?");
  query = strchr (path, '?');
  if (parse_authority (target, auth, (size_t) (path - auth), u, err) == -1)
    return -1;
  if (u->scheme == URI_NBD_UNIX ? (path != auth) : u->host[0] == '\0')
    return bad (err, target, u->scheme == URI_NBD_UNIX
                ? "nbd+unix:// takes no host: nbd+unix:///EXPORT?socket=PATH"
                : "no host");

  /* the query: nbd+unix's socket, nothing else */
  if (query) {
    const char *q = query + 1;
    if (u->scheme != URI_NBD_UNIX)
      return bad (err, target, "query parameters are not passed on (nbd+unix:// takes "
                  "?socket=PATH)");
    if (strncmp (q, "socket=", 7) != 0 || strpbrk (q, "&;"))
      return bad (err, target, "the only query parameter is socket=PATH");
    if (decode (q + 7, strlen (q + 7), u->socket, sizeof u->socket) == -1 ||
        u->socket[0] == '\0')
      return bad (err, target, "bad socket path");
    end = query;
  }
  else if (u->scheme == URI_NBD_UNIX)
    return bad (err, target, "nbd+unix:// needs ?socket=PATH");

  if (u->is_nbd) {
    /* the export name is the path without its leading '/' (the NBD URI
     * specification, and libnbd) */
    const char *e = path < end && *path == '/' ? path + 1 : path;
    if (decode (e, (size_t) (end - e), u->path, sizeof u->path) == -1)
      return bad (err, target, "bad export name");
  }
  else {
    if (path >= end || *path != '/' || path + 1 == end)
      return bad (err, target, "no path to the image on the server");
    if (decode (path, (size_t) (end - path), u->path, sizeof u->path) == -1)
      return bad (err, target, "bad path");
  }

  switch (u->scheme) {
  case URI_NBD:
    snprintf (u->server, sizeof u->server, strchr (u->host, ':') ? "tcp:[%s]:%d" : "tcp:%s:%d",
              u->host, u->port ? u->port : 10809);
    break;
  case URI_NBD_UNIX:
    snprintf (u->server, sizeof u->server, "unix:%s", u->socket);
    break;
  default:
    if (u->port)
      snprintf (u->server, sizeof u->server, strchr (u->host, ':') ? "[%s]:%d" : "%s:%d",
                u->host, u->port);
    else
      snprintf (u->server, sizeof u->server, strchr (u->host, ':') ? "[%s]" : "%s", u->host);
  }
  return 0;
}

int
uri_allowed (const struct options *o, const char *target, const char *format,
             struct np_error *err)
{
  struct image_uri u;

  if (uri_parse (target, &u, err) == -1)
    return -1;
  if (u.read_only && o->mode == RUN_PATCH)
    return np_error_set (err, NP_EXIT_USAGE, "%s: %s:// images are read-only: only "
                         "--dry-run, --check or --list (to patch it, copy it and patch the "
                         "copy)", target, u.name);
  if (o->direct && !u.is_nbd)
    return np_error_set (err, NP_EXIT_USAGE, "%s: --direct takes nbd:// and nbd+unix:// "
                         "URIs only: %s:// images go through the appliance (without --direct)",
                         target, u.name);
  if (format && strcmp (format, "raw") != 0 && !u.is_nbd)
    return np_error_set (err, NP_EXIT_USAGE, "%s: --format %s over %s:// is refused: qemu on "
                         "this host would open the files its header names, and that header "
                         "cannot be checked first over %s (serve it as raw, e.g. qemu-nbd -f "
                         "%s on the server and nbd://, or convert it)", target, format,
                         u.name, u.name, format);
  /* qemu allocates a qcow2's (a dynamic VHD's, ...) new clusters at the
   * end of its file, and an export does not grow: the write would fail
   * half-way (EINVAL from the server), so it is not started. */
  if (format && strcmp (format, "raw") != 0 && o->mode == RUN_PATCH)
    return np_error_set (err, NP_EXIT_USAGE, "%s: --format %s over %s:// is read-only here "
                         "(only --dry-run, --check or --list): a write would need the export "
                         "to grow; serve it as raw (qemu-nbd -f %s on the server) to patch it",
                         target, format, u.name, format);
  return 0;
}


const char *
uri_write_warning (const struct options *o, const char *target)
{
  struct image_uri u;
  struct np_error ignored;

  if (o->mode == RUN_PATCH && uri_parse (target, &u, &ignored) == 0 && u.unlocked)
    return "qemu takes no lock on an ssh server's file: make sure no VM there runs from "
      "this image (or serve it with qemu-nbd, which locks it, and give nbd://)";
  return NULL;
}

/* qemu's json: spec for FORMAT over the NBD export, with nothing else
 * opened even if the header asks for it. */
static char *
qemu_spec (const struct image_uri *u, const char *format)
{
  char *spec = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&spec, &len);

  if (f == NULL)
    return NULL;
  fprintf (f, "json:{\"driver\":\"%s\",\"file\":{\"driver\":\"nbd\",\"server\":", format);
  if (u->scheme == URI_NBD_UNIX) {
    fputs ("{\"type\":\"unix\",\"path\":", f);
    layers_json_str (f, u->socket);
  }
  else {
    fputs ("{\"type\":\"inet\",\"host\":", f);
    layers_json_str (f, u->host);
    fprintf (f, ",\"port\":\"%d\"", u->port ? u->port : 10809);
  }
  fputc ('}', f);
  if (u->path[0]) {
    fputs (",\"export\":", f);
    layers_json_str (f, u->path);
  }
  fputc ('}', f);
  if (strcmp (format, "qcow2") == 0 || strcmp (format, "vmdk") == 0)
    fputs (",\"backing\":null", f);
  fputc ('}', f);
  if (fclose (f) != 0) {
    free (spec);
    return NULL;
  }
  return spec;
}

int
uri_prepare (const struct options *o, const char *target, const char *format,
             const char **format_out, char **spec, struct np_error *err)
{
  struct image_uri u;
  struct stat st;

  *spec = NULL;
  if (uri_allowed (o, target, format, err) == -1 || uri_parse (target, &u, err) == -1)
    return -1;
  /* Never probed: the server's bytes are a disk unless told otherwise. */
  *format_out = format ? format : "raw";
  /* A socket that is not there fails here in both backends alike (the
   * appliance would find out only at launch). */
  if (u.scheme == URI_NBD_UNIX && stat (u.socket, &st) == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: no NBD server: %s: %s", target, u.socket,
                         strerror (errno));
  if (u.scheme == URI_NBD_UNIX && !S_ISSOCK (st.st_mode))
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: no NBD server: %s is not a socket",
                         target, u.socket);
  /* qemu on this host opens http, https and ssh itself: once first */
  if ((u.scheme == URI_HTTP || u.scheme == URI_HTTPS || u.scheme == URI_SSH) &&
      disk_preflight_remote (target, *format_out, err) == -1)
    return -1;
  if (strcmp (*format_out, "raw") == 0)
    return 0;
  if (backends_uri_check_header (target, *format_out, err) == -1)
    return -1;
  if ((*spec = qemu_spec (&u, *format_out)) == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  return 0;
}
