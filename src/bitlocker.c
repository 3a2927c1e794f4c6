/* netvsc-patch: BitLocker volumes and their keys (bitlocker.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "bitlocker.h"

/* BitLocker To Go's identifier 4967d63b-2e29-4ad8-8399-f6a339e3d001, as
 * a GUID is stored (the first three fields little-endian). */
static const unsigned char togo_guid[16] = {
  0x3b, 0xd6, 0x67, 0x49, 0x29, 0x2e, 0xd8, 0x4a,
  0x83, 0x99, 0xf6, 0xa3, 0x39, 0xe3, 0xd0, 0x01,
};

int
bitlocker_signature (const unsigned char *boot, size_t len)
{
  if (len < 512)
    return 0;
  if (memcmp (boot + 3, "-FVE-FS-", 8) == 0)
    return 1;
  return memcmp (boot + 3, "MSWIN4.1", 8) == 0 && memcmp (boot + 424, togo_guid, 16) == 0;
}

/* Longest key kept: recovery passwords are 55 characters, passwords
 * far shorter; a longer line is not a key. */
#define KEY_MAX 1024
/* Most keys --keys-from-stdin takes. */
#define KEYS_MAX 64

static int
add (struct keystore *ks, const char *device, size_t dlen, const char *key, size_t klen,
     struct np_error *err)
{
  struct key_entry *v = realloc (ks->v, (ks->n + 1) * sizeof *v);

