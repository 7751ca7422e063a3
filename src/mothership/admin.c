/* mothership/admin.c — see admin.h. */
#include "admin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "cli_config.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/str.h"
#include "jobs/jobs.h"
#include "policy/policy.h"
#include "store/store.h"

#define ADMIN_MAX_POS 4
#define ADMIN_MAX_FLAGS 16
#define ADMIN_POLICY_FILE_MAX (1024 * 1024)   /* policy documents are small */
#define ADMIN_AUDIT_MAX 100000                /* audit list: events printed at most */
#define ADMIN_MAX_TTL_S (10LL * 366 * 86400)  /* enrollment token TTL */
#define ADMIN_MAX_AGO_S (10LL * 366 * 86400)  /* lease expire --ago-seconds */

typedef struct admin_args {
        const char *pos[ADMIN_MAX_POS];
        size_t npos;
        const char *names[ADMIN_MAX_FLAGS];
        const char *values[ADMIN_MAX_FLAGS];
        size_t nflags;
        const char *data_dir;
} admin_args;

typedef struct admin_ctx {
        const admin_args *a;
        ms_store *store;          /* opened on first use, after the arguments were checked */
        json_t *out;              /* the object printed on success */
} admin_ctx;

/* Returns 0, -1 (runtime error) or MS_CLI_USAGE, with err set on failure. */
typedef int (*admin_fn)(admin_ctx *c, err_t *err);

typedef struct admin_cmd {
        const char *w1, *w2;      /* command words; w2 NULL for a one-word command */
        const char *flags[8];     /* accepted flags besides --data-dir, NULL-terminated */
        size_t npos;              /* positional arguments after the words */
        admin_fn fn;
        const char *usage;
} admin_cmd;

/* The value of a flag (the last occurrence), or NULL. */
static const char *arg(const admin_args *a, const char *name)
{
        const char *v = NULL;
        for (size_t i = 0; i < a->nflags; i++)
                if (strcmp(a->names[i], name) == 0)
                        v = a->values[i];
        return v;
}

static int need(const admin_args *a, const char *name, const char **out, err_t *err)
{
        *out = arg(a, name);
        if (!*out) {
                err_set(err, "--%s is required", name);
                return MS_CLI_USAGE;
        }
        return 0;
}

static int admin_store(admin_ctx *c, err_t *err)
{
        if (c->store)
                return 0;
        if (ms_store_open(c->a->data_dir, NULL, &c->store, err) < 0)
                return err_wrap(err, "open store in %s", c->a->data_dir);
        return 0;
}

/* ---------------------------------------------------------------- JSON of rows ------- */

static json_t *j_ts(int64_t ms)
{
        char t[RFC3339_MS_LEN];
        if (ms == 0 || rfc3339_format_ms(ms, t, sizeof(t)) < 0)
                return json_null();
        return json_string(t);
}

static json_t *j_str(const char *s)
{
        return s ? json_string(s) : json_null();
}

/* "" stands for NULL in id fields (store.h) */
static json_t *j_id(const char *id)
{
        return id && *id ? json_string(id) : json_null();
}

static json_t *j_json(json_t *v)
{
        return v ? json_incref(v) : json_null();
}

typedef struct jfield {
        const char *key;
        json_t *value;            /* new reference (NULL only on ENOMEM) */
} jfield;

/* Builds an object from fields (consuming every value, also on failure). */
static json_t *j_object(const jfield *f, size_t n)
{
        json_t *o = json_object();
        bool ok = o != NULL;
        for (size_t i = 0; i < n; i++) {
                if (ok && f[i].value)
                        ok = json_object_set_new(o, f[i].key, f[i].value) == 0;
                else {
                        ok = false;
                        json_decref(f[i].value);
                }
        }
        if (!ok) {
                json_decref(o);
                return NULL;
        }
        return o;
}

#define J_OBJECT(...) j_object((const jfield[]){ __VA_ARGS__ }, \
                               sizeof((const jfield[]){ __VA_ARGS__ }) / sizeof(jfield))

