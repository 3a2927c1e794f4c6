/* libFuzzer target: the option parser, fed argument vectors (the input
 * split at NUL bytes).  main.c is included with its main() renamed so
 * that its static parse_options can be called directly.  Run it with
 * -close_fd_mask=3: usage errors print. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define main netvsc_patch_main
#include "../../src/main.c"
#undef main

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *buf = malloc (size + 1);
  char *argv[66];
  int argc = 0;
  struct options o;

  if (buf == NULL)
    return 0;
  /* --keys-from-stdin reads standard input: give it nothing, never a
   * terminal to wait on */
  {
    int fd = open ("/dev/null", O_RDONLY);
    if (fd > 0) {
      dup2 (fd, 0);
      close (fd);
    }
  }
  memcpy (buf, data, size);
  buf[size] = '\0';
  argv[argc++] = "netvsc-patch";
  for (char *p = buf; p < buf + size && argc < 64; p += strlen (p) + 1)
    argv[argc++] = p;
  argv[argc] = NULL;

  optind = 0;                   /* full getopt reinitialisation (glibc) */
  int r = parse_options (argc, argv, &o);
  if (r != -1 && r != NP_EXIT_OK && r != NP_EXIT_USAGE)
    abort ();
  if (r == -1) {
    /* accepted: the request must be coherent */
    if (o.mode != RUN_LIST && o.request.n == 0)
      abort ();
    if (!o.hive && o.n_images == 0)
      abort ();
  }
  keystore_free (&o.keys);
  free (buf);
  return 0;
}
