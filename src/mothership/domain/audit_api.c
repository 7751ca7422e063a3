/* domain/audit_api.c — GET /mothership/api/v1/audit_events (issue 4 item 8; the reference has
 * no audit query, spec §10.2). Reads the caller's account's events only, filtered by
 *   type          exact event type (1..128 bytes)
 *   severity      info | warn | critical
 *   directive_id, territory_id   UUIDs
 *   since, until  RFC 3339 times: created_at in [since, until)
 *   order         desc (default, newest first) | asc
 *   limit         1..200 (default 50)
 *   cursor        the id of the last event of the previous page
 * and answers {"audit_events":[...], "next_cursor": id | null}. A filter that does not parse
 * is a 422 naming it; an id of another account simply matches nothing. */
#include "domain/handlers.h"

#include <string.h>

#include "core/clock.h"
#include "core/str.h"
#include "core/uuid.h"
#include "domain/api.h"
#include "domain/auth.h"

#define AUDIT_PAGE_DEFAULT 50
#define AUDIT_PAGE_MAX 200
#define AUDIT_TYPE_MAX 128

static json_t *id_or_null(const char *id)
{
        return id[0] ? json_string(id) : json_null();
}

static json_t *audit_json(const ms_audit_event *e)
{
        return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:O, s:O, s:o}", "id", e->id,
                         "account_id", e->account_id, "event_type",
                         e->event_type ? e->event_type : "", "severity",
                         e->severity ? e->severity : "info", "directive_id",
                         id_or_null(e->directive_id), "command_id", id_or_null(e->command_id),
                         "actor_id", id_or_null(e->actor_id), "territory_id",
                         id_or_null(e->territory_id), "payload",
                         e->payload ? e->payload : json_null(), "context",
                         e->context ? e->context : json_null(), "created_at",
                         api_ts(e->created_at));
}

static int bad_filter(ms_http_req *req, const char *what)
{
        return ms_http_respond_error(req, 422, "invalid_param", "%s", what);
}

static int time_filter(ms_http_req *req, const char *name, int64_t *out)
{
        const char *q = ms_http_req_query(req, name);
        if (!q)
                return 0;
        err_t err = ERR_INIT;
        if (rfc3339_parse(q, out, &err) < 0)
                return ms_http_respond_error(req, 422, "invalid_param",
                                             "%s must be an RFC 3339 time: %s", name, err.msg);
        if (*out == 0)
                *out = 1;   /* 0 means "open" in the store filter; the epoch itself is 1 ms off */
        return 0;
}

int ms_h_audit_list(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        ms_user u = { 0 };
        int st = ms_auth_user(app, req, &u);
        if (st)
                return st;
        ms_audit_filter f = { .account_id = u.account_id, .limit = AUDIT_PAGE_DEFAULT,
                              .newest_first = true };
        const char *q;
        if ((q = ms_http_req_query(req, "type"))) {
                if (str_is_blank(q) || strlen(q) > AUDIT_TYPE_MAX) {
                        st = bad_filter(req, "type must be an event type of 1-128 bytes");
                        goto out;
                }
                f.event_type = q;
        }
        if ((q = ms_http_req_query(req, "severity"))) {
                if (strcmp(q, "info") && strcmp(q, "warn") && strcmp(q, "critical")) {
                        st = bad_filter(req, "severity must be info, warn or critical");
                        goto out;
                }
                f.severity = q;
        }
        if ((q = ms_http_req_query(req, "directive_id"))) {
                if (!uuid_is_valid(q)) {
                        st = bad_filter(req, "directive_id must be a UUID");
                        goto out;
                }
                f.directive_id = q;
        }
        if ((q = ms_http_req_query(req, "territory_id"))) {
                if (!uuid_is_valid(q)) {
                        st = bad_filter(req, "territory_id must be a UUID");
                        goto out;
                }
                f.territory_id = q;
        }
        if ((st = time_filter(req, "since", &f.since)) || (st = time_filter(req, "until", &f.until)))
                goto out;
        if ((q = ms_http_req_query(req, "order"))) {
                if (strcmp(q, "asc") && strcmp(q, "desc")) {
                        st = bad_filter(req, "order must be asc or desc");
                        goto out;
                }
                f.newest_first = strcmp(q, "desc") == 0;
        }
        if ((q = ms_http_req_query(req, "limit"))) {
                int64_t n;
                if (str_to_int64(q, 1, AUDIT_PAGE_MAX, &n) < 0) {
                        st = ms_http_respond_error(req, 422, "invalid_limit",
                                                   "limit must be an integer between 1 and %d",
                                                   AUDIT_PAGE_MAX);
                        goto out;
                }
                f.limit = (int)n;
        }
        if ((q = ms_http_req_query(req, "cursor"))) {
                if (!uuid_is_valid(q)) {
                        st = bad_filter(req, "cursor must be an audit event id");
                        goto out;
                }
                f.cursor = q;
        }
        ms_audit_event_array l = { 0 };
        err_t err = ERR_INIT;
        if (ms_audit_event_list(app->store, &f, &l, &err) < 0) {
                st = api_store_error(req, &err);
                goto out;
        }
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < l.n; i++)
                json_array_append_new(arr, audit_json(&l.items[i]));
        json_t *next = l.n == (size_t)f.limit ? json_string(l.items[l.n - 1].id) : json_null();
        ms_audit_event_array_clear(&l);
        st = ms_http_respond_json(req, 200, json_pack("{s:o, s:o}", "audit_events", arr,
                                                      "next_cursor", next));
out:
        ms_user_clear(&u);
        return st;
}