static json_t *directive_json(const ms_directive *d)
{
        return J_OBJECT(
                { "id", json_string(d->id) },
                { "account_id", j_id(d->account_id) },
                { "facility_id", j_id(d->facility_id) },
                { "territory_id", j_id(d->territory_id) },
                { "requested_by_user_id", j_id(d->requested_by_user_id) },
                { "approved_by_user_id", j_id(d->approved_by_user_id) },
                { "state", j_str(ms_directive_state_name(d->state)) },
                { "sandbox_profile", j_str(d->sandbox_profile) },
                { "command", j_str(d->command) },
                { "shell", j_str(d->shell) },
                { "cwd", j_str(d->cwd) },
                { "timeout_seconds", json_integer(d->timeout_seconds) },
                { "limits", j_json(d->limits) },
                { "requested_capabilities", j_json(d->requested_capabilities) },
                { "effective_capabilities", j_json(d->effective_capabilities) },
                { "policy_snapshot", j_json(d->policy_snapshot) },
                { "env_allowlist", j_json(d->env_allowlist) },
                { "env_refs", j_json(d->env_refs) },
                { "runtime_ref", j_str(d->runtime_ref) },
                { "egress_proxy_policy_snapshot", j_json(d->egress_proxy_policy_snapshot) },
                { "exit_code", d->has_exit_code ? json_integer(d->exit_code) : json_null() },
                { "finished_status", j_str(d->finished_status) },
                { "stdout_truncated", json_boolean(d->stdout_truncated) },
                { "stderr_truncated", json_boolean(d->stderr_truncated) },
                { "diff_truncated", json_boolean(d->diff_truncated) },
                { "stdout_bytes", json_integer(d->stdout_bytes) },
                { "stderr_bytes", json_integer(d->stderr_bytes) },
                { "result_hash", j_str(d->result_hash) },
                { "snapshot_before", j_str(d->snapshot_before) },
                { "snapshot_after", j_str(d->snapshot_after) },
                { "artifacts_manifest", j_json(d->artifacts_manifest) },
                { "nexus_version", j_str(d->nexus_version) },
                { "sandbox_version", j_str(d->sandbox_version) },
                { "lease_expires_at", j_ts(d->lease_expires_at) },
                { "last_heartbeat_at", j_ts(d->last_heartbeat_at) },
                { "cancel_requested_at", j_ts(d->cancel_requested_at) },
                { "finished_at", j_ts(d->finished_at) },
                { "created_at", j_ts(d->created_at) },
                { "updated_at", j_ts(d->updated_at) },
                { "rejected_by_user_id", j_id(d->rejected_by_user_id) },
                { "decision_reason", j_str(d->decision_reason) },
                { "decided_at", j_ts(d->decided_at) },
                { "started_at", j_ts(d->started_at) });
}

static json_t *territory_json(const ms_territory *t)
{
        return J_OBJECT(
                { "id", json_string(t->id) },
                { "account_id", j_id(t->account_id) },
                { "name", j_str(t->name) },
                { "status", j_str(ms_territory_status_name(t->status)) },
                { "kind", j_str(t->kind) },
                { "platform", j_str(t->platform) },
                { "display_name", j_str(t->display_name) },
                { "location", j_str(t->location) },
                { "tags", j_json(t->tags) },
                { "capabilities", j_json(t->capabilities) },
                { "labels", j_json(t->labels) },
                { "capacity", j_json(t->capacity) },
                { "runtime_status", j_json(t->runtime_status) },
                { "nexus_version", j_str(t->nexus_version) },
                { "last_heartbeat_at", j_ts(t->last_heartbeat_at) },
                { "client_cert_fingerprint", j_id(t->client_cert_fingerprint) },
                { "websocket_connected_at", j_ts(t->websocket_connected_at) },
                { "push_token", j_str(t->push_token) },
                { "push_platform", j_str(t->push_platform) },
                { "created_at", j_ts(t->created_at) },
                { "updated_at", j_ts(t->updated_at) });
}

static json_t *facility_json(const ms_facility *f)
{
        return J_OBJECT(
                { "id", json_string(f->id) },
                { "account_id", j_id(f->account_id) },
                { "owner_id", j_id(f->owner_id) },
                { "territory_id", j_id(f->territory_id) },
                { "locked_by_directive_id", j_id(f->locked_by_directive_id) },
                { "kind", j_str(f->kind) },
                { "root_handle", j_str(f->root_handle) },
                { "repo_url", j_str(f->repo_url) },
                { "retention_policy", j_json(f->retention_policy) },
                { "size_bytes", json_integer(f->size_bytes) },
                { "created_at", j_ts(f->created_at) },
                { "updated_at", j_ts(f->updated_at) });
}

static json_t *audit_json(const ms_audit_event *e)
{
        return J_OBJECT(
                { "id", json_string(e->id) },
                { "account_id", j_id(e->account_id) },
                { "directive_id", j_id(e->directive_id) },
                { "command_id", j_id(e->command_id) },
                { "actor_id", j_id(e->actor_id) },
                { "territory_id", j_id(e->territory_id) },
                { "event_type", j_str(e->event_type) },
                { "severity", j_str(e->severity) },
                { "payload", j_json(e->payload) },
                { "context", j_json(e->context) },
                { "created_at", j_ts(e->created_at) },
                { "updated_at", j_ts(e->updated_at) });
}

static json_t *enroll_token_json(const ms_enroll_token *t)
{
        return J_OBJECT(
                { "id", json_string(t->id) },
                { "account_id", j_id(t->account_id) },
                { "created_by_user_id", j_id(t->created_by_user_id) },
                { "token_digest", j_id(t->token_digest) },
                { "labels", j_json(t->labels) },
                { "expires_at", j_ts(t->expires_at) },
                { "used_at", j_ts(t->used_at) },
                { "revoked_at", j_ts(t->revoked_at) },
                { "created_at", j_ts(t->created_at) },
                { "updated_at", j_ts(t->updated_at) });
}

static int out_or_nomem(admin_ctx *c, json_t *o, err_t *err)
{
        if (!o)
                return err_setc(err, ERR_INTERNAL, "out of memory");
        c->out = o;
        return 0;
}

/* A JSON flag value of the expected type (usage error otherwise). core/json's parser bounds
 * the depth and refuses duplicate keys. */
