/* domain/policy_api.c — the policy API under /mothership/api/v1/policies (spec mothership
 * §3.3.1, §6.1; issue 4 item 1): list, show, create, partial update, soft delete, all scoped to
 * the caller's account.
 *
 * Stricter than the reference, on purpose:
 *   - every section is validated by the policy engine (mspol_validate_section: net.allow
 *     entries with the shared allowlist grammar, NetCapabilityV1 rules, fs path bounds);
 *   - a scope_id must name an entity of the caller's account (the reference stores any id):
 *     Account = the caller's account, User = a user of it, Conduits::Facility = one of its
 *     facilities. Missing and foreign ids get the same 422, so nothing leaks across accounts;
 *   - a policy without scope_type is stored as scope Account of the caller's account: over
 *     HTTP nobody creates a global policy (those come from `mothership admin policy
 *     create-global`), and the reference's "unscoped account policy" applies exactly like an
 *     Account-scoped one (§6.5);
 *   - `device` is accepted for the caller's own scopes (the reference silently drops it, §13.11
 *     S15 documents that gap) and shown in the representation;
 *   - policy changes are audited (policy.created / policy.updated / policy.deactivated, with
 *     the actor): the reference writes no event for policy CRUD (§10.1). */
#include "domain/handlers.h"

#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/str.h"
#include "core/uuid.h"
#include "domain/api.h"
#include "domain/auth.h"
#include "policy/policy.h"

#define POLICY_NAME_MAX 255

static const char *const scope_types[] = { "Account", "User", "Conduits::Facility", NULL };

/* The six JSON sections of a policy, in representation order. */
static const char *const sections[] = { "fs", "net", "secrets", "sandbox_profile_rules",
                                        "approval", "device", NULL };
#define NSECTIONS 6

static bool scope_type_known(const char *s)
{
        for (size_t i = 0; s && scope_types[i]; i++)
                if (strcmp(scope_types[i], s) == 0)
                        return true;
        return false;
}

static json_t *section_of(const ms_policy *p, size_t i)
{
        const json_t *v[NSECTIONS] = { p->fs, p->net, p->secrets, p->sandbox_profile_rules,
                                       p->approval, p->device };
        return json_is_object(v[i]) ? json_deep_copy(v[i]) : json_object();
}

/* §3.3.1 policy representation, plus `device` (settable here, unlike the reference). */
static json_t *policy_json(const ms_policy *p)
{
        json_t *o = json_pack("{s:s, s:s, s:I, s:b, s:o, s:o, s:o, s:o}", "id", p->id, "name",
                              p->name ? p->name : "", "priority", (json_int_t)p->priority,
                              "active", p->active, "scope_type",
                              p->scope_type ? json_string(p->scope_type) : json_null(),
                              "scope_id", p->scope_id[0] ? json_string(p->scope_id) : json_null(),
                              "created_at", api_ts(p->created_at), "updated_at",
                              api_ts(p->updated_at));
        for (size_t i = 0; o && sections[i]; i++)
                json_object_set_new(o, sections[i], section_of(p, i));
        return o;
}

static int validation_failed(ms_http_req *req, json_t *details)
{
        /* detail: the messages in one line, for clients that only print `detail` */
        char detail[1024] = "";
        size_t i;
        json_t *m;
        json_array_foreach(details, i, m) {
                size_t used = strlen(detail);
                int n = snprintf(detail + used, sizeof(detail) - used, "%s%s", i ? "; " : "",
                                 json_string_value(m));
                if (n < 0 || (size_t)n >= sizeof(detail) - used)
                        break;
        }
        return ms_http_respond_json(req, 422, json_pack("{s:s, s:s, s:O}", "error",
                                                        "validation_failed", "detail", detail,
                                                        "details", details));
}