  if (v == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  ks->v = v;
  v[ks->n].device = device ? strndup (device, dlen) : NULL;
  v[ks->n].key = strndup (key, klen);
  if ((device && v[ks->n].device == NULL) || v[ks->n].key == NULL) {
    free (v[ks->n].device);
    free (v[ks->n].key);
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  }
  ks->n++;
  return 0;
}

/* The length of LINE's first line, without its line end. */
static size_t
first_line (const char *line, size_t len)
{
  size_t n = 0;

  while (n < len && line[n] != '\n')
    n++;
  if (n > 0 && line[n - 1] == '\r')
    n--;
  return n;
}

int
keystore_add_selector (struct keystore *ks, const char *selector, struct np_error *err)
{
  const char *c1 = strchr (selector, ':'), *c2, *value;
  char buf[KEY_MAX + 2], file[4096];
  ssize_t got;
  size_t n;
  int fd, r;

  if (c1 == NULL || c1 == selector || (c2 = strchr (c1 + 1, ':')) == NULL)
    return np_error_set (err, NP_EXIT_USAGE, "--key: expected DEVICE:key:KEY or "
                         "DEVICE:file:FILE");
  value = c2 + 1;
  if (c2 - c1 - 1 == 3 && strncmp (c1 + 1, "key", 3) == 0) {
    if (*value == '\0')
      return np_error_set (err, NP_EXIT_USAGE, "--key %.*s:key: the key is empty",
                           (int) (c1 - selector), selector);
    return add (ks, selector, (size_t) (c1 - selector), value, strlen (value), err);
  }
  if (c2 - c1 - 1 != 4 || strncmp (c1 + 1, "file", 4) != 0)
    return np_error_set (err, NP_EXIT_USAGE, "--key %.*s:%.*s: expected DEVICE:key:KEY or "
                         "DEVICE:file:FILE", (int) (c1 - selector), selector,
                         (int) (c2 - c1 - 1), c1 + 1);
  snprintf (file, sizeof file, "%s", value);
  fd = open (file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd == -1)
    return np_error_set (err, NP_EXIT_USAGE, "--key %.*s:file:%s: %s",
                         (int) (c1 - selector), selector, file, strerror (errno));
  got = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (got < 0)
    return np_error_set (err, NP_EXIT_USAGE, "--key %.*s:file:%s: %s",
                         (int) (c1 - selector), selector, file, strerror (errno));
  n = first_line (buf, (size_t) got);
  if (n == 0 || n > KEY_MAX)
    return np_error_set (err, NP_EXIT_USAGE, "--key %.*s:file:%s: %s",
                         (int) (c1 - selector), selector, file,
                         n ? "its first line is too long to be a key" : "its first line is empty");
  r = add (ks, selector, (size_t) (c1 - selector), buf, n, err);
  memset (buf, 0, sizeof buf);
  return r;
}

/* One line from a terminal, echo off. */
static int
read_tty_line (int fd, char *buf, size_t len, size_t *n)
{
  struct termios old, quiet;
  int echo_off = tcgetattr (fd, &old) == 0;
  ssize_t got;

  fputs ("netvsc-patch: BitLocker recovery key or password: ", stderr);
  fflush (stderr);
  if (echo_off) {
    quiet = old;
    quiet.c_lflag &= (tcflag_t) ~ECHO;
    echo_off = tcsetattr (fd, TCSAFLUSH, &quiet) == 0;
  }
  got = read (fd, buf, len - 1);
  if (echo_off)
    tcsetattr (fd, TCSAFLUSH, &old);
  fputc ('\n', stderr);
  if (got < 0)
    return -1;
  *n = (size_t) got;
  return 0;
}

int
keystore_add_stream (struct keystore *ks, int fd, struct np_error *err)
{
  size_t cap = KEYS_MAX * (KEY_MAX + 2), used = 0, before = ks->n;
  char *buf = malloc (cap + 1);
  int r = 0;

  if (buf == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  if (isatty (fd)) {
    if (read_tty_line (fd, buf, KEY_MAX + 2, &used) == -1)
      r = np_error_set (err, NP_EXIT_USAGE, "--keys-from-stdin: %s", strerror (errno));
  }
  else
    for (;;) {
      ssize_t got = read (fd, buf + used, cap - used);
      if (got < 0 && errno == EINTR)
        continue;
      if (got < 0) {
        r = np_error_set (err, NP_EXIT_USAGE, "--keys-from-stdin: %s", strerror (errno));
        break;
      }
      if (got == 0)
        break;
      used += (size_t) got;
      if (used == cap) {
        r = np_error_set (err, NP_EXIT_USAGE, "--keys-from-stdin: more than %d keys",
                          KEYS_MAX);
        break;
      }
    }
  /* every line a key; empty lines are none */
  for (size_t at = 0; r == 0 && at < used; ) {
    size_t n = first_line (buf + at, used - at), next = at;
    while (next < used && buf[next] != '\n')
      next++;
    if (n > KEY_MAX)
      r = np_error_set (err, NP_EXIT_USAGE, "--keys-from-stdin: a line is too long to be "
                        "a key");
    else if (n > 0)
      r = add (ks, NULL, 0, buf + at, n, err);
    at = next + 1;
  }
  if (r == 0 && ks->n == before)
    r = np_error_set (err, NP_EXIT_USAGE, "--keys-from-stdin: no key on standard input");
  memset (buf, 0, cap + 1);
  free (buf);
  return r;
}

size_t
keystore_find (const struct keystore *ks, const char *device, const char **keys, size_t max)
{
  size_t n = 0;

  for (size_t i = 0; i < ks->n && n < max; i++)
    if (ks->v[i].device && strcmp (ks->v[i].device, device) == 0)
      keys[n++] = ks->v[i].key;
  if (n)
    return n;
  for (size_t i = 0; i < ks->n && n < max; i++)
    if (ks->v[i].device == NULL)
      keys[n++] = ks->v[i].key;
  return n;
}

void
keystore_scrub (const struct keystore *ks, struct np_error *err)
{
  for (size_t i = 0; ks && i < ks->n; i++) {
    const char *k = ks->v[i].key, *from = err->msg, *at;
    size_t kl = strlen (k), used = 0;
    char out[sizeof err->msg];

    if (kl == 0 || strstr (err->msg, k) == NULL)
      continue;
    while ((at = strstr (from, k)) != NULL) {
      used += (size_t) snprintf (out + used, sizeof out - used, "%.*s***",
                                 (int) (at - from), from);
      if (used >= sizeof out)
        break;
      from = at + kl;
    }
    if (used < sizeof out)
      snprintf (out + used, sizeof out - used, "%s", from);
    memcpy (err->msg, out, sizeof out);
    memset (out, 0, sizeof out);
  }
}

void
keystore_free (struct keystore *ks)
{
  for (size_t i = 0; i < ks->n; i++) {
    free (ks->v[i].device);
    if (ks->v[i].key)
      memset (ks->v[i].key, 0, strlen (ks->v[i].key));
    free (ks->v[i].key);
  }
  free (ks->v);
  ks->v = NULL;
  ks->n = 0;
}