static int parse_json_flag(const char *flag, const char *text, json_type want, json_t **out,
                           err_t *err)
{
        err_t perr = ERR_INIT;
        json_t *v = json_parse(text, strlen(text), want == JSON_OBJECT, &perr);
        if (!v || json_typeof(v) != want) {
                if (v)
                        err_set(err, "--%s must be a JSON %s, got %s", flag,
                                want == JSON_OBJECT ? "object" : "array", json_type_name(v));
                else
                        err_set(err, "--%s: %s", flag, perr.msg);
                json_decref(v);
                return MS_CLI_USAGE;
        }
        *out = v;
        return 0;
}

/* ---------------------------------------------------------------- commands ----------- */

typedef struct bootstrap_tx {
        const char *account_name, *user_name;
        int64_t now;
        char account_id[MS_ID_SIZE], user_id[MS_ID_SIZE];
        char token_id[MS_ID_SIZE], api_token[MS_API_TOKEN_SIZE];
        char enroll_id[MS_ID_SIZE], enroll_token[MS_ENROLL_TOKEN_SIZE];
} bootstrap_tx;

static int bootstrap_fn(ms_store *s, void *ctx, err_t *err)
{
        bootstrap_tx *b = ctx;
        if (ms_account_create(s, b->account_name, b->now, b->account_id, err) < 0 ||
            ms_user_create(s, b->account_id, b->user_name, b->now, b->user_id, err) < 0 ||
            ms_api_token_create(s, b->user_id, "bootstrap", b->now, b->token_id, b->api_token,
                                err) < 0 ||
            ms_enroll_token_create(s, b->account_id, b->user_id, NULL,
                                   MS_ENROLL_TOKEN_DEFAULT_TTL_S, b->now, b->enroll_id,
                                   b->enroll_token, err) < 0)
                return -1;
        return 0;
}

static int cmd_bootstrap(admin_ctx *c, err_t *err)
{
        bootstrap_tx b = { 0 };
        b.account_name = arg(c->a, "account-name");
        b.user_name = arg(c->a, "user-name");
        if (!b.account_name)
                b.account_name = "default";
        if (!b.user_name)
                b.user_name = "admin";
        b.now = clock_now_ms();
        if (admin_store(c, err) < 0)
                return -1;
        /* one transaction: a failure leaves no half-made account behind */
        int r = ms_store_tx(c->store, bootstrap_fn, &b, err);
        if (r >= 0)
                r = out_or_nomem(c, json_pack("{s:s,s:s,s:s,s:s}", "account_id", b.account_id,
                                              "user_id", b.user_id, "api_token", b.api_token,
                                              "enroll_token", b.enroll_token), err);
        explicit_bzero(b.api_token, sizeof(b.api_token));
        explicit_bzero(b.enroll_token, sizeof(b.enroll_token));
        return r < 0 ? err_wrap(err, "bootstrap") : 0;
}

static int cmd_account_create(admin_ctx *c, err_t *err)
{
        const char *name;
        int r = need(c->a, "name", &name, err);
        if (r < 0)
                return r;
        char id[MS_ID_SIZE];
        if (admin_store(c, err) < 0 || ms_account_create(c->store, name, MS_NOW, id, err) < 0)
                return -1;
        return out_or_nomem(c, json_pack("{s:s}", "account_id", id), err);
}

static int cmd_user_create(admin_ctx *c, err_t *err)
{
        const char *account;
        int r = need(c->a, "account", &account, err);
        if (r < 0)
                return r;
        char id[MS_ID_SIZE];
        if (admin_store(c, err) < 0 ||
            ms_user_create(c->store, account, arg(c->a, "name"), MS_NOW, id, err) < 0)
                return -1;
        return out_or_nomem(c, json_pack("{s:s}", "user_id", id), err);
}

static int cmd_token_create(admin_ctx *c, err_t *err)
{
        const char *user;
        int r = need(c->a, "user", &user, err);
        if (r < 0)
                return r;
        char id[MS_ID_SIZE], plain[MS_API_TOKEN_SIZE];
        if (admin_store(c, err) < 0 ||
            ms_api_token_create(c->store, user, arg(c->a, "name"), MS_NOW, id, plain, err) < 0)
                return -1;
        r = out_or_nomem(c, json_pack("{s:s,s:s}", "token_id", id, "api_token", plain), err);
        explicit_bzero(plain, sizeof(plain));
        return r;
}

static int cmd_token_revoke(admin_ctx *c, err_t *err)
{
        const char *id = c->a->pos[0];
        if (admin_store(c, err) < 0 || ms_api_token_revoke(c->store, id, MS_NOW, err) < 0)
                return -1;
        return out_or_nomem(c, json_pack("{s:s,s:b}", "token_id", id, "revoked", 1), err);
}