static void add_detail(json_t *details, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_detail(json_t *details, const char *fmt, ...)
{
        char msg[600];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (n >= 0)
                json_array_append_new(details, json_string(msg));
}

/* A policy being built from the stored one (update) or the defaults (create) plus the body. */
typedef struct policy_draft {
        char *name;
        int64_t priority;
        char *scope_type;            /* NULL = not given: Account of the caller */
        char scope_id[MS_ID_SIZE];
        bool active;
        json_t *sec[NSECTIONS];      /* owned; never NULL once drafted */
        json_t *changed;             /* names of the keys the body set (audit payload) */
} policy_draft;

static void draft_clear(policy_draft *d)
{
        FREE_AND_NULL(d->name);
        FREE_AND_NULL(d->scope_type);
        for (size_t i = 0; i < NSECTIONS; i++)
                json_decref(d->sec[i]);
        json_decref(d->changed);
        memset(d, 0, sizeof(*d));
}

static int draft_from(policy_draft *d, const ms_policy *p)
{
        memset(d, 0, sizeof(*d));
        d->active = p ? p->active : true;
        d->priority = p ? p->priority : 0;
        d->changed = json_array();
        if (p) {
                d->name = p->name ? strdup(p->name) : NULL;
                d->scope_type = p->scope_type ? strdup(p->scope_type) : NULL;
                str_copy(d->scope_id, sizeof(d->scope_id), p->scope_id);
        }
        for (size_t i = 0; i < NSECTIONS; i++)
                d->sec[i] = p ? section_of(p, i) : json_object();
        for (size_t i = 0; i < NSECTIONS; i++)
                if (!d->sec[i])
                        return -1;
        return d->changed ? 0 : -1;
}

/* §0.2 integer strings: optional sign and decimal digits. */
static int priority_of(const json_t *v, int64_t *out)
{
        if (json_is_integer(v)) {
                *out = json_integer_value(v);
        } else if (json_is_string(v)) {
                const char *s = json_string_value(v);
                if (*s == '+')
                        s++;
                if (str_to_int64(s, INT32_MIN, INT32_MAX, out) < 0)
                        return -1;
        } else {
                return -1;   /* null, reals, booleans, objects (§6.1: null is rejected) */
        }
        return *out >= INT32_MIN && *out <= INT32_MAX ? 0 : -1;
}

/* Applies the body's accepted fields (§3.3.1) to the draft; messages go to details. */
static void draft_apply(policy_draft *d, const json_t *body, json_t *details)
{
        json_t *v;
        if ((v = json_object_get(body, "name"))) {
                json_array_append_new(d->changed, json_string("name"));
                if (!json_is_string(v) || str_is_blank(json_string_value(v))) {
                        add_detail(details, "name can't be blank");
                } else if (json_string_length(v) > POLICY_NAME_MAX ||
                           strlen(json_string_value(v)) != json_string_length(v)) {
                        add_detail(details, "name must be at most %d bytes, without NUL",
                                   POLICY_NAME_MAX);
                } else {
                        free(d->name);
                        d->name = strdup(json_string_value(v));
                }
        }
        if ((v = json_object_get(body, "priority"))) {
                json_array_append_new(d->changed, json_string("priority"));
                int64_t p;
                if (priority_of(v, &p) < 0)
                        add_detail(details, "priority must be an integer between %d and %d",
                                   INT32_MIN, INT32_MAX);
                else
                        d->priority = p;
        }
        if ((v = json_object_get(body, "scope_type"))) {
                json_array_append_new(d->changed, json_string("scope_type"));
                if (json_is_null(v)) {
                        FREE_AND_NULL(d->scope_type);
                } else if (!json_is_string(v) || !scope_type_known(json_string_value(v))) {
                        add_detail(details, "scope_type must be one of Account, User, "
                                            "Conduits::Facility");
                } else {
                        free(d->scope_type);
                        d->scope_type = strdup(json_string_value(v));
                }
        }
        if ((v = json_object_get(body, "scope_id"))) {
                json_array_append_new(d->changed, json_string("scope_id"));
                if (json_is_null(v))
                        d->scope_id[0] = '\0';
                else if (!json_is_string(v) || !uuid_is_valid(json_string_value(v)))
                        add_detail(details, "scope_id must be a UUID");
                else
                        str_copy(d->scope_id, sizeof(d->scope_id), json_string_value(v));
        }
        if ((v = json_object_get(body, "active")) && !json_is_null(v)) {
                json_array_append_new(d->changed, json_string("active"));
                if (!json_is_boolean(v))
                        add_detail(details, "active must be true or false");
                else
                        d->active = json_is_true(v);
        }
        for (size_t i = 0; sections[i]; i++) {
                if (!(v = json_object_get(body, sections[i])))
                        continue;
                json_array_append_new(d->changed, json_string(sections[i]));
                char why[512];
                if (json_is_null(v)) {
                        /* null = absent (§0.2): the section is empty. Other non-objects
                         * ("" / [] / false) are refused by the validator, stricter than REF */
                        json_decref(d->sec[i]);
                        d->sec[i] = json_object();
                } else if (mspol_validate_section(sections[i], v, why, sizeof(why)) < 0) {
                        /* also refuses a non-object ("<section> must be an object") */
                        add_detail(details, "%s", why);
                } else {
                        json_decref(d->sec[i]);
                        d->sec[i] = json_deep_copy(v);
                }
        }
}

/* The scope must name something of the caller's account (stricter than REF, see the top). */
static int draft_check_scope(ms_app *app, policy_draft *d, const ms_user *caller,
                             json_t *details, err_t *err)
{
        if (!d->scope_type) {
                d->scope_type = strdup("Account");
                if (!d->scope_type)
                        return err_setc(err, ERR_INTERNAL, "out of memory");
        }
        if (strcmp(d->scope_type, "Account") == 0) {
                if (!d->scope_id[0])
                        str_copy(d->scope_id, sizeof(d->scope_id), caller->account_id);
                if (strcmp(d->scope_id, caller->account_id) != 0)
                        add_detail(details, "scope_id must be your account's id for scope_type "
                                            "Account");
                return 0;
        }
        bool user = strcmp(d->scope_type, "User") == 0;
        if (!d->scope_id[0]) {
                add_detail(details, "scope_id is required for scope_type %s", d->scope_type);
                return 0;
        }
        int r;
        if (user) {
                ms_user u = { 0 };
                r = ms_user_get(app->store, d->scope_id, &u, err);
                if (r == 0 && strcmp(u.account_id, caller->account_id) != 0) {
                        r = -1;
                        err_setc(err, ERR_NOT_FOUND, "user of another account");
                }
                ms_user_clear(&u);
        } else {
                ms_facility f = { 0 };
                r = ms_facility_get(app->store, caller->account_id, d->scope_id, &f, err);
                ms_facility_clear(&f);
        }
        if (r < 0) {
                if (!err->code || strcmp(err->code, ERR_NOT_FOUND) != 0)
                        return -1;
                err_clear(err);
                add_detail(details, "scope_id must name a %s of your account",
                           user ? "user" : "facility");
        }
        return 0;
}

static void draft_fields(const policy_draft *d, const char *account_id, ms_policy_fields *f)
{
        memset(f, 0, sizeof(*f));
        f->account_id = account_id;
        f->scope_type = d->scope_type;
        f->scope_id = d->scope_id[0] ? d->scope_id : NULL;
        f->priority = d->priority;
        f->name = d->name;
        f->fs = d->sec[0];
        f->net = d->sec[1];
        f->secrets = d->sec[2];
        f->sandbox_profile_rules = d->sec[3];
        f->approval = d->sec[4];
        f->device = d->sec[5];
        f->inactive = !d->active;
}

static void policy_audit(ms_app *app, const ms_user *caller, const char *type,
                         const ms_policy *p, json_t *changed)
{
        json_t *payload = json_pack("{s:s, s:s, s:o, s:o, s:I, s:b}", "policy_id", p->id,
                                    "name", p->name ? p->name : "", "scope_type",
                                    p->scope_type ? json_string(p->scope_type) : json_null(),
                                    "scope_id",
                                    p->scope_id[0] ? json_string(p->scope_id) : json_null(),
                                    "priority", (json_int_t)p->priority, "active", p->active);
        if (payload && changed)
                json_object_set(payload, "fields", changed);
        ms_audit_new ev = { .account_id = caller->account_id, .actor_id = caller->id,
                            .event_type = type, .payload = payload };
        api_audit(app, &ev, clock_now_ms());
        json_decref(payload);
}

/* Reads {id} of the caller's account (globals and other accounts: 404 "policy not found"). */
static int load_policy(ms_app *app, ms_http_req *req, const ms_user *caller, ms_policy *p)
{
        const char *id = ms_http_req_param(req, "id");
        err_t err = ERR_INIT;
        if (!id || !uuid_is_valid(id) ||
            ms_policy_get(app->store, caller->account_id, id, p, &err) < 0) {
                if (err_is_set(&err) && strcmp(err.code, ERR_NOT_FOUND) != 0)
                        return api_store_error(req, &err);
                return api_not_found(req, "policy");
        }
        return 0;
}

int ms_h_policy_list(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        ms_user u = { 0 };
        int st = ms_auth_user(app, req, &u);
        if (st)
                return st;
        ms_policy_filter f = { .account_id = u.account_id };
        const char *q;
        if ((q = ms_http_req_query(req, "scope_type")) && !str_is_blank(q)) {
                if (!scope_type_known(q)) {
                        st = ms_http_respond_error(req, 422, "invalid_param",
                                                   "scope_type must be one of Account, User, "
                                                   "Conduits::Facility");
                        goto out;
                }
                f.scope_type = q;
        }
        if ((q = ms_http_req_query(req, "scope_id")) && !str_is_blank(q)) {
                if (!uuid_is_valid(q)) {
                        st = ms_http_respond_error(req, 422, "invalid_param",
                                                   "scope_id must be a UUID");
                        goto out;
                }
                f.scope_id = q;
        }
        /* §3.3.1: inactive ones only with include_inactive exactly "true"; our `active`
         * filter (true|false) picks one side */
        q = ms_http_req_query(req, "include_inactive");
        f.include_inactive = q && strcmp(q, "true") == 0;
        int only = -1;
        if ((q = ms_http_req_query(req, "active"))) {
                if (strcmp(q, "true") && strcmp(q, "false")) {
                        st = ms_http_respond_error(req, 422, "invalid_param",
                                                   "active must be true or false");
                        goto out;
                }
                only = strcmp(q, "true") == 0;
                f.include_inactive = true;
        }
        ms_policy_array l = { 0 };
        err_t err = ERR_INIT;
        if (ms_policy_list(app->store, &f, &l, &err) < 0) {
                st = api_store_error(req, &err);
                goto out;
        }
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < l.n; i++)
                if (only < 0 || (int)l.items[i].active == only)
                        json_array_append_new(arr, policy_json(&l.items[i]));
        ms_policy_array_clear(&l);
        st = ms_http_respond_json(req, 200, json_pack("{s:o}", "policies", arr));
out:
        ms_user_clear(&u);
        return st;
}

