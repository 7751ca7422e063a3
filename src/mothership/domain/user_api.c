/* domain/user_api.c — the user API under /mothership/api/v1 (spec mothership §3.3.2–§3.3.5),
 * authenticated by a user's API token, every lookup scoped to the caller's account. Also the
 * routes the reference lacks: facilities, enrollment tokens, directive cancel, plain-text log
 * and diff download. */
#include "domain/handlers.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "core/uuid.h"
#include "domain/api.h"
#include "domain/auth.h"
#include "domain/directive_view.h"
#include "proto/fscap.h"
#include "proto/netcap.h"
#include "policy/policy.h"

/* The caller and, for routes under /facilities/{fid}, the facility. */
typedef struct caller {
        ms_user user;
        ms_facility facility;
        ms_directive directive;
} caller;

static void caller_clear(caller *c)
{
        ms_user_clear(&c->user);
        ms_facility_clear(&c->facility);
        ms_directive_clear(&c->directive);
}

static int lookup_facility(ms_app *app, ms_http_req *req, caller *c)
{
        const char *fid = ms_http_req_param(req, "fid");
        err_t err = ERR_INIT;
        if (!fid || !uuid_is_valid(fid) ||
            ms_facility_get(app->store, c->user.account_id, fid, &c->facility, &err) < 0) {
                if (err_is_set(&err) && strcmp(err.code, ERR_NOT_FOUND) != 0)
                        return api_store_error(req, &err);
                return api_not_found(req, "facility");
        }
        return 0;
}

/* Authenticates, then resolves {fid} and (with_directive) {id} inside it. */
static int resolve(ms_app *app, ms_http_req *req, caller *c, bool with_directive)
{
        int st = ms_auth_user(app, req, &c->user);
        if (st)
                return st;
        if (ms_http_req_param(req, "fid") && (st = lookup_facility(app, req, c)))
                return st;
        if (!with_directive)
                return 0;
        const char *id = ms_http_req_param(req, "id");
        err_t err = ERR_INIT;
        if (!id || !uuid_is_valid(id) ||
            ms_directive_get_scoped(app->store, c->user.account_id, c->facility.id, id,
                                    &c->directive, &err) < 0) {
                if (err_is_set(&err) && strcmp(err.code, ERR_NOT_FOUND) != 0)
                        return api_store_error(req, &err);
                return api_not_found(req, "directive");
        }
        return 0;
}

static int validation_failed(ms_http_req *req, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static int validation_failed(ms_http_req *req, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(msg, sizeof(msg), fmt, ap);
        (void)n;
        va_end(ap);
        return ms_http_respond_json(req, 422, json_pack("{s:s, s:s, s:[s]}", "error",
                                                        "validation_failed", "detail", msg,
                                                        "details", msg));
}

/* ---------------------------------------------------------------- facilities --------- */

static json_t *facility_json(const ms_facility *f)
{
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:O, s:o, s:o}", "id", f->id,
                              "territory_id", f->territory_id, "owner_id", f->owner_id, "kind",
                              f->kind, "repo_url",
                              f->repo_url ? json_string(f->repo_url) : json_null(),
                              "locked_by_directive_id",
                              f->locked_by_directive_id[0] ? json_string(f->locked_by_directive_id)
                                                           : json_null(),
                              "retention_policy",
                              f->retention_policy ? f->retention_policy : json_null(),
                              "created_at", api_ts(f->created_at), "updated_at",
                              api_ts(f->updated_at));
        return o;
}

/* D15: a clone hint must not reach a local path or a command-running transport
 * (file://, ext::, fd::, a bare path): only network URLs and scp-like ssh. */
static bool repo_url_acceptable(const char *u)
{
        static const char *const schemes[] = { "https://", "http://", "ssh://", "git://", NULL };
        if (strlen(u) > 2048 || strpbrk(u, " \t\r\n\\") || u[0] == '-')
                return false;
        for (size_t i = 0; schemes[i]; i++)
                if (str_has_prefix(u, schemes[i]) && u[strlen(schemes[i])] &&
                    u[strlen(schemes[i])] != '/')
                        return true;
        /* scp-like user@host:path (no "::" transport syntax) */
        const char *at = strchr(u, '@');
        const char *colon = strchr(u, ':');
        return at && colon && at < colon && at > u && colon[1] && colon[1] != ':' &&
               !strstr(u, "::");
}