static int cmd_enroll_create(admin_ctx *c, err_t *err)
{
        const char *account, *user;
        int r;
        if ((r = need(c->a, "account", &account, err)) < 0 ||
            (r = need(c->a, "user", &user, err)) < 0)
                return r;
        int64_t ttl = 0;
        const char *v = arg(c->a, "ttl");
        if (v && (r = ms_cli_int("--ttl", v, 1, ADMIN_MAX_TTL_S, &ttl, err)) < 0)
                return r;
        _cleanup_json_ json_t *labels = NULL;
        v = arg(c->a, "labels");
        if (v && (r = parse_json_flag("labels", v, JSON_OBJECT, &labels, err)) < 0)
                return r;
        if (admin_store(c, err) < 0)
                return -1;
        /* the token's creator must belong to the account it enrolls into */
        ms_user u = { 0 };
        if (ms_user_get(c->store, user, &u, err) < 0)
                return -1;
        bool same = strcmp(u.account_id, account) == 0;
        ms_user_clear(&u);
        if (!same)
                return err_setc(err, ERR_CONFLICT, "user %s does not belong to account %s", user,
                                account);
        char id[MS_ID_SIZE], plain[MS_ENROLL_TOKEN_SIZE];
        if (ms_enroll_token_create(c->store, account, user, labels, ttl, MS_NOW, id, plain,
                                   err) < 0)
                return -1;
        ms_enroll_token t = { 0 };
        if (ms_enroll_token_get(c->store, id, &t, err) < 0) {
                explicit_bzero(plain, sizeof(plain));
                return -1;
        }
        r = out_or_nomem(c, J_OBJECT({ "id", json_string(id) },
                                     { "enroll_token", json_string(plain) },
                                     { "expires_at", j_ts(t.expires_at) }), err);
        ms_enroll_token_clear(&t);
        explicit_bzero(plain, sizeof(plain));
        return r;
}

static int cmd_enroll_revoke(admin_ctx *c, err_t *err)
{
        const char *id = c->a->pos[0];
        if (admin_store(c, err) < 0 || ms_enroll_token_revoke(c->store, id, MS_NOW, err) < 0)
                return -1;
        return out_or_nomem(c, json_pack("{s:s,s:b}", "id", id, "revoked", 1), err);
}

static int cmd_enroll_show(admin_ctx *c, err_t *err)
{
        ms_enroll_token t = { 0 };
        if (admin_store(c, err) < 0 || ms_enroll_token_get(c->store, c->a->pos[0], &t, err) < 0)
                return -1;
        int r = out_or_nomem(c, enroll_token_json(&t), err);
        ms_enroll_token_clear(&t);
        return r;
}

static int cmd_facility_create(admin_ctx *c, err_t *err)
{
        const char *account, *owner, *territory;
        int r;
        if ((r = need(c->a, "account", &account, err)) < 0 ||
            (r = need(c->a, "owner", &owner, err)) < 0 ||
            (r = need(c->a, "territory", &territory, err)) < 0)
                return r;
        const char *repo_url = arg(c->a, "repo-url");
        const char *kind = arg(c->a, "kind");
        if (!kind)
                kind = repo_url ? "repo" : "empty";
        if (strcmp(kind, "repo") != 0 && strcmp(kind, "empty") != 0 &&
            strcmp(kind, "imported_path") != 0) {
                err_set(err, "--kind \"%s\" must be one of repo, empty, imported_path", kind);
                return MS_CLI_USAGE;
        }
        if (admin_store(c, err) < 0)
                return -1;
        /* spec §1.4: not interpreted by the server, but must be a non-blank JSON value */
        _cleanup_json_ json_t *retention = json_string("default");
        if (!retention)
                return err_setc(err, ERR_INTERNAL, "out of memory");
        const ms_facility_new fn = {
                .account_id = account,
                .owner_id = owner,
                .territory_id = territory,
                .kind = kind,
                .repo_url = repo_url,
                .retention_policy = retention,
        };
        char id[MS_ID_SIZE];
        if (ms_facility_create(c->store, &fn, MS_NOW, id, err) < 0)
                return -1;
        return out_or_nomem(c, json_pack("{s:s}", "facility_id", id), err);
}

static int cmd_facility_show(admin_ctx *c, err_t *err)
{
        ms_facility f = { 0 };
        if (admin_store(c, err) < 0 || ms_facility_get(c->store, NULL, c->a->pos[0], &f, err) < 0)
                return -1;
        int r = out_or_nomem(c, facility_json(&f), err);
        ms_facility_clear(&f);
        return r;
}

/* Reads a small file whole (at most max bytes). */
static char *read_small_file(const char *path, size_t max, size_t *len, err_t *err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                err_errno(err, errno, "open %s", path);
                return NULL;
        }
        _cleanup_buf_ buf b = BUF_INIT(max);
        char chunk[8192];
        for (;;) {
                ssize_t n = read(fd, chunk, sizeof(chunk));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        err_errno(err, errno, "read %s", path);
                        return NULL;
                }
                if (n == 0)
                        break;
                if (buf_append(&b, chunk, (size_t)n) < 0) {
                        if (errno == EMSGSIZE)
                                err_setc(err, ERR_TOO_LARGE, "%s is larger than %zu bytes", path,
                                         max);
                        else
                                err_errno(err, errno, "read %s", path);
                        return NULL;
                }
        }
        if (b.len == 0) {
                err_set(err, "%s is empty", path);
                return NULL;
        }
        return buf_steal(&b, len);
}

