/* libFuzzer target: hive mode on arbitrary bytes.  The input is written
 * to a file and taken through the same steps as `netvsc-patch --hive`:
 * base block check, open, control sets, adapters, plan, apply to a new
 * file, verify.  Nothing may crash; errors are fine. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply.h"
#include "plan.h"

static void
one_pass (const char *path, const char *out, enum cs_mode mode)
{
  struct base_block bb;
  struct hive hv = { NULL, path, NULL };
  struct control_sets cs = { NULL, 0 };
  struct adapter_list al;
  struct plan p;
  struct np_error err;
  struct cs_request req = { mode, 1 };
  struct match_spec m = { MATCH_NETVSC, NULL };
  /* what `-r 2M -s 4M --set *JumboPacket=9014` asks for */
  struct request rq = { .v = { { .name = VALUE_RECEIVE, .text = "2048", .is_size = 1, .kb = 2048 },
                               { .name = VALUE_SEND, .text = "4096", .is_size = 1, .kb = 4096 },
                               { .name = "*JumboPacket", .text = "9014" } },
                        .n = 3 };
  struct hive_census before;

  if (hive_read_base_block (path, &bb, &err) == -1 || base_block_is_dirty (&bb))
    return;
  if (hive_open (&hv, path, 1, &err) == -1)
    return;
  if (hive_control_sets (&hv, &req, &cs, &err) == 0 &&
      adapters_enumerate (&hv, &cs, &m, &rq, 1, &al, &err) == 0) {
    if (plan_build (&p, &al, &rq) == 0) {
      if (p.n_writes > 0 && hive_census_take (&hv, &p, &before, &err) == 0) {
        if (apply_plan (&hv, &p, out, &err) == 0)
          verify_written (out, &p, &before, &err);
        hive_census_free (&before);
      }
      plan_free (&p);
    }
    else
      adapters_free (&al);
  }
  control_sets_free (&cs);
  hive_close (&hv);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char path[] = "/tmp/netvsc-fuzz-hive.XXXXXX";
  char out[] = "/tmp/netvsc-fuzz-out.XXXXXX";
  int fd = mkstemp (path), fo = mkstemp (out);

  if (fd == -1 || fo == -1)
    abort ();
  close (fo);
  if (write (fd, data, size) != (ssize_t) size)
    abort ();
  close (fd);
  one_pass (path, out, CS_SELECTED);
  one_pass (path, out, CS_ALL);
  unlink (path);
  unlink (out);
  return 0;
}