int ms_h_facility_create(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        caller c = { 0 };
        _cleanup_json_ json_t *body = NULL;
        _cleanup_json_ json_t *keep = json_string("keep");
        int st = ms_auth_user(app, req, &c.user);
        if (st || (st = api_body(req, &body)))
                goto out;
        const char *tid = json_string_value(json_object_get(body, "territory_id"));
        ms_territory t = { 0 };
        err_t err = ERR_INIT;
        if (!tid || !uuid_is_valid(tid) || ms_territory_get(app->store, tid, &t, &err) < 0 ||
            strcmp(t.account_id, c.user.account_id) != 0 ||
            t.status == MS_TERRITORY_DECOMMISSIONED) {
                ms_territory_clear(&t);
                st = validation_failed(req, "territory_id must name an active territory of your "
                                            "account");
                goto out;
        }
        ms_territory_clear(&t);
        json_t *ru = json_object_get(body, "repo_url");
        const char *repo_url = json_is_string(ru) && !api_blank(ru) ? json_string_value(ru) : NULL;
        if (ru && !json_is_null(ru) && !json_is_string(ru)) {
                st = validation_failed(req, "repo_url must be a string");
                goto out;
        }
        if (repo_url && !repo_url_acceptable(repo_url)) {
                st = validation_failed(req, "repo_url must be an https://, http://, ssh:// or "
                                            "git:// URL or user@host:path");
                goto out;
        }
        json_t *kv = json_object_get(body, "kind");
        if (kv && !json_is_null(kv) && !json_is_string(kv)) {
                st = validation_failed(req, "kind must be a string");
                goto out;
        }
        const char *kind = json_string_value(kv);
        if (!kind)
                kind = repo_url ? "repo" : "empty";
        if (strcmp(kind, "repo") && strcmp(kind, "empty") && strcmp(kind, "imported_path")) {
                st = validation_failed(req, "kind must be repo, empty or imported_path");
                goto out;
        }
        json_t *rp = json_object_get(body, "retention_policy");
        if (!api_blank(rp) && !json_is_string(rp) && !json_is_object(rp)) {
                st = validation_failed(req, "retention_policy must be a string or an object");
                goto out;
        }
        ms_facility_new fn = { .account_id = c.user.account_id, .owner_id = c.user.id,
                               .territory_id = tid, .kind = kind, .repo_url = repo_url,
                               .retention_policy = api_blank(rp) ? keep : rp };
        char id[MS_ID_SIZE];
        if (ms_facility_create(app->store, &fn, MS_NOW, id, &err) < 0 ||
            ms_facility_get(app->store, c.user.account_id, id, &c.facility, &err) < 0) {
                st = api_store_error(req, &err);
                goto out;
        }
        st = ms_http_respond_json(req, 201, json_pack("{s:o}", "facility", facility_json(&c.facility)));
out:
        caller_clear(&c);
        return st;
}

int ms_h_facility_list(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        caller c = { 0 };
        int st = ms_auth_user(app, req, &c.user);
        if (st)
                goto out;
        ms_facility_array l = { 0 };
        err_t err = ERR_INIT;
        if (ms_facility_list(app->store, c.user.account_id, &l, &err) < 0) {
                st = api_store_error(req, &err);
                goto out;
        }
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < l.n; i++)
                json_array_append_new(arr, facility_json(&l.items[i]));
        ms_facility_array_clear(&l);
        st = ms_http_respond_json(req, 200, json_pack("{s:o}", "facilities", arr));
out:
        caller_clear(&c);
        return st;
}

/* ---------------------------------------------------------------- enrollment tokens -- */

int ms_h_enrollment_token_create(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        caller c = { 0 };
        _cleanup_json_ json_t *body = NULL;
        int st = ms_auth_user(app, req, &c.user);
        if (st || (st = api_body(req, &body)))
                goto out;
        json_t *labels = json_object_get(body, "labels");
        if (labels && !json_is_null(labels) && !json_is_object(labels)) {
                st = validation_failed(req, "labels must be an object");
                goto out;
        }
        int64_t ttl = api_lenient_int(json_object_get(body, "ttl_seconds"),
                                      MS_ENROLL_TOKEN_DEFAULT_TTL_S, NULL);
        if (ttl < 60 || ttl > 30 * 86400) {
                st = validation_failed(req, "ttl_seconds must be between 60 and 2592000");
                goto out;
        }
        char id[MS_ID_SIZE], plain[MS_ENROLL_TOKEN_SIZE];
        err_t err = ERR_INIT;
        ms_enroll_token tok = { 0 };
        if (ms_enroll_token_create(app->store, c.user.account_id, c.user.id,
                                   json_is_object(labels) ? labels : NULL, ttl, MS_NOW, id, plain,
                                   &err) < 0 ||
            ms_enroll_token_get(app->store, id, &tok, &err) < 0) {
                st = api_store_error(req, &err);
                goto out;
        }
        st = ms_http_respond_json(req, 201, json_pack("{s:s, s:s, s:o}", "id", id, "enroll_token",
                                                      plain, "expires_at", api_ts(tok.expires_at)));
        ms_enroll_token_clear(&tok);
out:
        caller_clear(&c);
        return st;
}

/* ---------------------------------------------------------------- directives --------- */

static const char *const profiles[] = { "untrusted", "trusted", "host", "darwin-automation",
                                        NULL };