static int cmd_policy_create_global(admin_ctx *c, err_t *err)
{
        const char *path;
        int r = need(c->a, "file", &path, err);
        if (r < 0)
                return r;
        size_t len = 0;
        _cleanup_free_ char *text = read_small_file(path, ADMIN_POLICY_FILE_MAX, &len, err);
        if (!text)
                return -1;
        _cleanup_json_ json_t *doc = json_parse(text, len, true, err);
        if (!doc)
                return err_wrap(err, "%s", path);
        static const char *const allowed[] = {
                "name", "priority", "active", "fs", "net", "secrets", "sandbox_profile_rules",
                "approval", "device", NULL
        };
        if (json_check_keys(doc, allowed, err) < 0)
                return err_wrap(err, "%s", path);
        ms_policy_fields pf = { .name = "global" };
        bool present = false, active = true, active_present = false;
        if (json_get_string(doc, "name", false, &pf.name, &present, err) < 0 ||
            json_get_int(doc, "priority", false, INT32_MIN, INT32_MAX, &pf.priority, NULL,
                         err) < 0 ||
            json_get_bool(doc, "active", false, &active, &active_present, err) < 0)
                return err_wrap(err, "%s", path);
        if (!present)
                pf.name = "global";
        pf.inactive = active_present && !active;
        const struct {
                const char *key;
                const json_t **dst;
        } objs[] = {
                { "fs", &pf.fs }, { "net", &pf.net }, { "secrets", &pf.secrets },
                { "sandbox_profile_rules", &pf.sandbox_profile_rules },
                { "approval", &pf.approval }, { "device", &pf.device },
        };
        for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++) {
                json_t *o = NULL;
                if (json_get_object(doc, objs[i].key, false, &o, NULL, err) < 0)
                        return err_wrap(err, "%s", path);
                /* spec §6.1: the same section rules as the policy API (issue 4) */
                char why[512];
                if (mspol_validate_section(objs[i].key, o, why, sizeof(why)) < 0)
                        return err_setc(err, ERR_INVALID, "%s: %s", path, why);
                *objs[i].dst = o;
        }
        if (str_is_blank(pf.name))
                return err_setc(err, ERR_INVALID, "%s: name must not be blank", path);
        char id[MS_ID_SIZE];
        if (admin_store(c, err) < 0 || ms_policy_create(c->store, &pf, MS_NOW, id, err) < 0)
                return -1;
        return out_or_nomem(c, json_pack("{s:s}", "policy_id", id), err);
}

typedef struct territory_set_tx {
        const char *id;
        bool set_status;
        ms_territory_status status;
        ms_territory_admin adm;
        int64_t now;
} territory_set_tx;

static int territory_set_fn(ms_store *s, void *ctx, err_t *err)
{
        territory_set_tx *t = ctx;
        if (t->set_status) {
                ms_territory cur = { 0 };
                if (ms_territory_get(s, t->id, &cur, err) < 0)
                        return -1;
                ms_territory_status from = cur.status;
                ms_territory_clear(&cur);
                /* setting the status it already has is a no-op, not a §2.2 violation */
                if (from != t->status &&
                    ms_territory_set_status(s, t->id, t->status, t->now, err) < 0)
                        return -1;
        }
        if (t->adm.set && ms_territory_update_admin(s, t->id, &t->adm, t->now, err) < 0)
                return -1;
        return 0;
}

static int cmd_territory_set(admin_ctx *c, err_t *err)
{
        territory_set_tx t = { .id = c->a->pos[0], .now = clock_now_ms() };
        int r;
        const char *v;
        _cleanup_json_ json_t *tags = NULL;
        _cleanup_json_ json_t *caps = NULL;
        if ((v = arg(c->a, "status"))) {
                if (ms_territory_status_parse(v, &t.status) < 0 ||
                    t.status == MS_TERRITORY_PENDING) {
                        err_set(err, "--status \"%s\" must be one of online, offline, "
                                     "decommissioned", v);
                        return MS_CLI_USAGE;
                }
                t.set_status = true;
        }
        if ((v = arg(c->a, "location"))) {
                t.adm.set |= MS_TERRITORY_SET_LOCATION;
                t.adm.location = *v ? v : NULL;     /* "" clears it */
        }
        if ((v = arg(c->a, "tags"))) {
                if ((r = parse_json_flag("tags", v, JSON_ARRAY, &tags, err)) < 0)
                        return r;
                t.adm.set |= MS_TERRITORY_SET_TAGS;
                t.adm.tags = tags;
        }
        if ((v = arg(c->a, "capabilities"))) {
                if ((r = parse_json_flag("capabilities", v, JSON_ARRAY, &caps, err)) < 0)
                        return r;
                t.adm.set |= MS_TERRITORY_SET_CAPABILITIES;
                t.adm.capabilities = caps;
        }
        int ws = -1;
        if ((v = arg(c->a, "websocket-connected"))) {
                if (strcmp(v, "true") == 0)
                        ws = 1;
                else if (strcmp(v, "false") == 0)
                        ws = 0;
                else {
                        err_set(err, "--websocket-connected \"%s\" must be true or false", v);
                        return MS_CLI_USAGE;
                }
                t.adm.set |= MS_TERRITORY_SET_WEBSOCKET;
                t.adm.websocket_connected_at = ws ? t.now : 0;
        }
        if (!t.set_status && !t.adm.set) {
                err_set(err, "territory set: nothing to set (--status, --location, --tags, "
                             "--capabilities, --websocket-connected)");
                return MS_CLI_USAGE;
        }
        if (admin_store(c, err) < 0)
                return -1;
        if (ms_store_tx(c->store, territory_set_fn, &t, err) < 0)
                return err_wrap(err, "territory %s", t.id);
        json_t *o = json_pack("{s:s}", "territory_id", t.id);
        if (!o)
                return err_setc(err, ERR_INTERNAL, "out of memory");
        c->out = o;
        int bad = 0;
        if (t.set_status)
                bad |= json_object_set_new(o, "status",
                                           json_string(ms_territory_status_name(t.status)));
        if (t.adm.set & MS_TERRITORY_SET_LOCATION)
                bad |= json_object_set_new(o, "location", j_str(t.adm.location));
        if (tags)
                bad |= json_object_set(o, "tags", tags);
        if (caps)
                bad |= json_object_set(o, "capabilities", caps);
        if (ws >= 0) {
                bad |= json_object_set_new(o, "websocket_connected", json_boolean(ws));
                bad |= json_object_set_new(o, "websocket_connected_at",
                                           j_ts(t.adm.websocket_connected_at));
        }
        return bad ? err_setc(err, ERR_INTERNAL, "out of memory") : 0;
}

