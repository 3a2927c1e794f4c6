/* netvsc-patch: text and JSON reports. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "report.h"

/* --- text ----------------------------------------------------------- */

/* What a change writes, in the shape of a value read from a hive. */
static struct value_state
new_value (const struct change *c)
{
  return (struct value_state) {
    .present = 1, .type = c->type, .is_dword = c->type == hive_t_REG_DWORD,
    .dword = c->dword, .text = c->text,
  };
}

/* Buffer sizes are KB; other DWORDs are plain numbers. */
static void
describe_value (FILE *fp, const struct value_state *vs, int is_size)
{
  if (!vs->present)
    fputs ("(not set)", fp);
  else if (vs->is_dword)
    fprintf (fp, "0x%" PRIx32 " (%" PRIu32 "%s)", vs->dword, vs->dword, is_size ? " KB" : "");
  else if (vs->type == hive_t_REG_SZ || vs->type == hive_t_REG_EXPAND_SZ)
    fprintf (fp, "%s \"%s\"", hive_type_name (vs->type), vs->text);
  else
    fprintf (fp, "%s %s", hive_type_name (vs->type), vs->text);
}

static const char *
id_of (const struct adapter *a)
{
  return a->matching_id ? a->matching_id : a->component_id ? a->component_id : "-";
}

/* The advanced keywords the driver describes, as the Advanced page
 * would show them. */
static void
text_advanced (FILE *fp, const struct adapter *a)
{
  if (a->n_advanced == 0)
    return;
  fprintf (fp, "\n  %s\\...\\%s  %s: advanced properties\n", a->control_set, a->index,
           a->desc ? a->desc : "?");
  fprintf (fp, "    %-26s %-12s %-10s %s\n", "KEYWORD", "VALUE", "DEFAULT", "ALLOWED");
  for (size_t i = 0; i < a->n_advanced; i++) {
    const struct ndi_param *p = &a->advanced[i];
    const struct value_state *now = &a->advanced_now[i];
    char allowed[512], value[64];
    ndi_describe_allowed (p, allowed, sizeof allowed);
    if (!now->present)
      snprintf (value, sizeof value, "-");
    else if (now->is_dword)
      snprintf (value, sizeof value, "%" PRIu32 " (dword)", now->dword);
    else
      snprintf (value, sizeof value, "%s", now->text[0] ? now->text : "\"\"");
    fprintf (fp, "    %-26s %-12s %-10s %s\n", p->keyword, value,
             !p->default_value ? "-" : p->default_value[0] ? p->default_value : "\"\"",
             allowed);
  }
}

static void
text_list (FILE *fp, const struct outcome *out)
{
  const struct adapter_list *l = &out->plan.adapters;

  if (l->n == 0) {
    fputs ("  (no network class instances)\n", fp);
    return;
  }
  fprintf (fp, "  %-13s  %-5s  %-5s  %-12s  %-12s  %s\n", "CONTROL SET", "INDEX",
           "MATCH", "RECEIVE", "SEND", "DESCRIPTION [DEVICE ID]");
  for (size_t i = 0; i < l->n; i++) {
    const struct adapter *a = &l->v[i];
    char rx[32], tx[32];
    snprintf (rx, sizeof rx, "%s", !a->receive.present ? "-" : a->receive.text);
    snprintf (tx, sizeof tx, "%s", !a->send.present ? "-" : a->send.text);
    fprintf (fp, "  %-13s  %-5s  %-5s  %-12s  %-12s  %s [%s]\n", a->control_set, a->index,
             a->matched ? "yes" : "no", rx, tx, a->desc ? a->desc : "?", id_of (a));
  }
  for (size_t i = 0; i < l->n; i++)
    text_advanced (fp, &l->v[i]);
}