/* The §7.12 wake-up, and its audit (§10.1 directive.wake_up_broadcast): parked long-polls of
 * the account's territories are our wake-up channel (there is no WebSocket), so via is
 * "long_poll" and territory_count counts the polls woken. Nothing woken, nothing written. */
static void wake_up(ms_app *app, const char *account_id, const char *directive_id)
{
        char topic[64];
        if (!app->http || str_printf(topic, sizeof(topic), "acct:%s", account_id) < 0)
                return;
        int n = ms_http_notify(app->http, topic);
        if (n <= 0)
                return;
        json_t *payload = json_pack("{s:i, s:s}", "territory_count", n, "via", "long_poll");
        ms_audit_new ev = { .account_id = account_id, .directive_id = directive_id,
                            .event_type = "directive.wake_up_broadcast", .payload = payload };
        api_audit(app, &ev, clock_now_ms());
        json_decref(payload);
}

static int check_limits(const json_t *limits, char *why, size_t whysz)
{
        static const char *const keys[] = { "cpu", "memory_mb", "disk_mb", "max_output_bytes",
                                            "max_diff_bytes", NULL };
        for (size_t i = 0; keys[i]; i++) {
                json_t *v = json_object_get(limits, keys[i]);
                if (!v || json_is_null(v))
                        continue;
                json_int_t max = strcmp(keys[i], "max_diff_bytes") == 0 ? MS_MAX_DIFF_LIMIT
                                                                       : ((json_int_t)1 << 40);
                if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                    json_integer_value(v) > max) {
                        str_printf(why, whysz, "limits.%s must be an integer between 0 and %lld",
                                   keys[i], (long long)max);
                        return -1;
                }
        }
        return 0;
}

/* skip = safe < needs_approval < forbidden (§3.3.2 step 3) */
static int verdict_rank(const char *v)
{
        if (v && strcmp(v, "forbidden") == 0)
                return 2;
        if (v && strcmp(v, "needs_approval") == 0)
                return 1;
        return 0;
}

static int respond_oom(ms_http_req *req)
{
        return ms_http_respond_error(req, 500, "internal_error", "out of memory");
}

/* spec §3.3.2 steps 1-6 and §6.11 "directive creation": the CommandValidator first (forbidden:
 * 422, nothing stored), then the resolver; the most restrictive of both verdicts decides
 * between 403 (nothing stored), 202 awaiting_approval and 201 queued. */
static int create_decide(ms_app *app, ms_http_req *req, const caller *c, ms_directive_new *d,
                         int64_t now)
{
        _cleanup_json_ json_t *violations = json_array();
        _cleanup_json_ json_t *reasons = json_array();
        mspol_resolution res = { 0 };
        ms_policy_array ps = { 0 };
        err_t err = ERR_INIT;
        json_t *payload = NULL;
        int st;
        if (!violations || !reasons)
                return respond_oom(req);
        mspol_cmd_verdict cv = mspol_cmd_validate(d->sandbox_profile, d->command, violations);
        if (cv == MSPOL_CMD_FORBIDDEN) {
                payload = json_pack("{s:s, s:s, s:O}", "command", d->command, "sandbox_profile",
                                    d->sandbox_profile, "violations", violations);
                ms_audit_new ev = { .account_id = d->account_id, .actor_id = c->user.id,
                                    .event_type = "directive.command_forbidden",
                                    .severity = "critical", .payload = payload };
                api_audit(app, &ev, now);
                st = ms_http_respond_json(
                        req, 422,
                        json_pack("{s:s, s:s, s:O}", "error", "command_forbidden", "detail",
                                  "the command matches a forbidden pattern (spec §6.8)",
                                  "violations", violations));
                goto out;
        }
        if (ms_policy_list_applicable(app->store, d->account_id, d->requested_by_user_id,
                                      d->facility_id, &ps, &err) < 0 ||
            mspol_resolve(ps.items, ps.n, d->sandbox_profile, d->requested_capabilities, now,
                          &res, &err) < 0) {
                st = api_store_error(req, &err);
                goto out;
        }
        /* combined reasons: the policy's, then the command's (§3.3.2 step 3) */
        if (json_array_extend(reasons, res.reasons) < 0 ||
            json_array_extend(reasons, violations) < 0) {
                st = respond_oom(req);
                goto out;
        }
        int rank = verdict_rank(res.verdict);
        if (cv == MSPOL_CMD_NEEDS_APPROVAL && rank < 1)
                rank = 1;
        json_t *applied = res.policies_applied;   /* set whenever mspol_resolve succeeds */
        if (rank == 2) {
                payload = json_pack("{s:s, s:s, s:O, s:O}", "command", d->command,
                                    "sandbox_profile", d->sandbox_profile, "reasons", reasons,
                                    "policies_applied", applied);
                ms_audit_new ev = { .account_id = d->account_id, .actor_id = c->user.id,
                                    .event_type = "directive.policy_forbidden",
                                    .severity = "critical", .payload = payload };
                api_audit(app, &ev, now);
                st = ms_http_respond_json(
                        req, 403,
                        json_pack("{s:s, s:s, s:O, s:O}", "error", "policy_forbidden", "detail",
                                  "a policy forbids this directive", "reasons", reasons,
                                  "policies_applied", applied));
                goto out;
        }
        d->effective_capabilities = res.effective;
        d->policy_snapshot = res.snapshot;
        d->state = rank == 1 ? MS_DIRECTIVE_AWAITING_APPROVAL : MS_DIRECTIVE_QUEUED;
        char id[MS_ID_SIZE];
        if (ms_directive_insert(app->store, d, now, id, &err) < 0) {
                st = api_store_error(req, &err);
                goto out;
        }
        payload = json_pack("{s:s, s:O}", "verdict", rank == 1 ? "needs_approval" : "skip",
                            "policies_applied", applied);
        if (payload && rank == 1)
                json_object_set(payload, "reasons", reasons);
        ms_audit_new ev = { .account_id = d->account_id, .directive_id = id,
                            .actor_id = c->user.id, .event_type = "directive.created",
                            .payload = payload };
        api_audit(app, &ev, now);
        if (rank == 1) {
                /* §3.3.2 step 5: no wake-up, nobody may lease it yet */
                st = ms_http_respond_json(req, 202,
                                          json_pack("{s:s, s:s, s:O, s:o}", "directive_id", id,
                                                    "state", "awaiting_approval",
                                                    "approval_reasons", reasons, "created_at",
                                                    api_ts(now)));
                goto out;
        }
        wake_up(app, d->account_id, id);
        st = ms_http_respond_json(req, 201, json_pack("{s:s, s:s, s:o}", "directive_id", id,
                                                      "state", "queued", "created_at",
                                                      api_ts(now)));
out:
        json_decref(payload);
        mspol_resolution_clear(&res);
        ms_policy_array_clear(&ps);
        return st;
}