static int cmd_territory_show(admin_ctx *c, err_t *err)
{
        ms_territory t = { 0 };
        if (admin_store(c, err) < 0 || ms_territory_get(c->store, c->a->pos[0], &t, err) < 0)
                return -1;
        int r = out_or_nomem(c, territory_json(&t), err);
        ms_territory_clear(&t);
        return r;
}

static const char *const job_names[] = {
        "reaper", "offline", "log-retention", "diff-retention", "audit-retention", NULL
};

static int cmd_job_run(admin_ctx *c, err_t *err)
{
        const char *name = c->a->pos[0];
        bool known = false;
        for (size_t i = 0; job_names[i]; i++)
                known = known || strcmp(job_names[i], name) == 0;
        if (!known) {
                err_set(err, "unknown job \"%s\" (reaper, offline, log-retention, "
                             "diff-retention, audit-retention)", name);
                return MS_CLI_USAGE;
        }
        /* a minimal app: the jobs need the store and the configuration, no HTTP server
         * (static: ms_app is large) */
        static ms_app app;
        ms_config_defaults(&app.cfg);
        if (ms_config_apply_env(&app.cfg, ms_env_getenv, NULL, err) < 0)
                return -1;
        str_copy(app.cfg.data_dir, sizeof(app.cfg.data_dir), c->a->data_dir);
        const char *ttl = arg(c->a, "ttl-days");
        const char *batch = arg(c->a, "batch-size");
        const char *maxb = arg(c->a, "max-batches");
        ms_job_params p = { 0 };
        int64_t n;
        int r;
        if (strcmp(name, "log-retention") == 0)
                p.ttl_days = app.cfg.log_chunk_ttl_days;
        else if (strcmp(name, "diff-retention") == 0)
                p.ttl_days = app.cfg.diff_blob_ttl_days;
        else if (strcmp(name, "audit-retention") == 0)
                p.ttl_days = app.cfg.audit_ttl_days;
        if (ttl) {
                if ((r = ms_cli_int("--ttl-days", ttl, 0, MS_CLI_MAX_TTL_DAYS, &n, err)) < 0)
                        return r;
                p.ttl_days = n;
        }
        if (batch) {
                if ((r = ms_cli_int("--batch-size", batch, 1, 100000, &n, err)) < 0)
                        return r;
                p.batch_size = (int)n;
        }
        if (maxb) {
                if ((r = ms_cli_int("--max-batches", maxb, 1, 100000, &n, err)) < 0)
                        return r;
                p.max_batches = (int)n;
        }
        if (admin_store(c, err) < 0)
                return -1;
        app.store = c->store;
        int64_t processed = 0;
        r = ms_job_run(&app, name, &p, &processed, err);
        app.store = NULL;
        if (r < 0)
                return err_wrap(err, "job %s", name);
        return out_or_nomem(c, json_pack("{s:s,s:I}", "job", name, "processed",
                                         (json_int_t)processed), err);
}

static int cmd_lease_expire(admin_ctx *c, err_t *err)
{
        const char *id = c->a->pos[0];
        int64_t ago = 60;
        const char *v = arg(c->a, "ago-seconds");
        int r;
        if (v && (r = ms_cli_int("--ago-seconds", v, 0, ADMIN_MAX_AGO_S, &ago, err)) < 0)
                return r;
        if (admin_store(c, err) < 0)
                return -1;
        int64_t now = clock_now_ms();
        int64_t at = now - ago * 1000;
        bool changed = false;
        if (ms_directive_force_lease_expiry(c->store, id, at, now, &changed, err) < 0)
                return err_wrap(err, "lease expire");
        if (!changed) {
                ms_directive d = { 0 };
                const char *state = "unknown";
                if (ms_directive_get(c->store, id, &d, err) == 0)
                        state = ms_directive_state_name(d.state);
                err_setc(err, ERR_CONFLICT, "directive %s is %s: only a leased or running "
                                            "directive has a lease to expire", id, state);
                ms_directive_clear(&d);
                return -1;
        }
        return out_or_nomem(c, J_OBJECT({ "directive_id", json_string(id) },
                                         { "lease_expires_at", j_ts(at) }), err);
}

