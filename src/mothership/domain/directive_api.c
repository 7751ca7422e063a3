/* domain/directive_api.c — the Nexus-facing directive track: polls and leases (spec mothership
 * §3.2.3, §7), started (§3.2.4), directive heartbeat (§3.2.5), log chunks (§3.2.6) and
 * finished (§3.2.7).
 *
 * Every report runs in one store transaction (BEGIN IMMEDIATE on SQLite, which serialises
 * writers: that is the row lock of §7.10). An application refusal inside a transaction sets
 * `reply` and returns -1, so everything the transaction did is rolled back. */
#include "domain/handlers.h"

#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/cleanup.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "domain/api.h"
#include "domain/auth.h"
#include "core/uuid.h"
#include "domain/directive_view.h"
#include "policy/policy.h"

typedef struct reply {
        int status;                  /* 0: none set (a store error instead) */
        const char *code;
        char detail[512];
} reply;

static int reply_set(reply *r, err_t *err, int status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
static int reply_set(reply *r, err_t *err, int status, const char *code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
        (void)n;
        va_end(ap);
        r->status = status;
        r->code = code;
        return err_setc(err, ERR_CONFLICT, "%s", r->detail);
}

static int reply_send(ms_http_req *req, const reply *r, const err_t *err)
{
        if (r->status)
                return ms_http_respond_error(req, (unsigned)r->status, r->code, "%s", r->detail);
        return api_store_error(req, err);
}

/* ---------------------------------------------------------------- polls (§3.2.3, §7) -- */

/* §7.2: capacity.max_concurrent if a positive integer, else 1 */
static int64_t territory_max_concurrent(const ms_territory *t)
{
        json_t *v = json_is_object(t->capacity) ? json_object_get(t->capacity, "max_concurrent")
                                                 : NULL;
        return json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : 1;
}

static int64_t territory_running(const ms_territory *t)
{
        json_t *v = json_is_object(t->runtime_status)
                            ? json_object_get(t->runtime_status, "running_directives")
                            : NULL;
        return json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : 0;
}

/* §7.3 */
static bool territory_healthy_for(const ms_territory *t, const char *profile)
{
        json_t *health = json_is_object(t->capacity) ? json_object_get(t->capacity, "sandbox_health")
                                                      : NULL;
        if (api_blank(health) || !json_is_object(health))
                return true;
        const char *driver = profile;
        if (strcmp(profile, "untrusted") == 0) {
                json_t *u = json_object_get(t->capacity, "untrusted_driver");
                driver = json_is_string(u) && json_string_length(u) ? json_string_value(u) : "bwrap";
        } else if (strcmp(profile, "trusted") == 0) {
                driver = "container";
        }
        json_t *entry = json_object_get(health, driver);
        if (!json_is_object(entry))
                return true;
        return !json_is_false(json_object_get(entry, "healthy"));
}

typedef struct poll_ctx {
        ms_app *app;
        ms_territory t;
        char **profiles;
        size_t nprofiles;
        int limit;
        json_t *leases;              /* built by the claim transaction */
        int64_t deadline_ms;         /* long-poll: monotonic end of the wait */
        char topic[64];
} poll_ctx;

static void poll_ctx_free(void *p)
{
        poll_ctx *pc = p;
        if (!pc)
                return;
        ms_territory_clear(&pc->t);
        for (size_t i = 0; i < pc->nprofiles; i++)
                free(pc->profiles[i]);
        free(pc->profiles);
        json_decref(pc->leases);
        free(pc);
}

static void revalidation_audit(poll_ctx *pc, const ms_directive *d, const char *severity,
                               json_t *payload, int64_t now)
{
        ms_audit_new ev = { .account_id = d->account_id, .directive_id = d->id,
                            .territory_id = pc->t.id, .severity = severity,
                            .event_type = "directive.lease_policy_revalidated",
                            .payload = payload };
        api_audit(pc->app, &ev, now);
        json_decref(payload);
}

/* §7.4 step 3 / §6.11 "directive lease": the PolicyResolver again (not the CommandValidator),
 * inside the claim transaction, so nothing can change the directive between the verdict and
 * the lease. Returns 0 to lease (d->effective_capabilities refreshed when they changed), 1 to
 * skip it, -1 on error.
 *   forbidden                      -> canceled, not leased (as the reference);
 *   needs_approval, never approved -> back to awaiting_approval, not leased. Stricter than
 *                                     REF, which ignores needs_approval here and leases a
 *                                     directive nobody approved (issue 4 calls that a bug);
 *   needs_approval, approved       -> leased: the approval stands — unless the effective
 *                                     capabilities changed since: then they are stored, the
 *                                     approval is withdrawn and the directive waits for a new
 *                                     one (an approval covers what the approver saw, never a
 *                                     policy edit made after it);
 *   changed effective capabilities -> stored with a fresh snapshot, then leased. */
static int revalidate(poll_ctx *pc, ms_store *s, ms_directive *d, int64_t now, err_t *err)
{
        ms_policy_array ps = { 0 };
        mspol_resolution res = { 0 };
        bool changed = false;
        int r = -1;
        if (ms_policy_list_applicable(s, d->account_id, d->requested_by_user_id, d->facility_id,
                                      &ps, err) < 0 ||
            mspol_resolve(ps.items, ps.n, d->sandbox_profile, d->requested_capabilities, now,
                          &res, err) < 0)
                goto out;
        const char *verdict = res.verdict ? res.verdict : "skip";
        if (strcmp(verdict, "forbidden") == 0) {
                if (ms_directive_transition(s, d->id, MS_DIRECTIVE_QUEUED, MS_DIRECTIVE_CANCELED,
                                            now, &changed, err) < 0)
                        goto out;
                if (changed)
                        revalidation_audit(pc, d, "warn",
                                           json_pack("{s:s, s:s, s:O, s:O}", "action", "canceled",
                                                     "reason", "policy_now_forbidden", "reasons",
                                                     res.reasons, "policies_applied",
                                                     res.policies_applied),
                                           now);
                r = 1;
                goto out;
        }
        bool caps_changed = !json_equal(res.effective, d->effective_capabilities);
        if (strcmp(verdict, "needs_approval") == 0 &&
            (!d->approved_by_user_id[0] || caps_changed)) {
                if ((caps_changed && ms_directive_set_effective(s, d->id, res.effective,
                                                                res.snapshot, now, err) < 0) ||
                    ms_directive_hold_for_approval(s, d->id, now, &changed, err) < 0)
                        goto out;
                if (changed)
                        revalidation_audit(pc, d, "warn",
                                           json_pack("{s:s, s:s, s:O, s:O}", "action",
                                                     "awaiting_approval", "reason",
                                                     d->approved_by_user_id[0]
                                                             ? "capabilities_changed_after_approval"
                                                             : "policy_now_needs_approval",
                                                     "reasons", res.reasons, "policies_applied",
                                                     res.policies_applied),
                                           now);
                r = 1;
                goto out;
        }
        if (caps_changed) {
                if (ms_directive_set_effective(s, d->id, res.effective, res.snapshot, now, err) < 0)
                        goto out;
                revalidation_audit(pc, d, "info",
                                   json_pack("{s:s, s:O}", "action", "capabilities_updated",
                                             "policies_applied", res.policies_applied),
                                   now);
                /* the lease carries what was just stored (§7.5 capabilities) */
                json_decref(d->effective_capabilities);
                d->effective_capabilities = json_incref(res.effective);
        }
        r = 0;
out:
        mspol_resolution_clear(&res);
        ms_policy_array_clear(&ps);
        return r;
}

static int claim_one(poll_ctx *pc, ms_store *s, ms_directive *d, int64_t now, err_t *err)
{
        ms_facility f = { 0 };
        if (ms_facility_get(s, NULL, d->facility_id, &f, err) < 0)
                return -1;
        bool skip = (f.locked_by_directive_id[0] &&
                     strcmp(f.locked_by_directive_id, d->id) != 0) ||   /* §7.4 2.1 */
                    !territory_healthy_for(&pc->t, d->sandbox_profile);  /* §7.4 2.2 */
        int rv = skip ? 1 : revalidate(pc, s, d, now, err);             /* §7.4 2.3 */
        if (rv != 0) {
                ms_facility_clear(&f);
                return rv < 0 ? -1 : 0;
        }
        bool changed = false;
        int64_t expires = now + (int64_t)MS_LEASE_TTL_S * 1000;
        if (ms_directive_lease(s, d->id, pc->t.id, expires, now, &changed, err) < 0 || !changed) {
                ms_facility_clear(&f);
                return changed ? -1 : 0;
        }
        if (ms_facility_lock(s, f.id, d->id, now, err) < 0) {
                ms_facility_clear(&f);
                if (!err->code || strcmp(err->code, ERR_CONFLICT) != 0)
                        return -1;
                /* §7.4 2.5: another directive won the facility; give this one back */
                err_clear(err);
                return ms_directive_expire_lease(s, d->id, 0, now, NULL, err);
        }
        _cleanup_free_ char *token = api_mint_token(pc->app, d->id, pc->t.id, now, err);
        if (!token) {
                ms_facility_clear(&f);
                return -1;
        }
        json_t *spec = ms_directive_lease_spec(d, &f);
        ms_facility_clear(&f);
        json_t *lease = spec ? json_pack("{s:s, s:s, s:o}", "directive_id", d->id,
                                         "directive_token", token, "spec", spec)
                             : NULL;
        if (!lease || json_array_append_new(pc->leases, lease) < 0)
                return err_setc(err, ERR_INTERNAL, "out of memory building a lease");
        return 0;
}

/* Claims what it can: peek first, take the write lock only when there is a candidate. */
static int claim(poll_ctx *pc, err_t *err);

static int claim_tx(ms_store *s, void *vpc, err_t *err)
{
        poll_ctx *pc = vpc;
        json_array_clear(pc->leases);   /* a retried transaction starts over */
        ms_directive_array cand = { 0 };
        int64_t now = clock_now_ms();
        if (ms_directive_list_claimable(s, pc->t.account_id, (const char *const *)pc->profiles,
                                        pc->nprofiles, pc->limit, &cand, err) < 0)
                return -1;
        int r = 0;
        for (size_t i = 0; i < cand.n && r == 0; i++)
                r = claim_one(pc, s, &cand.items[i], now, err);
        ms_directive_array_clear(&cand);
        return r;
}

/* Empty answers after a long-poll say "poll again now": the caller already waited. */
static int claim(poll_ctx *pc, err_t *err)
{
        /* A read outside any write transaction: most polls find nothing, and they must not
         * queue behind writers for the database lock to learn it (bench/polls). */
        bool any = false;
        json_array_clear(pc->leases);
        if (ms_directive_any_claimable(pc->app->store, pc->t.account_id,
                                       (const char *const *)pc->profiles, pc->nprofiles, &any,
                                       err) < 0)
                return -1;
        return any ? ms_store_tx(pc->app->store, claim_tx, pc, err) : 0;
}

static int poll_reply(ms_http_req *req, poll_ctx *pc)
{
        size_t n = json_array_size(pc->leases);
        if (n && pc->app->leases_granted)
                metric_inc(pc->app->leases_granted, NULL, n);
        int retry = n || pc->deadline_ms ? 0 : MS_POLL_RETRY_EMPTY_S;
        return ms_http_respond_json(req, 200,
                                    json_pack("{s:O, s:i, s:i}", "directives", pc->leases,
                                              "lease_ttl_seconds", MS_LEASE_TTL_S,
                                              "retry_after_seconds", retry));
}

static int poll_respond(ms_http_req *req, poll_ctx *pc)
{
        err_t err = ERR_INIT;
        if (claim(pc, &err) < 0)
                return api_store_error(req, &err);
        return poll_reply(req, pc);
}

/* A parked long-poll whose client went away must not claim: nobody would receive the
 * lease, and the directive would sit leased until the lease expires. */
static bool client_gone(ms_http_req *req)
{
        int fd = ms_http_req_fd(req);
        if (fd < 0)
                return false;
        struct pollfd p = { .fd = fd, .events = POLLRDHUP };
        return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static int poll_resume(ms_http_req *req, ms_http_wake why, void *ctx)
{
        poll_ctx *pc = ctx;
        if (client_gone(req))
                return ms_http_respond_json(req, 200,
                                            json_pack("{s:[], s:i, s:i}", "directives",
                                                      "lease_ttl_seconds", MS_LEASE_TTL_S,
                                                      "retry_after_seconds", 0));
        if (why == MS_HTTP_WAKE_NOTIFY) {
                /* Something changed for the account, but maybe nothing we can claim (e.g.
                 * the facility is locked): keep waiting out the rest of wait_seconds. */
                int64_t left = pc->deadline_ms - clock_mono_ms();
                err_t err = ERR_INIT;
                if (left > 50 &&
                    ms_http_park(req, pc->topic, left, poll_resume, pc, &err) == 0) {
                        err_t e2 = ERR_INIT;
                        if (claim(pc, &e2) < 0)
                                return api_store_error(req, &e2);
                        if (json_array_size(pc->leases) == 0)
                                return MS_HTTP_PARKED;
                        return poll_reply(req, pc);
                }
        }
        return poll_respond(req, pc);
}

static int poll_profiles(poll_ctx *pc, const json_t *v)
{
        /* §3.2.3: array of strings, a single string accepted, blank → ["untrusted"] */
        const json_t *arr = NULL;
        _cleanup_json_ json_t *owned = NULL;
        if (api_blank(v)) {
                owned = json_pack("[s]", "untrusted");
                arr = owned;
        } else if (json_is_string(v)) {
                owned = json_pack("[s]", json_string_value(v));
                arr = owned;
        } else if (json_is_array(v)) {
                arr = v;
        } else {
                return -1;
        }
        size_t n = json_array_size(arr);
        if (n > 16)
                return -1;
        pc->profiles = calloc(n ? n : 1, sizeof(char *));
        if (!pc->profiles)
                return -1;
        for (size_t i = 0; i < n; i++) {
                json_t *e = json_array_get(arr, i);
                if (!json_is_string(e) || json_string_length(e) > 64)
                        return -1;
                pc->profiles[pc->nprofiles] = strdup(json_string_value(e));
                if (!pc->profiles[pc->nprofiles])
                        return -1;
                pc->nprofiles++;
        }
        return 0;
}

int ms_h_polls(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        poll_ctx *pc = calloc(1, sizeof(*pc));
        if (!pc || ms_http_req_on_done(req, poll_ctx_free, pc) < 0) {
                free(pc);
                return ms_http_respond_error(req, 500, "internal_error", "out of memory");
        }
        pc->app = app;
        pc->leases = json_array();
        int st = ms_auth_territory(app, req, &pc->t);
        if (st)
                return st;
        _cleanup_json_ json_t *body = NULL;
        if ((st = api_body(req, &body)))
                return st;
        _cleanup_json_ json_t *profv = api_param(req, body, "supported_sandbox_profiles");
        if (!pc->leases || poll_profiles(pc, profv) < 0)
                return ms_http_respond_error(req, 422, "invalid_param",
                                             "supported_sandbox_profiles must be an array of "
                                             "at most 16 profile names");
        _cleanup_json_ json_t *maxv = api_param(req, body, "max_directives_to_claim");
        int64_t claims = api_lenient_int(maxv, 1, NULL);
        claims = claims < 1 ? 1 : claims > MS_MAX_CLAIMS ? MS_MAX_CLAIMS : claims;
        /* §7.2 capacity from the last heartbeat — unless the poll itself says how many run
         * now (our additive field): a heartbeat is up to 30 s old, and a stale "all busy"
         * would leave a free daemon without work until the next one (bench/dispatch). */
        int64_t running = territory_running(&pc->t);
        json_t *rs = json_object_get(body, "runtime_status");
        json_t *rd = json_is_object(rs) ? json_object_get(rs, "running_directives") : NULL;
        if (json_is_integer(rd) && json_integer_value(rd) >= 0)
                running = json_integer_value(rd);
        int64_t slots = territory_max_concurrent(&pc->t) - running;
        if (slots <= 0)
                return ms_http_respond_json(req, 200,
                                            json_pack("{s:[], s:i, s:i}", "directives",
                                                      "lease_ttl_seconds", MS_LEASE_TTL_S,
                                                      "retry_after_seconds",
                                                      MS_POLL_RETRY_EMPTY_S));
        pc->limit = (int)(claims < slots ? claims : slots);

        /* Our additive extension (DESIGN D9): wait_seconds turns the poll into a long-poll.
         * Park first, then look: a notify between the two is not lost. */
        _cleanup_json_ json_t *waitv = api_param(req, body, "wait_seconds");
        int64_t wait = api_lenient_int(waitv, 0, NULL);
        if (wait > MS_LONG_POLL_MAX_S)
                wait = MS_LONG_POLL_MAX_S;
        if (wait > 0) {
                err_t err = ERR_INIT;
                str_printf(pc->topic, sizeof(pc->topic), "acct:%s", pc->t.account_id);
                pc->deadline_ms = clock_mono_ms() + wait * 1000;
                if (ms_http_park(req, pc->topic, wait * 1000, poll_resume, pc, &err) == 0) {
                        err_t e2 = ERR_INIT;
                        if (claim(pc, &e2) < 0)
                                return api_store_error(req, &e2);
                        if (json_array_size(pc->leases) == 0)
                                return MS_HTTP_PARKED;
                        return poll_reply(req, pc);   /* answering cancels the park */
                }
                log_warn("long-poll not parked, answering now", LOG_ERR(&err));
        }
        return poll_respond(req, pc);
}

/* ---------------------------------------------------------------- started (§3.2.4) --- */

typedef struct started_ctx {
        ms_app *app;
        const char *id;
        const char *territory_id;
        const char *sandbox_version, *nexus_version;     /* trimmed; NULL = absent */
        reply r;
        bool duplicate;
        char state[32];
} started_ctx;

static int version_mismatch(const char *in, const char *stored)
{
        return in && stored && strcmp(in, stored) != 0;
}

static int started_tx(ms_store *s, void *vc, err_t *err)
{
        started_ctx *c = vc;
        ms_directive d = { 0 };
        int64_t now = clock_now_ms();
        if (ms_directive_get(s, c->id, &d, err) < 0)
                return -1;
        int r = 0;
        bool dup = d.state == MS_DIRECTIVE_RUNNING || ms_directive_state_is_terminal(d.state);
        if (!dup && d.state != MS_DIRECTIVE_LEASED) {
                r = reply_set(&c->r, err, 409, "invalid_state", "directive is %s, expected leased",
                              ms_directive_state_name(d.state));
        } else if (version_mismatch(c->sandbox_version, d.sandbox_version)) {
                r = reply_set(&c->r, err, 409, "invalid_state", "sandbox_version mismatch");
        } else if (version_mismatch(c->nexus_version, d.nexus_version)) {
                r = reply_set(&c->r, err, 409, "invalid_state", "nexus_version mismatch");
        } else if (ms_directive_fill_versions(s, d.id, c->nexus_version, c->sandbox_version, now,
                                              err) < 0) {
                r = -1;
        } else if (dup) {
                c->duplicate = true;
                str_copy(c->state, sizeof(c->state), ms_directive_state_name(d.state));
        } else {
                bool changed = false;
                if (ms_directive_transition(s, d.id, MS_DIRECTIVE_LEASED, MS_DIRECTIVE_RUNNING, now,
                                            &changed, err) < 0) {
                        r = -1;
                } else if (!changed) {
                        r = reply_set(&c->r, err, 409, "invalid_state", "directive changed state");
                } else {
                        str_copy(c->state, sizeof(c->state), "running");
                        json_t *payload = json_pack(
                                "{s:I, s:s, s:o}", "time_to_start_ms",
                                (json_int_t)(now - d.created_at), "territory_id", c->territory_id,
                                "sandbox_version",
                                c->sandbox_version ? json_string(c->sandbox_version) : json_null());
                        ms_audit_new ev = { .account_id = d.account_id, .directive_id = d.id,
                                            .territory_id = c->territory_id,
                                            .event_type = "directive.started", .payload = payload };
                        api_audit(c->app, &ev, now);
                        json_decref(payload);
                }
        }
        ms_directive_clear(&d);
        return r;
}

/* Authenticates a directive report: territory, then the directive token. */
static int report_auth(ms_app *app, ms_http_req *req, ms_territory *t, ms_directive *d,
                       json_t **body)
{
        int st = ms_auth_territory(app, req, t);
        if (st)
                return st;
        st = ms_auth_directive(app, req, t, d);
        if (!st)
                st = api_body(req, body);
        return st;
}

int ms_h_started(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        ms_territory t = { 0 };
        ms_directive d = { 0 };
        _cleanup_json_ json_t *body = NULL;
        int st = report_auth(app, req, &t, &d, &body);
        if (!st) {
                _cleanup_free_ char *sv = api_trimmed(json_object_get(body, "sandbox_version"));
                _cleanup_free_ char *nv = api_trimmed(json_object_get(body, "nexus_version"));
                started_ctx c = { .app = app, .id = d.id, .territory_id = t.id,
                                  .sandbox_version = sv, .nexus_version = nv };
                err_t err = ERR_INIT;
                if (ms_store_tx(app->store, started_tx, &c, &err) < 0)
                        st = reply_send(req, &c.r, &err);
                else
                        st = ms_http_respond_json(req, 200,
                                                  json_pack("{s:b, s:s, s:s, s:b}", "ok", 1,
                                                            "directive_id", d.id, "state", c.state,
                                                            "duplicate", c.duplicate));
        }
        ms_directive_clear(&d);
        ms_territory_clear(&t);
        return st;
}

/* ---------------------------------------------------------------- heartbeat (§3.2.5) -- */

typedef struct dhb_ctx {
        const char *id;
        reply r;
        bool cancel_requested;
} dhb_ctx;

static int dhb_tx(ms_store *s, void *vc, err_t *err)
{
        dhb_ctx *c = vc;
        ms_directive d = { 0 };
        int64_t now = clock_now_ms();
        if (ms_directive_get(s, c->id, &d, err) < 0)
                return -1;
        int r = 0;
        bool changed = false;
        if (d.state != MS_DIRECTIVE_RUNNING)
                r = reply_set(&c->r, err, 409, "invalid_state", "directive is %s, expected running",
                              ms_directive_state_name(d.state));
        else if (ms_directive_renew_lease(s, d.id, now + (int64_t)MS_LEASE_TTL_S * 1000, now,
                                          &changed, err) < 0)
                r = -1;
        else if (!changed)
                r = reply_set(&c->r, err, 409, "invalid_state", "directive changed state");
        c->cancel_requested = d.cancel_requested_at != 0;
        ms_directive_clear(&d);
        return r;
}

int ms_h_directive_heartbeat(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        ms_territory t = { 0 };
        ms_directive d = { 0 };
        _cleanup_json_ json_t *body = NULL;
        int st = report_auth(app, req, &t, &d, &body);
        if (!st) {
                dhb_ctx c = { .id = d.id };
                err_t err = ERR_INIT;
                char *token = NULL;
                if (ms_store_tx(app->store, dhb_tx, &c, &err) < 0)
                        st = reply_send(req, &c.r, &err);
                else if (!(token = api_mint_token(app, d.id, t.id, clock_now_ms(), &err)))
                        st = api_store_error(req, &err);
                else
                        st = ms_http_respond_json(req, 200,
                                                  json_pack("{s:b, s:b, s:s}", "cancel_requested",
                                                            c.cancel_requested, "lease_renewed", 1,
                                                            "directive_token", token));
                free(token);
        }
        ms_directive_clear(&d);
        ms_territory_clear(&t);
        return st;
}

/* ---------------------------------------------------------------- log chunks (§3.2.6) - */

typedef struct chunk_ctx {
        const char *id;
        ms_log_stream stream;
        int64_t seq;
        const uint8_t *bytes;
        size_t len;
        bool truncated;              /* the request's flag */
        /* results */
        bool stored, duplicate, resp_truncated;
        size_t accepted;
} chunk_ctx;

static int chunk_exists(ms_store *s, const chunk_ctx *c, bool *exists, err_t *err)
{
        ms_log_chunk_array l = { 0 };
        if (ms_log_chunk_list(s, c->id, c->stream, c->seq - 1, 1, 1, &l, err) < 0)
                return -1;
        *exists = l.n > 0 && l.items[0].seq == c->seq;
        ms_log_chunk_array_clear(&l);
        return 0;
}

/* Egress audit records have their own budget (MS_EGRESS_MAX_BYTES) and never count against
 * max_output_bytes or the stdout/stderr counters; a chunk is stored whole or not at all, so
 * the JSONL lines stay intact. */
static int egress_chunk_tx(ms_store *s, chunk_ctx *c, int64_t now, err_t *err)
{
        int64_t used = 0;
        if (ms_log_stream_bytes(s, c->id, MS_STREAM_EGRESS, &used, err) < 0)
                return -1;
        if (used + (int64_t)c->len > MS_EGRESS_MAX_BYTES) {
                c->resp_truncated = true;
                return 0;
        }
        ms_log_insert_result res;
        if (ms_log_chunk_insert(s, c->id, c->stream, c->seq, c->bytes, c->len, c->truncated,
                                now, &res, err) < 0)
                return -1;
        c->stored = res == MS_LOG_STORED;
        c->duplicate = !c->stored;
        c->accepted = c->stored ? c->len : 0;
        c->resp_truncated = c->truncated;
        return 0;
}

static int chunk_tx(ms_store *s, void *vc, err_t *err)
{
        chunk_ctx *c = vc;
        c->stored = c->duplicate = c->resp_truncated = false;
        c->accepted = 0;
        ms_directive d = { 0 };
        int64_t now = clock_now_ms();
        bool exists = false;
        if (ms_directive_get(s, c->id, &d, err) < 0)
                return -1;
        int r = chunk_exists(s, c, &exists, err);
        if (r == 0 && exists) {
                c->duplicate = true;
                c->resp_truncated = c->truncated;
                if (c->truncated)
                        r = ms_directive_add_output(s, d.id, c->stream, 0, true, now, err);
        } else if (r == 0 && c->stream == MS_STREAM_EGRESS) {
                r = egress_chunk_tx(s, c, now, err);
        } else if (r == 0) {
                int64_t max_out = ms_directive_max_output(&d);
                int64_t remaining = max_out - (d.stdout_bytes + d.stderr_bytes);
                size_t accepted = remaining <= 0 ? 0
                                  : (uint64_t)remaining < c->len ? (size_t)remaining
                                                                 : c->len;
                if (accepted == 0) {
                        c->resp_truncated = true;
                        r = ms_directive_add_output(s, d.id, c->stream, 0, true, now, err);
                } else {
                        bool trunc = c->truncated || accepted < c->len;
                        ms_log_insert_result res;
                        r = ms_log_chunk_insert(s, d.id, c->stream, c->seq, c->bytes, accepted,
                                                trunc, now, &res, err);
                        if (r == 0 && res != MS_LOG_STORED) {
                                c->duplicate = true;   /* a concurrent insert won */
                                c->resp_truncated = c->truncated;
                        } else if (r == 0) {
                                r = ms_directive_add_output(s, d.id, c->stream,
                                                            (int64_t)accepted, trunc, now, err);
                                c->stored = true;
                                c->accepted = accepted;
                                c->resp_truncated = trunc;
                        }
                }
        }
        ms_directive_clear(&d);
        return r;
}

int ms_h_log_chunks(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        ms_territory t = { 0 };
        ms_directive d = { 0 };
        _cleanup_json_ json_t *body = NULL;
        _cleanup_free_ uint8_t *bytes = NULL;
        int st = report_auth(app, req, &t, &d, &body);
        if (st)
                goto out;
        /* checks in the order of §3.2.6 */
        if (d.state != MS_DIRECTIVE_RUNNING && !ms_directive_state_is_terminal(d.state)) {
                st = ms_http_respond_error(req, 409, "invalid_state",
                                           "directive is %s, expected running or terminal",
                                           ms_directive_state_name(d.state));
                goto out;
        }
        chunk_ctx c = { .id = d.id };
        json_t *sv = json_object_get(body, "stream");
        if (!json_is_string(sv) || ms_log_stream_parse(json_string_value(sv), &c.stream) < 0 ||
            c.stream == MS_STREAM_BOTH) {
                st = ms_http_respond_error(req, 422, "invalid_param",
                                           "stream must be stdout, stderr or egress");
                goto out;
        }
        json_t *seqv = json_object_get(body, "seq");
        if (!seqv || json_is_null(seqv) || api_strict_int(seqv, &c.seq) < 0) {
                st = ms_http_respond_error(req, 422, "invalid_param", "seq must be an integer");
                goto out;
        }
        if (c.seq < 0 || c.seq > INT32_MAX) {
                st = ms_http_respond_error(req, 422, "invalid_param",
                                           c.seq < 0 ? "seq must be >= 0" : "seq is too large");
                goto out;
        }
        json_t *bv = json_object_get(body, "bytes");
        if (bv && !json_is_null(bv) && !json_is_string(bv)) {
                st = ms_http_respond_error(req, 422, "invalid_param", "bytes must be base64");
                goto out;
        }
        const char *b64 = json_is_string(bv) ? json_string_value(bv) : "";
        size_t blen = json_is_string(bv) ? json_string_length(bv) : 0;
        if (blen % 4 != 0) {
                st = ms_http_respond_error(req, 422, "invalid_param", "bytes must be base64");
                goto out;
        }
        size_t pad = blen >= 1 && b64[blen - 1] == '=' ? (blen >= 2 && b64[blen - 2] == '=' ? 2 : 1)
                                                       : 0;
        size_t decoded = blen / 4 * 3 - pad;
        if ((int64_t)decoded > app->cfg.log_chunk_max) {
                st = ms_http_respond_error(req, 422, "invalid_param",
                                           "bytes too large (max %" PRId64 " bytes)",
                                           app->cfg.log_chunk_max);
                goto out;
        }
        err_t err = ERR_INIT;
        if (base64_decode(b64, blen, (size_t)app->cfg.log_chunk_max, &bytes, &c.len, &err) < 0) {
                st = ms_http_respond_error(req, 422, "invalid_param", "invalid base64");
                goto out;
        }
        c.bytes = bytes;
        c.truncated = api_flag(json_object_get(body, "truncated"));
        if (ms_store_tx(app->store, chunk_tx, &c, &err) < 0) {
                st = api_store_error(req, &err);
                goto out;
        }
        st = ms_http_respond_json(req, 200,
                                  json_pack("{s:b, s:s, s:s, s:I, s:b, s:b, s:I, s:b}", "ok", 1,
                                            "directive_id", d.id, "stream",
                                            ms_log_stream_name(c.stream), "seq", (json_int_t)c.seq,
                                            "stored", c.stored, "duplicate", c.duplicate,
                                            "accepted_bytes", (json_int_t)c.accepted, "truncated",
                                            c.resp_truncated));
out:
        ms_directive_clear(&d);
        ms_territory_clear(&t);
        return st;
}

/* ---------------------------------------------------------------- finished (§3.2.7) --- */

typedef struct finished_ctx {
        ms_app *app;
        const char *id;
        const char *territory_id;
        const char *status;
        ms_directive_result f;
        char hash[MS_SHA256_HEX_SIZE];
        const uint8_t *diff;
        size_t difflen;
        bool has_diff;
        reply r;
        bool duplicate;
        char final_state[32];
        char account_id[MS_ID_SIZE];
} finished_ctx;

static int finished_tx(ms_store *s, void *vc, err_t *err)
{
        finished_ctx *c = vc;
        ms_directive d = { 0 };
        int64_t now = clock_now_ms();
        bool unused;
        if (ms_directive_get(s, c->id, &d, err) < 0)
                return -1;
        str_copy(c->account_id, sizeof(c->account_id), d.account_id);
        int r = 0;
        if (ms_directive_state_is_terminal(d.state)) {
                const char *st_name = ms_directive_state_name(d.state);
                bool same = d.finished_status ? strcmp(d.finished_status, c->status) == 0
                                              : strcmp(st_name, c->status) == 0;
                if (same && (!d.result_hash || strcmp(d.result_hash, c->hash) == 0)) {
                        c->duplicate = true;
                        str_copy(c->final_state, sizeof(c->final_state), st_name);
                        if (ms_directive_set_result_hash(s, d.id, c->hash, now, err) < 0 ||
                            ms_facility_unlock(s, d.facility_id, d.id, now, &unused, err) < 0)
                                r = -1;
                } else {
                        r = reply_set(&c->r, err, 409, "invalid_state",
                                      "directive is %s (finished_status=%s), cannot apply "
                                      "finished(status=%s)",
                                      st_name, d.finished_status ? d.finished_status : "null",
                                      c->status);
                }
                ms_directive_clear(&d);
                return r;
        }
        bool changed = false;
        if (d.state == MS_DIRECTIVE_LEASED) {
                /* step 2: implicit start, no directive.started audit */
                if (ms_directive_transition(s, d.id, MS_DIRECTIVE_LEASED, MS_DIRECTIVE_RUNNING, now,
                                            &changed, err) < 0) {
                        ms_directive_clear(&d);
                        return -1;
                }
                d.state = MS_DIRECTIVE_RUNNING;
        }
        if (d.state != MS_DIRECTIVE_RUNNING) {
                r = reply_set(&c->r, err, 409, "invalid_state", "directive is %s, expected running",
                              ms_directive_state_name(d.state));
        } else if (d.result_hash && strcmp(d.result_hash, c->hash) != 0) {
                r = reply_set(&c->r, err, 409, "invalid_state", "result_hash mismatch");
        } else if (c->has_diff &&
                   ms_diff_blob_store(s, d.id, c->diff, c->difflen, now, NULL, &unused, err) < 0) {
                if (err->code && strcmp(err->code, ERR_CONFLICT) == 0)
                        r = reply_set(&c->r, err, 409, "invalid_state", "diff_blob mismatch");
                else
                        r = -1;
        } else if (ms_directive_finish(s, d.id, &c->f, now, &changed, err) < 0) {
                r = -1;
        } else if (!changed) {
                r = reply_set(&c->r, err, 409, "invalid_state", "directive changed state");
        } else if (ms_facility_unlock(s, d.facility_id, d.id, now, &unused, err) < 0) {
                r = -1;
        } else {
                str_copy(c->final_state, sizeof(c->final_state), c->status);
                int64_t end = c->f.finished_at ? c->f.finished_at : now;
                /* §10.1 timing telemetry, issue 4: the terminal event carries both times
                 * (started_at is set by the start event; an implicit start is now) */
                int64_t started = d.started_at ? d.started_at : now;
                json_t *payload = json_pack(
                        "{s:s, s:o, s:I, s:I, s:s}", "status", c->status, "exit_code",
                        c->f.set_exit_code && !c->f.exit_code_null
                                ? json_integer(c->f.exit_code)
                                : json_null(),
                        "total_duration_ms", (json_int_t)(end - d.created_at),
                        "time_to_start_ms", (json_int_t)(started - d.created_at), "territory_id",
                        c->territory_id);
                ms_audit_new ev = { .account_id = d.account_id, .directive_id = d.id,
                                    .territory_id = c->territory_id,
                                    .event_type = "directive.finished", .payload = payload };
                api_audit(c->app, &ev, now);
                json_decref(payload);
        }
        ms_directive_clear(&d);
        return r;
}

/* The idempotency hash of a finished report (§3.2.7): SHA-256 of canonical JSON. */
static int result_hash(const json_t *body, const char *status, const finished_ctx *c,
                       char out[MS_SHA256_HEX_SIZE])
{
        json_t *manifest = json_object_get(body, "artifacts_manifest");
        json_t *diff = json_null();
        if (c->has_diff) {
                char sha[65];
                crypto_sha256_hex(c->diff, c->difflen, sha);
                diff = json_pack("{s:I, s:s}", "bytesize", (json_int_t)c->difflen, "sha256", sha);
        }
        json_t *sb = json_object_get(body, "snapshot_before");
        json_t *sa = json_object_get(body, "snapshot_after");
        _cleanup_json_ json_t *man = json_is_object(manifest) ? json_incref(manifest)
                                                              : json_object();
        _cleanup_json_ json_t *h = json_pack(
                "{s:O, s:o, s:b, s:o, s:O, s:O, s:s, s:b, s:b}", "artifacts_manifest",
                man, "diff", diff,
                "diff_truncated", c->f.diff_truncated, "exit_code",
                c->f.set_exit_code && !c->f.exit_code_null ? json_integer(c->f.exit_code)
                                                           : json_null(),
                "snapshot_after", sa ? sa : json_null(), "snapshot_before", sb ? sb : json_null(),
                "status", status, "stderr_truncated", c->f.stderr_truncated, "stdout_truncated",
                c->f.stdout_truncated);
        if (!h)
                return -1;
        _cleanup_free_ char *canon = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
        if (!canon)
                return -1;
        return crypto_sha256_hex(canon, strlen(canon), out);
}

static const char *const finished_statuses[] = { "succeeded", "failed", "canceled", "timed_out",
                                                 NULL };

int ms_h_finished(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        ms_territory t = { 0 };
        ms_directive d = { 0 };
        _cleanup_json_ json_t *body = NULL;
        _cleanup_free_ uint8_t *diff = NULL;
        _cleanup_free_ char *status = NULL;
        _cleanup_json_ json_t *empty_manifest = json_object();
        int st = report_auth(app, req, &t, &d, &body);
        if (st)
                goto out;
        finished_ctx c = { .app = app, .id = d.id, .territory_id = t.id };
        status = api_trimmed(json_object_get(body, "status"));
        size_t si = 0;
        for (; status && finished_statuses[si]; si++)
                if (strcmp(finished_statuses[si], status) == 0)
                        break;
        if (!status || !finished_statuses[si]) {
                st = ms_http_respond_error(req, 422, "invalid_param",
                                           "status must be succeeded/failed/canceled/timed_out");
                goto out;
        }
        c.status = status;
        ms_directive_state_parse(status, &c.f.state);
        json_t *ev = json_object_get(body, "exit_code");
        if (ev) {
                c.f.set_exit_code = true;
                if (json_is_null(ev)) {
                        c.f.exit_code_null = true;
                } else if (api_strict_int(ev, &c.f.exit_code) < 0 || c.f.exit_code < INT32_MIN ||
                           c.f.exit_code > INT32_MAX) {
                        st = ms_http_respond_error(req, 422, "invalid_param",
                                                   "exit_code must be an integer");
                        goto out;
                }
        }
        c.f.stdout_truncated = api_flag(json_object_get(body, "stdout_truncated"));
        c.f.stderr_truncated = api_flag(json_object_get(body, "stderr_truncated"));
        c.f.diff_truncated = api_flag(json_object_get(body, "diff_truncated"));
        json_t *dv = json_object_get(body, "diff_base64");
        if (!api_blank(dv)) {
                if (!json_is_string(dv) || json_string_length(dv) % 4 != 0) {
                        st = ms_http_respond_error(req, 422, "invalid_param",
                                                   "diff_base64 must be base64");
                        goto out;
                }
                const char *b = json_string_value(dv);
                size_t blen = json_string_length(dv);
                size_t pad = b[blen - 1] == '=' ? (b[blen - 2] == '=' ? 2 : 1) : 0;
                int64_t max_diff = ms_directive_max_diff(&d);
                if ((int64_t)(blen / 4 * 3 - pad) > max_diff) {
                        st = ms_http_respond_error(req, 422, "invalid_param",
                                                   "diff_base64 too large (max %" PRId64 " bytes)",
                                                   max_diff);
                        goto out;
                }
                err_t e = ERR_INIT;
                if (base64_decode(b, blen, (size_t)max_diff, &diff, &c.difflen, &e) < 0) {
                        st = ms_http_respond_error(req, 422, "invalid_param", "invalid base64");
                        goto out;
                }
                c.diff = diff;
                c.has_diff = c.difflen > 0;
        }
        json_t *sb = json_object_get(body, "snapshot_before");
        json_t *sa = json_object_get(body, "snapshot_after");
        if ((sb && !json_is_null(sb) && !json_is_string(sb)) ||
            (sa && !json_is_null(sa) && !json_is_string(sa))) {
                st = ms_http_respond_error(req, 422, "invalid_param",
                                           "snapshot_before/snapshot_after must be strings");
                goto out;
        }
        c.f.set_snapshot_before = sb != NULL;
        c.f.snapshot_before = json_is_string(sb) ? json_string_value(sb) : NULL;
        c.f.set_snapshot_after = sa != NULL;
        c.f.snapshot_after = json_is_string(sa) ? json_string_value(sa) : NULL;
        json_t *man = json_object_get(body, "artifacts_manifest");
        if (man) {
                if (!json_is_null(man) && !json_is_object(man)) {
                        st = ms_http_respond_error(req, 422, "invalid_param",
                                                   "artifacts_manifest must be an object");
                        goto out;
                }
                c.f.artifacts_manifest = json_is_object(man) ? man : empty_manifest;
        }
        json_t *fa = json_object_get(body, "finished_at");
        if (!api_blank(fa)) {
                err_t e = ERR_INIT;
                if (!json_is_string(fa) ||
                    rfc3339_parse(json_string_value(fa), &c.f.finished_at, &e) < 0) {
                        /* Recommended over the reference's silent null (§3.2.7 step 6) */
                        st = ms_http_respond_error(req, 422, "invalid_param",
                                                   "finished_at: %s", e.msg[0] ? e.msg
                                                                    : "must be a string");
                        goto out;
                }
        }
        if (result_hash(body, status, &c, c.hash) < 0) {
                st = ms_http_respond_error(req, 500, "internal_error", "cannot hash the report");
                goto out;
        }
        c.f.result_hash = c.hash;
        err_t err = ERR_INIT;
        if (ms_store_tx(app->store, finished_tx, &c, &err) < 0) {
                st = reply_send(req, &c.r, &err);
                goto out;
        }
        if (!c.duplicate)
                /* the facility lock is free again: a parked poll may now find work */
                ms_app_notify_account(app, c.account_id);
        st = ms_http_respond_json(req, 200,
                                  json_pack("{s:b, s:s, s:s, s:b}", "ok", 1, "directive_id", d.id,
                                            "final_state", c.final_state, "duplicate",
                                            c.duplicate));
out:
        ms_directive_clear(&d);
        ms_territory_clear(&t);
        return st;
}

/* ---------------------------------------------------------------- token (extension) --- */

/* Our additive endpoint (DESIGN D9): a territory fetches a fresh directive token for a
 * directive bound to it, authenticated by its territory identity alone. nexusd uses it to
 * replay a finished report from its WAL after the original token expired, so the WAL never
 * has to hold a token. A directive re-queued by the reaper is no longer bound: 403. */
int ms_h_directive_token(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        ms_territory t = { 0 };
        ms_directive d = { 0 };
        int st = ms_auth_territory(app, req, &t);
        if (st)
                return st;
        const char *id = ms_http_req_param(req, "id");
        err_t err = ERR_INIT;
        char *token = NULL;
        if (!id || !uuid_is_valid(id) || ms_directive_get(app->store, id, &d, &err) < 0) {
                st = err_is_set(&err) && strcmp(err.code, ERR_NOT_FOUND) != 0
                             ? api_store_error(req, &err)
                             : ms_http_respond_error(req, 404, "not_found", "directive not found");
        } else if (strcmp(d.account_id, t.account_id) != 0) {
                /* another account's directive: indistinguishable from a missing one */
                st = ms_http_respond_error(req, 404, "not_found", "directive not found");
        } else if (strcmp(d.territory_id, t.id) != 0 || d.state == MS_DIRECTIVE_QUEUED ||
                   d.state == MS_DIRECTIVE_AWAITING_APPROVAL) {
                st = ms_http_respond_error(req, 403, "forbidden", "territory mismatch");
        } else if (!(token = api_mint_token(app, d.id, t.id, clock_now_ms(), &err))) {
                st = api_store_error(req, &err);
        } else {
                st = ms_http_respond_json(req, 200, json_pack("{s:s, s:s}", "directive_id", d.id,
                                                              "directive_token", token));
        }
        free(token);
        ms_directive_clear(&d);
        ms_territory_clear(&t);
        return st;
}
