/* A main() for the libFuzzer targets without libFuzzer: each argument
 * is an input file, run once through LLVMFuzzerTestOneInput.  make
 * check builds every target this way with gcc and the sanitizers, so
 * the targets cannot rot without clang, and replays the kept inputs in
 * testdata/fuzz/ through the very entry points the fuzzer used. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int
run_file (const char *path)
{
  FILE *fp = fopen (path, "rb");
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0, n;

  if (fp == NULL) {
    perror (path);
    return -1;
  }
  do {
    if (len == cap) {
      uint8_t *nb = realloc (buf, cap = cap ? cap * 2 : 65536);
      if (nb == NULL) {
        fclose (fp);
        free (buf);
        return -1;
      }
      buf = nb;
    }
    n = fread (buf + len, 1, cap - len, fp);
    len += n;
  } while (n > 0);
  fclose (fp);
  LLVMFuzzerTestOneInput (buf, len);
  free (buf);
  return 0;
}

int
main (int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    if (run_file (argv[i]) == -1)
      return 2;
  return 0;
}
