/* netvsc-patch: building the plan. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plan.h"

int
request_is_buffer_size (const char *name)
{
  return strcasecmp (name, VALUE_RECEIVE) == 0 || strcasecmp (name, VALUE_SEND) == 0;
}

/* A --set value as a REG_DWORD: decimal, or hexadecimal with 0x; a
 * negative number is stored as its 32-bit two's complement, as reg.exe
 * and the Advanced page store signed "int" parameters. */
int
request_text_to_dword (const char *text, uint32_t *out)
{
  char *end;
  long long v;

  if (text == NULL || *text == '\0' || *text == ' ' || *text == '+')
    return -1;
  errno = 0;
  v = strtoll (text, &end, 0);
  if (errno || *end || v < INT32_MIN || v > (long long) UINT32_MAX ||
      (text[0] == '0' && text[1] != '\0' && text[1] != 'x' && text[1] != 'X'))
    return -1;                  /* no octal: "010" is ambiguous */
  *out = (uint32_t) v;
  return 0;
}

/* Which type to write: --type, else REG_DWORD for the buffer sizes,
 * else the type the value already has (the driver's installer chose
 * it), else REG_SZ as Windows' Advanced page writes. */
static hive_type
choose_type (const struct request_value *want, const struct value_state *old)
{
  uint32_t ignored;

  switch (want->type) {
  case WANT_DWORD: return hive_t_REG_DWORD;
  case WANT_SZ: return hive_t_REG_SZ;
  case WANT_AUTO: break;
  }
  if (want->is_size)
    return hive_t_REG_DWORD;
  if (old->present && old->is_dword && request_text_to_dword (want->text, &ignored) == 0)
    return hive_t_REG_DWORD;
  return hive_t_REG_SZ;
}

/* The new data, and the text Ndi\Params rules are checked against
 * (numbers as the driver writes them: decimal, or hex with Base 16). */
static int
resolve (struct change *c, const struct adapter_value *av)
{
  const struct request_value *w = c->want;
  int hex = av && av->described && av->param.base == 16;

  c->type = choose_type (w, c->old);
  if (w->is_size)
    c->dword = w->kb;
  else if (c->type == hive_t_REG_DWORD && request_text_to_dword (w->text, &c->dword) == -1) {
    errno = EINVAL;             /* main() refuses this before any hive is opened */
    return -1;
  }
  if (w->is_size || c->type == hive_t_REG_DWORD) {
    if (asprintf (&c->text, hex ? "%" PRIx32 : "%" PRIu32, c->dword) == -1)
      c->text = NULL;
    /* A signed "int" parameter checks the number, not its bits. */
    if (!hex && c->text && !w->is_size && w->text && w->text[0] == '-') {
      free (c->text);
      c->text = strdup (w->text);
    }
  }
  else if (hex && ndi_is_numeric (&av->param) && strncasecmp (w->text, "0x", 2) == 0)
    c->text = strdup (w->text + 2);     /* NDIS reads Base 16 text without a prefix */
  else
    c->text = strdup (w->text);
  return c->text ? 0 : -1;
}

static enum change_action
decide (const struct change *c)
{
  const struct value_state *old = c->old;

  if (c->want->remove)
    return old->present ? CHANGE_DELETE : CHANGE_KEEP;
  if (!old->present)
    return CHANGE_ADD;
  if (c->type == hive_t_REG_DWORD) {
    if (!old->is_dword)
      return CHANGE_RETYPE;
    return old->dword == c->dword ? CHANGE_KEEP : CHANGE_UPDATE;
  }
  if (old->type != hive_t_REG_SZ)
    return CHANGE_RETYPE;
  return strcmp (old->text, c->text) == 0 ? CHANGE_KEEP : CHANGE_UPDATE;
}

static int
plan_change (struct change *c, const struct adapter_value *av)
{
  char why[512];

  c->old = &av->now;
  c->param = av->described ? &av->param : NULL;
  if (!c->want->remove && resolve (c, av) == -1)
    return -1;
  c->action = decide (c);
  /* A value already in place is never refused: nothing is written. */
  if (c->param && !c->want->remove && c->action != CHANGE_KEEP &&
      ndi_check (c->param, c->text, why, sizeof why) == -1) {
    c->refusal = strdup (why);
    if (c->refusal == NULL)
      return -1;
  }
  return 0;
}

int
plan_build (struct plan *p, struct adapter_list *adapters,
            const struct request *req)
{
  memset (p, 0, sizeof *p);
  p->adapters = *adapters;
  adapters->v = NULL;
  adapters->n = 0;

  for (size_t i = 0; i < p->adapters.n; i++)
    if (p->adapters.v[i].matched)
      p->n_matched++;
  if (p->n_matched == 0 || req->n == 0)
    return 0;

  p->changes = calloc (p->n_matched * req->n, sizeof *p->changes);
  if (p->changes == NULL)
    return -1;
  for (size_t i = 0; i < p->adapters.n; i++) {
    const struct adapter *a = &p->adapters.v[i];
    if (!a->matched)
      continue;
    for (size_t j = 0; j < req->n; j++) {
      struct change *c = &p->changes[p->n_changes++];
      c->adapter = i;
      c->want = &req->v[j];
      if (plan_change (c, &a->values[j]) == -1)
        return -1;
      if (c->refusal)
        p->n_refused++;
      if (c->action != CHANGE_KEEP)
        p->n_writes++;
    }
  }
  p->forced = p->n_refused && req->force;
  return 0;
}

void
plan_free (struct plan *p)
{
  adapters_free (&p->adapters);
  for (size_t i = 0; i < p->n_changes; i++) {
    free (p->changes[i].text);
    free (p->changes[i].refusal);
  }
  free (p->changes);
  p->changes = NULL;
  p->n_changes = p->n_writes = p->n_matched = p->n_refused = 0;
}

const char *
change_action_name (enum change_action a)
{
  switch (a) {
  case CHANGE_ADD: return "add";
  case CHANGE_UPDATE: return "update";
  case CHANGE_RETYPE: return "retype";
  case CHANGE_DELETE: return "delete";
  case CHANGE_KEEP: return "unchanged";
  }
  return "?";
}

int
plan_first_write_to_key (const struct plan *p, size_t i)
{
  if (p->changes[i].action == CHANGE_KEEP)
    return 0;
  for (size_t j = 0; j < i; j++)
    if (p->changes[j].action != CHANGE_KEEP && p->changes[j].adapter == p->changes[i].adapter)
      return 0;
  return 1;
}