int ms_h_directive_create(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        caller c = { 0 };
        _cleanup_json_ json_t *body = NULL;
        int st = resolve(app, req, &c, false);
        if (st || (st = api_body(req, &body)))
                goto out;
        json_t *cmdv = json_object_get(body, "command");
        if (api_blank(cmdv) || !json_is_string(cmdv)) {
                st = ms_http_respond_error(req, 400, "bad_request",
                                           "param is missing or the value is empty: command");
                goto out;
        }
        if (json_string_length(cmdv) > 64 * 1024 || strlen(json_string_value(cmdv)) !=
                                                            json_string_length(cmdv)) {
                st = validation_failed(req, "command must be at most 65536 bytes, without NUL");
                goto out;
        }
        ms_directive_new d = { 0 };
        d.command = json_string_value(cmdv);
        json_t *pv = json_object_get(body, "sandbox_profile");
        const char *profile = json_is_null(pv) || !pv ? "untrusted" : json_string_value(pv);
        size_t pi = 0;
        for (; profile && profiles[pi]; pi++)
                if (strcmp(profiles[pi], profile) == 0)
                        break;
        if (!profile || !profiles[pi]) {
                st = validation_failed(req, "sandbox_profile must be one of untrusted, trusted, "
                                            "host, darwin-automation");
                goto out;
        }
        d.sandbox_profile = profile;
        const char *strs[] = { "shell", "cwd" };
        for (size_t i = 0; i < 2; i++) {
                json_t *v = json_object_get(body, strs[i]);
                if (v && !json_is_null(v) && (!json_is_string(v) || json_string_length(v) > 4096)) {
                        st = validation_failed(req, "%s must be a string", strs[i]);
                        goto out;
                }
        }
        d.shell = json_string_value(json_object_get(body, "shell"));
        d.cwd = json_string_value(json_object_get(body, "cwd"));
        bool tpresent = false;
        d.timeout_seconds = api_lenient_int(json_object_get(body, "timeout_seconds"),
                                            MS_DEFAULT_TIMEOUT_S, &tpresent);
        if (d.timeout_seconds < 1 || d.timeout_seconds > 7 * 86400) {
                /* stricter than the reference, which stores 0 or negatives (§3.3.2 Quirk) */
                st = validation_failed(req, "timeout_seconds must be between 1 and 604800");
                goto out;
        }
        json_t *limits = json_object_get(body, "limits");
        char why[256];
        if (limits && !json_is_null(limits) &&
            (!json_is_object(limits) || check_limits(limits, why, sizeof(why)) < 0)) {
                st = validation_failed(req, "%s", json_is_object(limits) ? why
                                                                         : "limits must be an object");
                goto out;
        }
        d.limits = json_is_object(limits) ? limits : NULL;
        json_t *rc = json_object_get(body, "requested_capabilities");
        if (rc && !json_is_null(rc) && !json_is_object(rc)) {
                st = validation_failed(req, "requested_capabilities must be an object");
                goto out;
        }
        json_t *net = json_is_object(rc) ? json_object_get(rc, "net") : NULL;
        json_t *fs = json_is_object(rc) ? json_object_get(rc, "fs") : NULL;
        err_t err = ERR_INIT;
        if (!api_blank(net) && netcap_validate(net, &err) < 0) {
                st = validation_failed(req, "requested_capabilities.net: %s", err.msg);
                goto out;
        }
        /* The request may use the wire selectors (FsCapabilityV1: workspace:**,
         * workspace:/p, host:/p) or the §6.2 paths the resolver intersects ("/workspace/src",
         * spec §13.6 #90); either way it can only narrow (§6.6 step 4). */
        char fswhy[512];
        if (!api_blank(fs) && fscap_validate(fs, &err) < 0 &&
            mspol_validate_section("fs", fs, fswhy, sizeof(fswhy)) < 0) {
                st = validation_failed(req, "requested_capabilities.fs: %s", fswhy);
                goto out;
        }
        err_clear(&err);
        d.requested_capabilities = json_is_object(rc) ? rc : NULL;
        const char *arrs[] = { "env_allowlist", "env_refs" };
        for (size_t i = 0; i < 2; i++) {
                json_t *v = json_object_get(body, arrs[i]);
                if (v && !json_is_null(v) && !json_is_array(v)) {
                        st = validation_failed(req, "%s must be an array", arrs[i]);
                        goto out;
                }
        }
        d.env_allowlist = json_is_array(json_object_get(body, "env_allowlist"))
                                  ? json_object_get(body, "env_allowlist") : NULL;
        d.env_refs = json_is_array(json_object_get(body, "env_refs"))
                             ? json_object_get(body, "env_refs") : NULL;
        int64_t now = clock_now_ms();
        d.account_id = c.facility.account_id;
        d.facility_id = c.facility.id;
        d.requested_by_user_id = c.user.id;
        st = create_decide(app, req, &c, &d, now);
out:
        caller_clear(&c);
        return st;
}

