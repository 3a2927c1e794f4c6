/* libFuzzer target: the parsers of what other files an image names
 * (layers.c) over arbitrary bytes, as each format and as a VMDK extent.
 * They must never crash, read out of bounds or loop, and every name
 * they return must be NUL-terminated within its buffer; -1 comes with a
 * reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const char *const formats[] = { "qcow2", "vmdk", "vpc", "vhdx", "qed", "vdi", "raw" };
  struct layer_names *out = malloc (sizeof *out);
  struct layers_src src;
  struct layers_mem m;
  char why[256];

  if (out == NULL)
    return 0;
  layers_mem_src (&src, &m, data, size);
  for (size_t f = 0; f < sizeof formats / sizeof *formats; f++)
    for (int as_extent = 0; as_extent <= 1; as_extent++) {
      int r = layers_parse (formats[f], as_extent, &src, out, why, sizeof why);
      if (r == -1 && why[0] == '\0')
        abort ();
      if (r == 0) {
        if (out->n > LAYERS_NAMES_MAX)
          abort ();
        for (size_t i = 0; i < out->n; i++)
          if (strnlen (out->v[i].name, sizeof out->v[i].name) == sizeof out->v[i].name ||
              strnlen (out->v[i].format, sizeof out->v[i].format) == sizeof out->v[i].format)
            abort ();
      }
    }
  free (out);
  return 0;
}