static int cmd_directive_show(admin_ctx *c, err_t *err)
{
        ms_directive d = { 0 };
        if (admin_store(c, err) < 0 || ms_directive_get(c->store, c->a->pos[0], &d, err) < 0)
                return -1;
        int r = out_or_nomem(c, directive_json(&d), err);
        ms_directive_clear(&d);
        return r;
}

static int cmd_audit_list(admin_ctx *c, err_t *err)
{
        if (admin_store(c, err) < 0)
                return -1;
        json_t *events = json_array();
        json_t *o = events ? json_pack("{s:o}", "events", events) : NULL;
        if (!o)
                return err_setc(err, ERR_INTERNAL, "out of memory");
        c->out = o;
        char cursor[MS_ID_SIZE] = "";
        for (;;) {
                const ms_audit_filter f = {
                        .directive_id = arg(c->a, "directive"),
                        .event_type = arg(c->a, "type"),
                        .cursor = *cursor ? cursor : NULL,
                        .limit = MS_LIST_MAX,
                };
                ms_audit_event_array l = { 0 };
                if (ms_audit_event_list(c->store, &f, &l, err) < 0)
                        return err_wrap(err, "audit list");
                for (size_t i = 0; i < l.n; i++) {
                        if (json_array_size(events) >= ADMIN_AUDIT_MAX ||
                            json_array_append_new(events, audit_json(&l.items[i])) < 0) {
                                ms_audit_event_array_clear(&l);
                                return err_setc(err, ERR_TOO_LARGE,
                                                "audit list: more than %d events or out of "
                                                "memory", ADMIN_AUDIT_MAX);
                        }
                }
                bool more = l.n == MS_LIST_MAX;
                if (l.n > 0)
                        str_copy(cursor, sizeof(cursor), l.items[l.n - 1].id);
                ms_audit_event_array_clear(&l);
                if (!more)
                        return 0;
        }
}

/* ---------------------------------------------------------------- dispatch ----------- */