int ms_h_directive_list(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        caller c = { 0 };
        int st = resolve(app, req, &c, false);
        if (st)
                goto out;
        ms_directive_filter f = { .account_id = c.user.account_id, .facility_id = c.facility.id,
                                  .limit = MS_LIST_DEFAULT, .newest_first = true };
        const char *q;
        if ((q = ms_http_req_query(req, "state"))) {
                ms_directive_state s;
                if (ms_directive_state_parse(q, &s) < 0) {
                        st = ms_http_respond_error(req, 422, "invalid_param",
                                                   "state \"%.32s\" is not a directive state", q);
                        goto out;
                }
                f.has_state = true;
                f.state = s;
        }
        if ((q = ms_http_req_query(req, "territory_id"))) {
                if (!uuid_is_valid(q)) {
                        st = ms_http_respond_error(req, 422, "invalid_param",
                                                   "territory_id must be a UUID");
                        goto out;
                }
                f.territory_id = q;
        }
        if ((q = ms_http_req_query(req, "cursor"))) {
                if (!uuid_is_valid(q)) {
                        st = ms_http_respond_error(req, 422, "invalid_param",
                                                   "cursor must be a directive id");
                        goto out;
                }
                f.cursor = q;
        }
        if ((q = ms_http_req_query(req, "limit"))) {
                int64_t n;
                if (str_to_int64(q, 1, 200, &n) < 0) {
                        st = ms_http_respond_error(req, 422, "invalid_limit",
                                                   "limit must be an integer between 1 and 200");
                        goto out;
                }
                f.limit = (int)n;
        }
        ms_directive_array l = { 0 };
        err_t err = ERR_INIT;
        if (ms_directive_list(app->store, &f, &l, &err) < 0) {
                st = api_store_error(req, &err);
                goto out;
        }
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < l.n; i++)
                json_array_append_new(arr, ms_directive_to_json(&l.items[i]));
        json_t *next = l.n == (size_t)f.limit ? json_string(l.items[l.n - 1].id) : json_null();
        ms_directive_array_clear(&l);
        st = ms_http_respond_json(req, 200, json_pack("{s:o, s:o}", "directives", arr,
                                                      "next_cursor", next));
out:
        caller_clear(&c);
        return st;
}

int ms_h_directive_show(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        caller c = { 0 };
        int st = resolve(app, req, &c, true);
        if (!st)
                st = ms_http_respond_json(req, 200, ms_directive_to_json(&c.directive));
        caller_clear(&c);
        return st;
}

