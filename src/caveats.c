/* netvsc-patch: what a run cannot carry or check (caveats.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "caveats.h"
#include "options.h"

uint32_t
caveat_host_max_kb (const char *name)
{
  if (strcasecmp (name, VALUE_RECEIVE) == 0)
    return CAVEAT_HOST_MAX_RECEIVE_KB;
  if (strcasecmp (name, VALUE_SEND) == 0)
    return CAVEAT_HOST_MAX_SEND_KB;
  return 0;
}

const char *
caveat_kind_name (enum caveat_kind k)
{
  return k == CAVEAT_CLONES ? "clones" : "host-limit";
}

const char *
caveat_severity (enum caveat_kind k)
{
  return k == CAVEAT_CLONES ? "note" : "warning";
}

static int
is_netvsc (const struct adapter *a)
{
  static const struct match_spec netvsc = { MATCH_NETVSC, NULL };
  return match_adapter (&netvsc, a);
}

static struct caveat *
add (struct caveats *c, enum caveat_kind kind)
{
  if (c->n == CAVEATS_MAX)
    return NULL;
  c->v[c->n].kind = kind;
  return &c->v[c->n++];
}

/* One warning per keyword (the same value goes to every adapter and
 * control set): is NAME already warned about? */
static int
warned (const struct caveats *c, const char *name)
{
  for (size_t i = 0; i < c->n; i++)
    if (c->v[i].kind == CAVEAT_HOST_LIMIT && strncasecmp (c->v[i].text, name, strlen (name)) == 0 &&
        c->v[i].text[strlen (name)] == ' ')
      return 1;
  return 0;
}

static void
host_limit (struct caveats *c, const char *name, uint32_t kb, int described)
{
  uint32_t max = caveat_host_max_kb (name);
  struct caveat *v;

  if (max == 0 || kb <= max || warned (c, name) || (v = add (c, CAVEAT_HOST_LIMIT)) == NULL)
    return;
  snprintf (v->text, sizeof v->text,
            "%s %u KB is above %u KB (%u MB), the largest %s buffer Hyper-V hosts accept "
            "(Linux netvsc's limit), and %s: it is written as asked",
            strcasecmp (name, VALUE_RECEIVE) == 0 ? VALUE_RECEIVE : VALUE_SEND, kb, max,
            max / 1024, strcasecmp (name, VALUE_RECEIVE) == 0 ? "receive" : "send",
            described ? "the driver's Ndi\\Params allows it" : "the driver's Ndi\\Params "
            "sets no bound");
}

void
caveats_of (const struct options *o, const struct outcome *out, struct caveats *c)
{
  int netvsc = 0, deferring;

  c->n = 0;
  if (out->status == ST_ERROR || out->status == ST_REFUSED || out->status == ST_INVALID ||
      out->status == ST_RECOVERED || o->replay_only)
    return;

  /* Buffer sizes above the host's limit that nothing refused (the
   * driver's Ndi\Params may not describe them, or allow more: the
   * fixtures' 256..65536 does), going to a Hyper-V adapter. */
  if (out->have_plan)
    for (size_t i = 0; i < out->plan.n_changes; i++) {
      const struct change *ch = &out->plan.changes[i];
      if (ch->want->remove || !ch->want->is_size ||
          !is_netvsc (&out->plan.adapters.v[ch->adapter]))
        continue;
      host_limit (c, ch->want->name, ch->want->kb, ch->param != NULL);
    }
  /* --defer's action writes the same values at boot, where nothing
   * checks them either (it matches Hyper-V adapters by default). */
  deferring = out->is_image && o->defer && !o->remove && o->match.kind == MATCH_NETVSC;
  if (deferring)
    for (size_t i = 0; i < o->request.n; i++)
      if (o->request.v[i].is_size && !o->request.v[i].remove)
        host_limit (c, o->request.v[i].name, o->request.v[i].kb, 0);

  /* Values put offline into an image's existing Hyper-V adapter, with
   * nothing to carry them to a clone's new one. */
  if (!out->is_image || !out->have_plan || o->defer || o->remove ||
      out->status == ST_NO_ADAPTER || out->status == ST_DEFERRED)
    return;
  for (size_t i = 0; i < out->plan.adapters.n && !netvsc; i++)
    netvsc = is_netvsc (&out->plan.adapters.v[i]) &&
      (out->status == ST_LISTED || out->plan.adapters.v[i].matched);
  if (netvsc) {
    struct caveat *v = add (c, CAVEAT_CLONES);
    if (v)
      snprintf (v->text, sizeof v->text,
                "values set offline stay with the Hyper-V adapter%s above; a VM created from "
                "a copy of this disk gets a new one (new GUID and class key) without them: "
                "for templates, use --defer", out->status == ST_LISTED ? "s" : "(s)");
  }
}