int ms_h_policy_show(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        ms_user u = { 0 };
        ms_policy p = { 0 };
        int st = ms_auth_user(app, req, &u);
        if (!st && !(st = load_policy(app, req, &u, &p)))
                st = ms_http_respond_json(req, 200, policy_json(&p));
        ms_policy_clear(&p);
        ms_user_clear(&u);
        return st;
}

int ms_h_policy_create(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        ms_user u = { 0 };
        ms_policy p = { 0 };
        policy_draft d = { 0 };
        _cleanup_json_ json_t *body = NULL;
        _cleanup_json_ json_t *details = json_array();
        int st = ms_auth_user(app, req, &u);
        if (st || (st = api_body(req, &body)))
                goto out;
        err_t err = ERR_INIT;
        if (!details || draft_from(&d, NULL) < 0) {
                st = ms_http_respond_error(req, 500, "internal_error", "out of memory");
                goto out;
        }
        draft_apply(&d, body, details);
        if (!d.name && !json_object_get(body, "name"))
                add_detail(details, "name can't be blank");
        if (draft_check_scope(app, &d, &u, details, &err) < 0) {
                st = api_store_error(req, &err);
                goto out;
        }
        if (json_array_size(details)) {
                st = validation_failed(req, details);
                goto out;
        }
        ms_policy_fields f;
        draft_fields(&d, u.account_id, &f);
        char id[MS_ID_SIZE];
        if (ms_policy_create(app->store, &f, MS_NOW, id, &err) < 0 ||
            ms_policy_get(app->store, u.account_id, id, &p, &err) < 0) {
                st = api_store_error(req, &err);
                goto out;
        }
        policy_audit(app, &u, "policy.created", &p, NULL);
        st = ms_http_respond_json(req, 201, policy_json(&p));
out:
        draft_clear(&d);
        ms_policy_clear(&p);
        ms_user_clear(&u);
        return st;
}