/* §3.3.4 the shared "log page" rules */
int ms_h_directive_log_chunks(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        caller c = { 0 };
        _cleanup_json_ json_t *av = NULL;
        _cleanup_json_ json_t *lv = NULL;
        int st = resolve(app, req, &c, true);
        if (st)
                goto out;
        ms_log_stream stream;
        const char *q = ms_http_req_query(req, "stream");
        if (!q || ms_log_stream_parse(q, &stream) < 0 || stream == MS_STREAM_BOTH) {
                st = ms_http_respond_json(req, 422, json_pack("{s:s}", "error", "invalid_stream"));
                goto out;
        }
        int64_t after = -1, limit = MS_LOG_PAGE_DEFAULT;
        av = api_param(req, NULL, "after_seq");
        if (av && (api_strict_int(av, &after) < 0 || after < -1)) {
                st = ms_http_respond_json(req, 422, json_pack("{s:s}", "error", "invalid_after_seq"));
                goto out;
        }
        lv = api_param(req, NULL, "limit");
        if (lv && (api_strict_int(lv, &limit) < 0 || limit <= 0)) {
                st = ms_http_respond_json(req, 422, json_pack("{s:s}", "error", "invalid_limit"));
                goto out;
        }
        if (limit > MS_LOG_PAGE_MAX)
                limit = MS_LOG_PAGE_MAX;
        ms_log_chunk_array l = { 0 };
        err_t err = ERR_INIT;
        if (ms_log_chunk_list(app->store, c.directive.id, stream, after, (int)limit, 0, &l, &err) < 0) {
                st = api_store_error(req, &err);
                goto out;
        }
        json_t *chunks = json_array();
        int64_t next = after;
        for (size_t i = 0; chunks && i < l.n; i++) {
                _cleanup_free_ char *b64 = base64_encode(l.items[i].bytes, l.items[i].bytesize);
                json_array_append_new(chunks,
                                      json_pack("{s:I, s:s, s:I, s:b, s:o}", "seq",
                                                (json_int_t)l.items[i].seq, "bytes_base64",
                                                b64 ? b64 : "", "bytesize",
                                                (json_int_t)l.items[i].bytesize, "truncated",
                                                l.items[i].truncated, "created_at",
                                                api_ts_s(l.items[i].created_at)));
                next = l.items[i].seq;
        }
        ms_log_chunk_array_clear(&l);
        st = ms_http_respond_json(
                req, 200,
                json_pack("{s:s, s:s, s:s, s:I, s:I, s:o, s:I, s:b, s:b}", "directive_id",
                          c.directive.id, "facility_id", c.facility.id, "stream",
                          ms_log_stream_name(stream), "after_seq", (json_int_t)after, "limit",
                          (json_int_t)limit, "chunks", chunks, "next_after_seq",
                          (json_int_t)next, "stdout_truncated", c.directive.stdout_truncated,
                          "stderr_truncated", c.directive.stderr_truncated));
out:
        caller_clear(&c);
        return st;
}

#define LOG_TEXT_MAX (64 * 1024 * 1024)

int ms_h_directive_log_text(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        caller c = { 0 };
        _cleanup_buf_ buf out = BUF_INIT(LOG_TEXT_MAX);
        int st = resolve(app, req, &c, true);
        if (st)
                goto out;
        ms_log_stream stream = MS_STREAM_STDOUT;
        const char *q = ms_http_req_query(req, "stream");
        if (q && (ms_log_stream_parse(q, &stream) < 0 || stream == MS_STREAM_BOTH)) {
                st = ms_http_respond_json(req, 422, json_pack("{s:s}", "error", "invalid_stream"));
                goto out;
        }
        int64_t after = -1;
        for (;;) {
                ms_log_chunk_array l = { 0 };
                err_t err = ERR_INIT;
                if (ms_log_chunk_list(app->store, c.directive.id, stream, after, MS_LOG_PAGE_MAX,
                                      0, &l, &err) < 0) {
                        st = api_store_error(req, &err);
                        goto out;
                }
                bool full = false;
                for (size_t i = 0; i < l.n && !full; i++) {
                        full = buf_append(&out, l.items[i].bytes, l.items[i].bytesize) < 0;
                        after = l.items[i].seq;
                }
                size_t n = l.n;
                ms_log_chunk_array_clear(&l);
                if (n == 0 || full)
                        break;
        }
        buf_putc(&out, '\0');   /* make data non-NULL for an empty log */
        st = ms_http_respond_bytes(req, 200, "text/plain; charset=utf-8", out.data,
                                   out.len ? out.len - 1 : 0);
out:
        caller_clear(&c);
        return st;
}

/* Our extension (issue 6): the egress proxy's decisions for one directive, parsed from the
 * JSONL of its "egress" log stream. Chunk-granular paging: after_seq / next_after_seq are
 * chunk sequence numbers; a page holds whole chunks and stops once limit records are
 * reached. A line that is not a JSON object (which the daemon never sends) is skipped. */
#define EGRESS_EVENTS_DEFAULT 1000
#define EGRESS_EVENTS_MAX 10000

static void egress_lines(const ms_log_chunk *ch, json_t *events)
{
        const char *p = (const char *)ch->bytes, *end = p + ch->bytesize;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t len = (size_t)((nl ? nl : end) - p);
                json_t *o = len ? json_loadb(p, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
                if (json_is_object(o))
                        json_array_append(events, o);
                json_decref(o);
                p += len + (nl ? 1 : 0);
        }
}