static void
text_changes (FILE *fp, const struct options *o, const struct outcome *out)
{
  size_t last = (size_t) -1;

  for (size_t i = 0; i < out->plan.n_changes; i++) {
    const struct change *c = &out->plan.changes[i];
    const struct adapter *a = &out->plan.adapters.v[c->adapter];
    if (c->adapter != last) {
      fprintf (fp, "  %s\\Control\\Class\\{4d36e972-...}\\%s  %s\n", a->control_set,
               a->index, a->desc ? a->desc : "?");
      last = c->adapter;
    }
    fprintf (fp, "    %-18s ", c->want->name);
    describe_value (fp, c->old, c->want->is_size);
    switch (c->action) {
    case CHANGE_KEEP:
      fputs ("  unchanged\n", fp);
      break;
    case CHANGE_DELETE:
      fputs (" -> (removed)\n", fp);
      break;
    default: {
      struct value_state nv = new_value (c);
      fputs (" -> ", fp);
      describe_value (fp, &nv, c->want->is_size);
      if (c->action == CHANGE_RETYPE)
        fprintf (fp, "  [type replaced by %s]", hive_type_name (c->type));
      if (c->refusal)
        fprintf (fp, "  [%s: %s]", o->request.force ? "forced" : "refused", c->refusal);
      fputc ('\n', fp);
    }
    }
  }
}

/* What became of the boot-time action, in the tense of the run. */
static void
text_defer (FILE *fp, const struct options *o, const struct outcome *out)
{
  int real = o->mode == RUN_PATCH;
  const char *what;

  switch (out->defer) {
  case DEFER_INSTALLED: what = real ? "installed" : "would be installed"; break;
  case DEFER_UPDATED: what = real ? "updated with these values" : "would be updated"; break;
  case DEFER_IN_PLACE: what = "already installed with these values"; break;
  case DEFER_REMOVED: what = real ? "removed" : "would be removed"; break;
  default: return;              /* none, or --remove found none: nothing to say */
  }
  if (out->status == ST_ERROR || out->status == ST_REFUSED)
    return;                     /* planned, but the run stopped: see the error */
  fprintf (fp, "  boot-time action %s: %s\n", what, DEFER_SCRIPT_WIN);
  if (out->defer != DEFER_REMOVED)
    fprintf (fp, "  (a machine startup script of the local Group Policy: at every boot, "
             "as SYSTEM, it sets the values on matching adapters that lack them and "
             "restarts those; log: %s)\n", DEFER_LOG_WIN);
}

static const char *
headline (const struct outcome *out)
{
  switch (out->status) {
  case ST_PATCHED: return "patched";
  case ST_UNCHANGED: return "unchanged: the values are already set";
  case ST_WOULD_PATCH: return "would patch (dry run, nothing written)";
  case ST_CHECK_DIFFERS: return "check: values differ from the request";
  case ST_LISTED: return "network adapters";
  case ST_RECOVERED: return "recovered from the transaction logs";
  case ST_NO_ADAPTER: return "no matching adapter; found";
  case ST_DEFERRED: return "no matching adapter yet; the boot-time action will set the "
                           "values when Windows creates it";
  case ST_INVALID: return "refused: the driver does not allow a value, nothing written";
  default: return outcome_status_name (out->status);
  }
}

void
report_outcome (FILE *fp, const struct options *o, const struct outcome *out)
{
  report_outcome_to (fp, stderr, o, out);
}

void
report_outcome_to (FILE *fp, FILE *errfp, const struct options *o, const struct outcome *out)
{
  if (out->status == ST_ERROR || out->status == ST_REFUSED ||
      out->status == ST_NO_ADAPTER || out->status == ST_INVALID)
    fprintf (errfp, "netvsc-patch: %s\n", out->message);
  if (o->json) {
    report_json (fp, o, out);
    return;
  }
  if (o->quiet || !out->have_plan)
    return;

  fprintf (fp, "%s", out->target);
  if (out->is_image)
    fprintf (fp, " (%s, %s %s)", out->format, out->root, out->hive_path);
  fprintf (fp, ": %s", headline (out));
  if (out->status != ST_LISTED && out->status != ST_NO_ADAPTER && out->status != ST_DEFERRED &&
      out->status != ST_RECOVERED && !o->replay_only)
    fprintf (fp, ", %zu adapter%s matched", out->plan.n_matched,
             out->plan.n_matched == 1 ? "" : "s");
  fputc ('\n', fp);
  if (out->replayed) {
    char line[768];
    replay_describe (&out->replay, line, sizeof line);
    fprintf (fp, "  the hive was dirty: %s\n", line);
    if (out->logs_reset)
      fprintf (fp, "  emptied %d transaction log%s, which Windows must not replay over "
               "the patched hive\n", out->logs_reset, out->logs_reset == 1 ? "" : "s");
  }
  if (o->replay_only) {
    if (out->written_to)
      fprintf (fp, "  written to %s\n", out->written_to);
    return;
  }
  if (out->status == ST_LISTED || out->status == ST_NO_ADAPTER ||
      (out->status == ST_DEFERRED && out->plan.n_matched == 0))
    text_list (fp, out);
  else
    text_changes (fp, o, out);
  text_defer (fp, o, out);
  if (out->written_to && out->status == ST_PATCHED && o->output)
    fprintf (fp, "  written to %s\n", out->written_to);
  if (out->backup[0])
    fprintf (fp, "  original saved as %s\n", out->backup);
}