static const admin_cmd commands[] = {
        { "bootstrap", NULL, { "account-name", "user-name", NULL }, 0, cmd_bootstrap,
          "bootstrap [--account-name N] [--user-name N]" },
        { "account", "create", { "name", NULL }, 0, cmd_account_create,
          "account create --name N" },
        { "user", "create", { "account", "name", NULL }, 0, cmd_user_create,
          "user create --account ID [--name N]" },
        { "token", "create", { "user", "name", NULL }, 0, cmd_token_create,
          "token create --user ID [--name N]" },
        { "token", "revoke", { NULL }, 1, cmd_token_revoke, "token revoke ID" },
        { "enroll-token", "create", { "account", "user", "ttl", "labels", NULL }, 0,
          cmd_enroll_create,
          "enroll-token create --account ID --user ID [--ttl SECONDS] [--labels JSON]" },
        { "enroll-token", "revoke", { NULL }, 1, cmd_enroll_revoke, "enroll-token revoke ID" },
        { "enroll-token", "show", { NULL }, 1, cmd_enroll_show, "enroll-token show ID" },
        { "facility", "create", { "account", "owner", "territory", "kind", "repo-url", NULL }, 0,
          cmd_facility_create,
          "facility create --account ID --owner USER --territory TID\n"
          "                  [--kind repo|empty|imported_path] [--repo-url URL]" },
        { "facility", "show", { NULL }, 1, cmd_facility_show, "facility show ID" },
        { "policy", "create-global", { "file", NULL }, 0, cmd_policy_create_global,
          "policy create-global --file POLICY.json" },
        { "territory", "set",
          { "status", "location", "tags", "capabilities", "websocket-connected", NULL }, 1,
          cmd_territory_set,
          "territory set ID [--status online|offline|decommissioned] [--location L]\n"
          "                  [--tags JSON] [--capabilities JSON]\n"
          "                  [--websocket-connected true|false]" },
        { "territory", "show", { NULL }, 1, cmd_territory_show, "territory show ID" },
        { "job", "run", { "ttl-days", "batch-size", "max-batches", NULL }, 1, cmd_job_run,
          "job run reaper|offline|log-retention|diff-retention|audit-retention\n"
          "                  [--ttl-days N] [--batch-size N] [--max-batches N]" },
        { "lease", "expire", { "ago-seconds", NULL }, 1, cmd_lease_expire,
          "lease expire DIRECTIVE_ID [--ago-seconds N]" },
        { "directive", "show", { NULL }, 1, cmd_directive_show, "directive show ID" },
        { "audit", "list", { "directive", "type", NULL }, 0, cmd_audit_list,
          "audit list [--directive ID] [--type T]" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_usage(FILE *f)
{
        fputs("usage: mothership admin --data-dir DIR <command...>\n"
              "  (--data-dir may also come from MOTHERSHIP_DATA_DIR)\n\ncommands:\n", f);
        for (size_t i = 0; i < NCOMMANDS; i++)
                fprintf(f, "  %s\n", commands[i].usage);
}

static int usage_error(const err_t *err)
{
        fprintf(stderr, "mothership: %s\n", err->msg);
        print_usage(stderr);
        return 2;
}

/* Flags of cmd (plus --data-dir) and its positional arguments, anywhere after the words. */
static int parse_command_args(const admin_cmd *cmd, int argc, char *const argv[], admin_args *a,
                              err_t *err)
{
        bool only_pos = false;
        for (int i = 0; i < argc;) {
                const char *s = argv[i];
                if (!only_pos && strcmp(s, "--") == 0) {
                        only_pos = true;
                        i++;
                        continue;
                }
                if (only_pos || s[0] != '-' || s[1] != '-') {
                        if (a->npos >= cmd->npos) {
                                err_set(err, "unexpected argument \"%s\" for %s%s%s", s,
                                        cmd->w1, cmd->w2 ? " " : "", cmd->w2 ? cmd->w2 : "");
                                return MS_CLI_USAGE;
                        }
                        a->pos[a->npos++] = s;
                        i++;
                        continue;
                }
                const char *v = NULL;
                int r = ms_cli_flag(argc, argv, &i, "data-dir", &v, err);
                if (r < 0)
                        return r;
                if (r > 0) {
                        a->data_dir = v;
                        continue;
                }
                bool matched = false;
                for (size_t k = 0; cmd->flags[k] && !matched; k++) {
                        r = ms_cli_flag(argc, argv, &i, cmd->flags[k], &v, err);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                continue;
                        if (a->nflags >= ADMIN_MAX_FLAGS) {
                                err_set(err, "too many flags");
                                return MS_CLI_USAGE;
                        }
                        a->names[a->nflags] = cmd->flags[k];
                        a->values[a->nflags++] = v;
                        matched = true;
                }
                if (!matched) {
                        err_set(err, "unknown flag \"%s\" for %s%s%s", s, cmd->w1,
                                cmd->w2 ? " " : "", cmd->w2 ? cmd->w2 : "");
                        return MS_CLI_USAGE;
                }
        }
        if (a->npos != cmd->npos) {
                err_set(err, "%s%s%s needs %zu argument%s (usage: %s)", cmd->w1,
                        cmd->w2 ? " " : "", cmd->w2 ? cmd->w2 : "", cmd->npos,
                        cmd->npos == 1 ? "" : "s", cmd->usage);
                return MS_CLI_USAGE;
        }
        return 0;
}

int ms_admin_main(int argc, char *const argv[])
{
        err_t err = ERR_INIT;
        admin_args a = { 0 };
        int i = 0;
        /* global flags before the command words */
        while (i < argc && argv[i][0] == '-') {
                if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        print_usage(stdout);
                        return 0;
                }
                const char *v = NULL;
                int r = ms_cli_flag(argc, argv, &i, "data-dir", &v, &err);
                if (r < 0)
                        return usage_error(&err);
                if (r == 0) {
                        err_set(&err, "unknown flag \"%s\" for admin", argv[i]);
                        return usage_error(&err);
                }
                a.data_dir = v;
        }
        if (i >= argc) {
                err_set(&err, "admin: missing command");
                return usage_error(&err);
        }
        const admin_cmd *cmd = NULL;
        bool w1_known = false;
        for (size_t k = 0; k < NCOMMANDS && !cmd; k++) {
                if (strcmp(commands[k].w1, argv[i]) != 0)
                        continue;
                w1_known = true;
                if (!commands[k].w2)
                        cmd = &commands[k];
                else if (i + 1 < argc && strcmp(commands[k].w2, argv[i + 1]) == 0)
                        cmd = &commands[k];
        }
        if (!cmd) {
                if (w1_known)
                        err_set(&err, "unknown admin command \"%s %s\"", argv[i],
                                i + 1 < argc ? argv[i + 1] : "");
                else
                        err_set(&err, "unknown admin command \"%s\"", argv[i]);
                return usage_error(&err);
        }
        i += cmd->w2 ? 2 : 1;
        int r = parse_command_args(cmd, argc - i, argv + i, &a, &err);
        if (r < 0)
                return usage_error(&err);
        if (!a.data_dir) {
                const char *env = getenv("MOTHERSHIP_DATA_DIR");
                a.data_dir = env && *env ? env : NULL;
        }
        if (!a.data_dir || !*a.data_dir) {
                err_set(&err, "--data-dir is required (or set MOTHERSHIP_DATA_DIR)");
                return usage_error(&err);
        }

        admin_ctx c = { .a = &a };
        r = cmd->fn(&c, &err);
        ms_store_close(c.store);
        c.store = NULL;
        if (r == MS_CLI_USAGE) {
                json_decref(c.out);
                return usage_error(&err);
        }
        if (r < 0) {
                json_decref(c.out);
                fprintf(stderr, "mothership: %s\n", err.msg);
                return 1;
        }
        char *text = c.out ? json_dumps(c.out, JSON_COMPACT) : NULL;
        json_decref(c.out);
        c.out = NULL;
        if (!text) {
                fprintf(stderr, "mothership: out of memory\n");
                return 1;
        }
        fputs(text, stdout);
        fputc('\n', stdout);
        /* the text may hold a plaintext token: wipe it before freeing */
        explicit_bzero(text, strlen(text));
        free(text);
        text = NULL;
        if (fflush(stdout) != 0) {
                fprintf(stderr, "mothership: write stdout: %s\n", strerror(errno));
                return 1;
        }
        return 0;
}