int ms_h_directive_egress_events(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        caller c = { 0 };
        _cleanup_json_ json_t *av = NULL;
        _cleanup_json_ json_t *lv = NULL;
        int st = resolve(app, req, &c, true);
        if (st)
                goto out;
        int64_t after = -1, limit = EGRESS_EVENTS_DEFAULT;
        av = api_param(req, NULL, "after_seq");
        if (av && (api_strict_int(av, &after) < 0 || after < -1)) {
                st = ms_http_respond_json(req, 422, json_pack("{s:s}", "error", "invalid_after_seq"));
                goto out;
        }
        lv = api_param(req, NULL, "limit");
        if (lv && (api_strict_int(lv, &limit) < 0 || limit <= 0)) {
                st = ms_http_respond_json(req, 422, json_pack("{s:s}", "error", "invalid_limit"));
                goto out;
        }
        if (limit > EGRESS_EVENTS_MAX)
                limit = EGRESS_EVENTS_MAX;
        json_t *events = json_array();
        int64_t next = after;
        bool more = false;
        while (events && !more && json_array_size(events) < (size_t)limit) {
                ms_log_chunk_array l = { 0 };
                err_t err = ERR_INIT;
                if (ms_log_chunk_list(app->store, c.directive.id, MS_STREAM_EGRESS, next,
                                      MS_LOG_PAGE_MAX, 0, &l, &err) < 0) {
                        json_decref(events);
                        st = api_store_error(req, &err);
                        goto out;
                }
                size_t i = 0;
                for (; i < l.n && json_array_size(events) < (size_t)limit; i++) {
                        egress_lines(&l.items[i], events);
                        next = l.items[i].seq;
                }
                more = i < l.n;
                bool empty = l.n == 0;
                ms_log_chunk_array_clear(&l);
                if (empty)
                        break;
        }
        if (!events) {
                st = ms_http_respond_error(req, 500, "internal_error", "out of memory");
                goto out;
        }
        if (!more && json_array_size(events) >= (size_t)limit) {
                /* the page filled exactly at a chunk boundary: is there another chunk? */
                ms_log_chunk_array l = { 0 };
                err_t err = ERR_INIT;
                if (ms_log_chunk_list(app->store, c.directive.id, MS_STREAM_EGRESS, next, 1, 1,
                                      &l, &err) == 0)
                        more = l.n > 0;
                ms_log_chunk_array_clear(&l);
        }
        st = ms_http_respond_json(req, 200,
                                  json_pack("{s:s, s:o, s:o}", "directive_id", c.directive.id,
                                            "egress_events", events, "next_after_seq",
                                            more ? json_integer(next) : json_null()));
out:
        caller_clear(&c);
        return st;
}

int ms_h_directive_diff(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        caller c = { 0 };
        int st = resolve(app, req, &c, true);
        if (st)
                goto out;
        uint8_t *data = NULL;
        size_t len = 0;
        err_t err = ERR_INIT;
        if (ms_diff_blob_read(app->store, c.directive.id, (size_t)ms_directive_max_diff(&c.directive) + 1,
                              &data, &len, &err) < 0) {
                if (strcmp(err.code, ERR_NOT_FOUND) == 0)
                        st = ms_http_respond_text(req, 404, "text/plain; charset=utf-8",
                                                  "diff not found");
                else
                        st = api_store_error(req, &err);
                goto out;
        }
        ms_http_add_header(req, "Content-Disposition", "attachment; filename=\"diff.patch\"");
        st = ms_http_respond_take(req, 200, "text/x-diff", data, len);
out:
        caller_clear(&c);
        return st;
}

/* ---------------------------------------------------------------- approve / reject --- */

typedef struct decide_ctx {
        ms_app *app;
        const caller *c;
        const char *action;          /* "approve" | "reject" | "cancel" */
        const char *reason;          /* the body's optional reason; NULL = none */
        int status;                  /* 409 when the state did not allow it */
        char detail[128];
        char state[32];
} decide_ctx;