/* PATCH/PUT: read, apply, check, write in one transaction, so that two concurrent partial
 * updates never lose each other's fields. */
typedef struct update_ctx {
        ms_app *app;
        const ms_user *caller;
        const char *id;
        const json_t *body;
        json_t *details;
        json_t *changed;             /* the keys the body set (copied out for the audit) */
        bool missing;
        ms_policy after;
} update_ctx;

static int update_tx(ms_store *s, void *vc, err_t *err)
{
        update_ctx *x = vc;
        ms_policy before = { 0 };
        policy_draft d = { 0 };
        json_array_clear(x->details);
        ms_policy_clear(&x->after);
        if (ms_policy_get(s, x->caller->account_id, x->id, &before, err) < 0) {
                x->missing = err->code && strcmp(err->code, ERR_NOT_FOUND) == 0;
                return -1;
        }
        int r = -1;
        if (draft_from(&d, &before) < 0) {
                err_setc(err, ERR_INTERNAL, "out of memory");
                goto out;
        }
        draft_apply(&d, x->body, x->details);
        if (draft_check_scope(x->app, &d, x->caller, x->details, err) < 0)
                goto out;
        if (json_array_size(x->details)) {
                err_setc(err, ERR_INVALID, "validation failed");
                goto out;
        }
        ms_policy_fields f;
        draft_fields(&d, NULL, &f);
        if (ms_policy_update(s, before.id, &f, MS_NOW, err) < 0 ||
            ms_policy_get(s, x->caller->account_id, before.id, &x->after, err) < 0)
                goto out;
        json_decref(x->changed);
        x->changed = json_incref(d.changed);
        r = 0;
out:
        draft_clear(&d);
        ms_policy_clear(&before);
        return r;
}