/* --- JSON ----------------------------------------------------------- */

static void
json_string (FILE *fp, const char *s)
{
  if (s == NULL) {
    fputs ("null", fp);
    return;
  }
  fputc ('"', fp);
  for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
    switch (*p) {
    case '"': fputs ("\\\"", fp); break;
    case '\\': fputs ("\\\\", fp); break;
    case '\n': fputs ("\\n", fp); break;
    case '\r': fputs ("\\r", fp); break;
    case '\t': fputs ("\\t", fp); break;
    default:
      if (*p < 0x20)
        fprintf (fp, "\\u%04x", *p);
      else
        fputc (*p, fp);
    }
  }
  fputc ('"', fp);
}

/* A value; a buffer size's DWORD is "kb", any other DWORD "dword". */
static void
json_value (FILE *fp, const struct value_state *vs, int is_size)
{
  if (!vs->present) {
    fputs ("null", fp);
    return;
  }
  fputs ("{\"type\":", fp);
  json_string (fp, hive_type_name (vs->type));
  if (vs->is_dword)
    fprintf (fp, ",\"%s\":%" PRIu32, is_size ? "kb" : "dword", vs->dword);
  else {
    fputs (",\"text\":", fp);
    json_string (fp, vs->text);
  }
  fputc ('}', fp);
}

static void
json_param (FILE *fp, const struct ndi_param *p, const struct value_state *now)
{
  fputs ("{\"keyword\":", fp);
  json_string (fp, p->keyword);
  fputs (",\"description\":", fp);
  json_string (fp, p->desc);
  fputs (",\"type\":", fp);
  json_string (fp, p->type_name);
  fputs (",\"value\":", fp);
  json_value (fp, now, 0);
  fputs (",\"default\":", fp);
  json_string (fp, p->default_value);
  if (ndi_is_numeric (p)) {
    if (p->has_min)
      fprintf (fp, ",\"min\":%lld", p->min);
    if (p->has_max)
      fprintf (fp, ",\"max\":%lld", p->max);
    if (p->has_step)
      fprintf (fp, ",\"step\":%lld", p->step);
    fprintf (fp, ",\"base\":%d", p->base);
  }
  if (p->type == NDI_EDIT && p->limit_text)
    fprintf (fp, ",\"limit_text\":%ld", p->limit_text);
  if (p->type == NDI_ENUM) {
    fputs (",\"choices\":[", fp);
    for (size_t i = 0; i < p->n_choices; i++) {
      fputs (i ? ",{\"value\":" : "{\"value\":", fp);
      json_string (fp, p->choices[i].value);
      fputs (",\"description\":", fp);
      json_string (fp, p->choices[i].desc);
      fputc ('}', fp);
    }
    fputc (']', fp);
  }
  fputc ('}', fp);
}

