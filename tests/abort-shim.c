/* An LD_PRELOAD shim for the containment tests (t-contain, t-json): a
 * parser that aborts, on demand.  hivex_node_set_value aborts, as
 * libhivex's own assertions do, when the key it is asked to change
 * holds a value named NetvscPatchTestAbort; otherwise it is hivex's.
 * (The crafted hive libhivex really aborted on, a value listed twice,
 * is refused before hivex writes since hive_values_rewritable; this
 * keeps the containment itself tested, in every mode, on hives marked
 * for it.) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <hivex.h>
#include <stdio.h>
#include <stdlib.h>

int
hivex_node_set_value (hive_h *h, hive_node_h node, const hive_set_value *val, int flags)
{
  int (*real) (hive_h *, hive_node_h, const hive_set_value *, int) =
    (int (*) (hive_h *, hive_node_h, const hive_set_value *, int))
    dlsym (RTLD_NEXT, "hivex_node_set_value");

  if (hivex_node_get_value (h, node, "NetvscPatchTestAbort") != 0) {
    fputs ("abort-shim.c: hivex_node_set_value: injected abort\n", stderr);
    abort ();
  }
  return real (h, node, val, flags);
}