static int decide_tx(ms_store *s, void *vc, err_t *err)
{
        decide_ctx *x = vc;
        ms_directive d = { 0 };
        int64_t now = clock_now_ms();
        if (ms_directive_get(s, x->c->directive.id, &d, err) < 0)
                return -1;
        const char *name = ms_directive_state_name(d.state);
        bool changed = false;
        int r = 0;
        json_t *payload = NULL;
        const char *event = NULL;
        if (strcmp(x->action, "cancel") == 0) {
                if (ms_directive_state_is_terminal(d.state)) {
                        x->status = 409;
                        str_printf(x->detail, sizeof(x->detail), "directive is %s", name);
                        ms_directive_clear(&d);
                        return err_setc(err, ERR_CONFLICT, "%s", x->detail);
                }
                r = ms_directive_request_cancel(s, d.id, now, &changed, err);
                /* never leased: nobody will report it, so it ends here */
                if (r == 0 && (d.state == MS_DIRECTIVE_QUEUED ||
                               d.state == MS_DIRECTIVE_AWAITING_APPROVAL)) {
                        r = ms_directive_transition(s, d.id, d.state, MS_DIRECTIVE_CANCELED, now,
                                                    &changed, err);
                        name = "canceled";
                }
                event = "directive.cancel_requested";
                payload = json_pack("{s:s, s:s, s:s?}", "requested_by_user_id", x->c->user.id,
                                    "state_before", ms_directive_state_name(d.state), "reason",
                                    x->reason);
        } else if (d.state != MS_DIRECTIVE_AWAITING_APPROVAL) {
                x->status = 409;
                str_printf(x->detail, sizeof(x->detail), "directive is %s, not awaiting_approval",
                           name);
                ms_directive_clear(&d);
                return err_setc(err, ERR_CONFLICT, "%s", x->detail);
        } else {
                /* §3.3.5, issue 4: the decision records who and why; reject is terminal */
                bool approve = strcmp(x->action, "approve") == 0;
                r = ms_directive_decide(s, d.id, approve, x->c->user.id, x->reason, now,
                                        &changed, err);
                name = approve ? "queued" : "canceled";
                event = approve ? "directive.approved" : "directive.rejected";
                payload = json_pack("{s:s, s:o}",
                                    approve ? "approved_by_user_id" : "rejected_by_user_id",
                                    x->c->user.id, "reason",
                                    x->reason ? json_string(x->reason) : json_null());
        }
        if (r == 0) {
                str_copy(x->state, sizeof(x->state), name);
                ms_audit_new ev = { .account_id = d.account_id, .directive_id = d.id,
                                    .actor_id = x->c->user.id, .event_type = event,
                                    .payload = payload };
                api_audit(x->app, &ev, now);
        }
        json_decref(payload);
        ms_directive_clear(&d);
        return r;
}

static int decide(ms_http_req *req, ms_app *app, const char *action)
{
        caller c = { 0 };
        _cleanup_json_ json_t *body = NULL;
        int st = resolve(app, req, &c, true);
        /* a malformed body is a 400 (spec §0.3); its only parameter is "reason" */
        if (st || (st = api_body(req, &body)))
                goto out;
        /* optional "reason" (issue 4: an approval or rejection records why) */
        json_t *rv = json_object_get(body, "reason");
        if (rv && !json_is_null(rv) &&
            (!json_is_string(rv) || json_string_length(rv) > MS_DECISION_REASON_MAX ||
             strlen(json_string_value(rv)) != json_string_length(rv))) {
                st = ms_http_respond_error(req, 422, "invalid_param",
                                           "reason must be a string of at most %d bytes",
                                           MS_DECISION_REASON_MAX);
                goto out;
        }
        const char *reason = json_is_string(rv) && !api_blank(rv) ? json_string_value(rv) : NULL;
        /* §6.10 / §3.3.5: self-approval is refused before the state is looked at */
        if (strcmp(action, "approve") == 0 &&
            strcmp(c.directive.requested_by_user_id, c.user.id) == 0) {
                st = ms_http_respond_error(req, 403, "forbidden", "cannot approve own directive");
                goto out;
        }
        decide_ctx x = { .app = app, .c = &c, .action = action, .reason = reason };
        err_t err = ERR_INIT;
        if (ms_store_tx(app->store, decide_tx, &x, &err) < 0) {
                st = x.status ? ms_http_respond_error(req, 409, "state_conflict", "%s", x.detail)
                              : api_store_error(req, &err);
                goto out;
        }
        json_t *resp = json_pack("{s:s, s:s}", "directive_id", c.directive.id, "state", x.state);
        if (strcmp(action, "approve") == 0) {
                json_object_set_new(resp, "approved_by_user_id", json_string(c.user.id));
                json_object_set_new(resp, "reason", reason ? json_string(reason) : json_null());
                wake_up(app, c.directive.account_id, c.directive.id);
        } else if (strcmp(action, "reject") == 0) {
                json_object_set_new(resp, "rejected_by_user_id", json_string(c.user.id));
                json_object_set_new(resp, "reason", reason ? json_string(reason) : json_null());
        } else if (strcmp(action, "cancel") == 0) {
                json_object_set_new(resp, "cancel_requested", json_true());
        }
        st = ms_http_respond_json(req, 200, resp);
out:
        caller_clear(&c);
        return st;
}

int ms_h_directive_approve(ms_http_req *req, void *app)
{
        return decide(req, app, "approve");
}

int ms_h_directive_reject(ms_http_req *req, void *app)
{
        return decide(req, app, "reject");
}

int ms_h_directive_cancel(ms_http_req *req, void *app)
{
        return decide(req, app, "cancel");
}