static void
json_adapter (FILE *fp, const struct outcome *out, size_t idx)
{
  const struct adapter *a = &out->plan.adapters.v[idx];
  int first = 1;

  fputs ("{\"control_set\":", fp);
  json_string (fp, a->control_set);
  fputs (",\"index\":", fp);
  json_string (fp, a->index);
  fputs (",\"description\":", fp);
  json_string (fp, a->desc);
  fputs (",\"matching_device_id\":", fp);
  json_string (fp, a->matching_id);
  fputs (",\"component_id\":", fp);
  json_string (fp, a->component_id);
  fputs (",\"service\":", fp);
  json_string (fp, a->service);
  fprintf (fp, ",\"matched\":%s", a->matched ? "true" : "false");
  fputs (",\"receive_buffer\":", fp);
  json_value (fp, &a->receive, 1);
  fputs (",\"send_buffer\":", fp);
  json_value (fp, &a->send, 1);
  if (a->n_advanced) {
    fputs (",\"advanced\":[", fp);
    for (size_t i = 0; i < a->n_advanced; i++) {
      if (i)
        fputc (',', fp);
      json_param (fp, &a->advanced[i], &a->advanced_now[i]);
    }
    fputc (']', fp);
  }
  if (a->matched) {
    fputs (",\"changes\":[", fp);
    for (size_t i = 0; i < out->plan.n_changes; i++) {
      const struct change *c = &out->plan.changes[i];
      if (c->adapter != idx)
        continue;
      if (!first)
        fputc (',', fp);
      first = 0;
      fputs ("{\"name\":", fp);
      json_string (fp, c->want->name);
      fputs (",\"action\":", fp);
      json_string (fp, change_action_name (c->action));
      fputs (",\"old\":", fp);
      json_value (fp, c->old, c->want->is_size);
      fputs (",\"new\":", fp);
      if (c->want->remove)
        fputs ("null", fp);
      else {
        struct value_state nv = new_value (c);
        json_value (fp, &nv, c->want->is_size);
      }
      fputs (",\"refused\":", fp);
      json_string (fp, c->refusal);
      fputc ('}', fp);
    }
    fputc (']', fp);
  }
  fputc ('}', fp);
}

void
report_json (FILE *fp, const struct options *o, const struct outcome *out)
{
  (void) o;
  fputs ("{\"target\":", fp);
  json_string (fp, out->target);
  fprintf (fp, ",\"mode\":\"%s\"", out->is_image ? "image" : "hive");
  if (out->is_image) {
    fputs (",\"format\":", fp);
    json_string (fp, out->format);
    fputs (",\"root\":", fp);
    json_string (fp, out->root[0] ? out->root : NULL);
    fputs (",\"hive\":", fp);
    json_string (fp, out->hive_path[0] ? out->hive_path : NULL);
  }
  fputs (",\"status\":", fp);
  json_string (fp, outcome_status_name (out->status));
  fprintf (fp, ",\"exit_code\":%d", out->exit_code);
  fputs (",\"error\":", fp);
  json_string (fp, out->message[0] ? out->message : NULL);
  fputs (",\"control_sets\":[", fp);
  for (size_t i = 0; i < out->cs.n; i++) {
    fputs (i ? ",{\"name\":" : "{\"name\":", fp);
    json_string (fp, out->cs.v[i].name);
    fputs (",\"selected_as\":", fp);
    json_string (fp, out->cs.v[i].why);
    fputc ('}', fp);
  }
  fputc (']', fp);
  if (out->have_plan) {
    fprintf (fp, ",\"matched\":%zu,\"writes\":%zu,\"written\":%s", out->plan.n_matched,
             out->plan.n_writes, out->status == ST_PATCHED ? "true" : "false");
    fputs (",\"adapters\":[", fp);
    for (size_t i = 0; i < out->plan.adapters.n; i++) {
      if (i)
        fputc (',', fp);
      json_adapter (fp, out, i);
    }
    fputc (']', fp);
  }
  if (out->replayed) {
    fprintf (fp, ",\"replay\":{\"format\":\"%s\",\"entries\":%u,\"pages\":%u,"
             "\"sequence_from\":%u,\"sequence_to\":%u,\"from\":",
             out->replay.log_format == REPLAY_FORMAT_NEW ? "new" : "old",
             out->replay.entries, out->replay.pages, out->replay.seq_from,
             out->replay.seq_to);
    json_string (fp, out->replay.from);
    fputs (",\"stopped\":", fp);
    json_string (fp, out->replay.stopped);
    fprintf (fp, ",\"logs_emptied\":%d}", out->logs_reset);
  }
  else
    fputs (",\"replay\":null", fp);
  fputs (",\"defer\":", fp);
  if (out->is_image && out->defer != DEFER_NONE) {
    fputs ("{\"action\":", fp);
    json_string (fp, defer_result_name (out->defer));
    fputs (",\"script\":", fp);
    json_string (fp, DEFER_SCRIPT_WIN);
    fputs (",\"log\":", fp);
    json_string (fp, DEFER_LOG_WIN);
    fputc ('}', fp);
  }
  else
    fputs ("null", fp);
  fputs (",\"output\":", fp);
  json_string (fp, out->written_to);
  fputs (",\"backup\":", fp);
  json_string (fp, out->backup[0] ? out->backup : NULL);
  fputs ("}\n", fp);
}