int ms_h_policy_update(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        ms_user u = { 0 };
        _cleanup_json_ json_t *body = NULL;
        _cleanup_json_ json_t *details = json_array();
        update_ctx x = { .app = app, .caller = &u, .details = details };
        int st = ms_auth_user(app, req, &u);
        if (st || (st = api_body(req, &body)))
                goto out;
        x.id = ms_http_req_param(req, "id");
        x.body = body;
        err_t err = ERR_INIT;
        if (!details) {
                st = ms_http_respond_error(req, 500, "internal_error", "out of memory");
                goto out;
        }
        if (!x.id || !uuid_is_valid(x.id)) {
                st = api_not_found(req, "policy");
                goto out;
        }
        if (ms_store_tx(app->store, update_tx, &x, &err) < 0) {
                if (x.missing)
                        st = api_not_found(req, "policy");
                else if (json_array_size(details))
                        st = validation_failed(req, details);
                else
                        st = api_store_error(req, &err);
                goto out;
        }
        policy_audit(app, &u, "policy.updated", &x.after, x.changed);
        st = ms_http_respond_json(req, 200, policy_json(&x.after));
out:
        json_decref(x.changed);
        ms_policy_clear(&x.after);
        ms_user_clear(&u);
        return st;
}

/* §3.3.1: soft delete (active = false). */
int ms_h_policy_delete(ms_http_req *req, void *vapp)
{
        ms_app *app = vapp;
        ms_user u = { 0 };
        ms_policy p = { 0 };
        int st = ms_auth_user(app, req, &u);
        if (st || (st = load_policy(app, req, &u, &p)))
                goto out;
        err_t err = ERR_INIT;
        if (ms_policy_set_active(app->store, p.id, false, MS_NOW, &err) < 0) {
                st = api_store_error(req, &err);
                goto out;
        }
        bool was_active = p.active;
        p.active = false;
        if (was_active)
                policy_audit(app, &u, "policy.deactivated", &p, NULL);
        st = ms_http_respond_json(req, 200, json_pack("{s:s, s:b}", "id", p.id, "active", 0));
out:
        ms_policy_clear(&p);
        ms_user_clear(&u);
        return st;
}
