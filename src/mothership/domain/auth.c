/* domain/auth.c — see auth.h. */
#include "domain/auth.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "core/clock.h"
#include "core/jwt.h"
#include "core/log.h"
#include "core/str.h"
#include "core/uuid.h"
#include "domain/api.h"

static bool peer_is_trusted_proxy(const ms_app *app, const char *peer)
{
        for (size_t i = 0; i < app->cfg.ntrusted_proxies; i++)
                if (strcmp(app->cfg.trusted_proxies[i], peer) == 0)
                        return true;
        return false;
}

/* spec §3.1.1 step 1: trimmed, lower-cased, every ':' removed. */
static bool normalise_fingerprint(const char *in, char out[MS_SHA256_HEX_SIZE])
{
        size_t n = 0;
        for (const char *p = in; *p; p++) {
                if (*p == ':' || isspace((unsigned char)*p))
                        continue;
                if (!isxdigit((unsigned char)*p) || n >= MS_SHA256_HEX_SIZE - 1)
                        return false;
                out[n++] = (char)tolower((unsigned char)*p);
        }
        out[n] = '\0';
        return n == MS_SHA256_HEX_SIZE - 1;
}

/* A short-lived cache of what territory authentication needs (id, account, status, and the
 * capacity and runtime status the poll sizes its claim with). Polls are the hottest request
 * of a fleet, and the row they would read changes only on a heartbeat — which drops the entry
 * here — or through `mothership admin` in another process, which is seen within the TTL.
 * Direct-mapped, fixed size: memory does not grow with the number of territories. */
#define TCACHE_SLOTS 512
#define TCACHE_TTL_MS 1000

typedef struct tcache_entry {
        char key[80];                    /* "id:<uuid>" or "fp:<sha256 hex>" */
        char id[MS_ID_SIZE];
        char account_id[MS_ID_SIZE];
        ms_territory_status status;
        json_t *capacity, *runtime_status;
        int64_t expires;                 /* monotonic ms */
} tcache_entry;

static struct {
        pthread_mutex_t mu;
        tcache_entry e[TCACHE_SLOTS];
} tcache = { .mu = PTHREAD_MUTEX_INITIALIZER };

static size_t tcache_slot(const char *key)
{
        uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
        for (const char *p = key; *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        return (size_t)(h % TCACHE_SLOTS);
}

static bool tcache_get(const char *key, ms_territory *out)
{
        bool hit = false;
        tcache_entry *e = &tcache.e[tcache_slot(key)];
        pthread_mutex_lock(&tcache.mu);
        if (strcmp(e->key, key) == 0 && e->expires > clock_mono_ms()) {
                memset(out, 0, sizeof(*out));
                str_copy(out->id, sizeof(out->id), e->id);
                str_copy(out->account_id, sizeof(out->account_id), e->account_id);
                out->status = e->status;
                out->capacity = e->capacity ? json_incref(e->capacity) : NULL;
                out->runtime_status = e->runtime_status ? json_incref(e->runtime_status) : NULL;
                hit = true;
        }
        pthread_mutex_unlock(&tcache.mu);
        return hit;
}

static void tcache_put(const char *key, const ms_territory *t)
{
        tcache_entry *e = &tcache.e[tcache_slot(key)];
        pthread_mutex_lock(&tcache.mu);
        json_decref(e->capacity);
        json_decref(e->runtime_status);
        str_copy(e->key, sizeof(e->key), key);
        str_copy(e->id, sizeof(e->id), t->id);
        str_copy(e->account_id, sizeof(e->account_id), t->account_id);
        e->status = t->status;
        /* deep copies: the request's own references stay private to it */
        e->capacity = t->capacity ? json_deep_copy(t->capacity) : NULL;
        e->runtime_status = t->runtime_status ? json_deep_copy(t->runtime_status) : NULL;
        e->expires = clock_mono_ms() + TCACHE_TTL_MS;
        pthread_mutex_unlock(&tcache.mu);
}

void ms_auth_territory_forget(const char *territory_id)
{
        pthread_mutex_lock(&tcache.mu);
        for (size_t i = 0; i < TCACHE_SLOTS; i++)
                if (strcmp(tcache.e[i].id, territory_id) == 0)
                        tcache.e[i].expires = 0;
        pthread_mutex_unlock(&tcache.mu);
}

/* Looks key up in the cache, else with load(); fills out. 0 found, -1 not found/error. */
static int cached_lookup(ms_app *app, const char *key, const char *arg,
                         int (*load)(ms_store *, const char *, ms_territory *, err_t *),
                         ms_territory *out, err_t *err)
{
        if (tcache_get(key, out))
                return 0;
        if (load(app->store, arg, out, err) < 0)
                return -1;
        tcache_put(key, out);
        return 0;
}

/* Finds the territory; 0 found, -1 not (with a reason for the 401). */
static int identify(ms_app *app, ms_http_req *req, ms_territory *out, const char **why,
                    err_t *err)
{
        ms_territory_auth mode = app->cfg.territory_auth;
        const char *fp_raw = ms_http_req_header(req, app->cfg.fingerprint_header);
        if (mode != MS_TAUTH_HEADER && fp_raw && *fp_raw) {
                char fp[MS_SHA256_HEX_SIZE];
                /* A fingerprint header is only as good as the proxy that set it. */
                if (!peer_is_trusted_proxy(app, ms_http_req_peer(req))) {
                        *why = "fingerprint header from an untrusted peer";
                } else if (normalise_fingerprint(fp_raw, fp)) {
                        char key[80];
                        str_printf(key, sizeof(key), "fp:%s", fp);
                        if (cached_lookup(app, key, fp, ms_territory_get_by_fingerprint, out,
                                          err) == 0)
                                return 0;
                }
        }
        if (mode != MS_TAUTH_PROXY_HEADER) {
                const char *id = ms_http_req_header(req, "X-Nexus-Territory-Id");
                char key[80];
                if (id && *id && uuid_is_valid(id) &&
                    str_printf(key, sizeof(key), "id:%s", id) > 0 &&
                    cached_lookup(app, key, id, ms_territory_get, out, err) == 0)
                        return 0;
        }
        if (!**why)
                *why = mode == MS_TAUTH_PROXY_HEADER
                               ? "missing or unknown client certificate fingerprint"
                               : "missing territory identity";
        return -1;
}

int ms_auth_territory(ms_app *app, ms_http_req *req, ms_territory *out)
{
        err_t err = ERR_INIT;
        const char *why = "";
        int found = identify(app, req, out, &why, &err);
        if (err_is_set(&err) && err.code && strcmp(err.code, ERR_NOT_FOUND) != 0) {
                ms_territory_clear(out);
                return api_store_error(req, &err);
        }
        /* spec §3.1.4, keyed by identity or peer (never a client-chosen header) */
        int rl = ms_http_rate_limit(req, found == 0 ? out->id : ms_http_req_peer(req));
        if (rl != 0) {
                ms_territory_clear(out);
                return rl;
        }
        if (found < 0) {
                ms_territory_clear(out);
                return ms_http_respond_error(req, 401, "unauthorized", "%s", why);
        }
        if (out->status == MS_TERRITORY_DECOMMISSIONED) {
                ms_territory_clear(out);
                return ms_http_respond_error(req, 403, "forbidden", "territory is decommissioned");
        }
        return 0;
}

int ms_auth_directive(ms_app *app, ms_http_req *req, const ms_territory *t, ms_directive *out)
{
        const char *h = ms_http_req_header(req, "Authorization");
        if (!h || strncmp(h, "Bearer ", 7) != 0 || !h[7])
                return ms_http_respond_error(req, 401, "unauthorized", "missing directive token");
        err_t err = ERR_INIT;
        jwt_claims c;
        int64_t now_s = clock_now_ms() / 1000;
        if (jwt_verify_hs256(h + 7, app->jwt_key, app->jwt_key_len, now_s, 0, &c, &err) < 0) {
                if (err.code && strcmp(err.code, ERR_EXPIRED) == 0)
                        return ms_http_respond_error(req, 401, "unauthorized",
                                                     "directive token expired");
                return ms_http_respond_error(req, 401, "unauthorized",
                                             "Invalid directive token: %s", err.msg);
        }
        if (strcmp(c.tid, t->id) != 0)
                return ms_http_respond_error(req, 403, "forbidden",
                                             "directive token territory mismatch");
        /* Recommended in spec §3.1.2: the path id must be the token's directive. */
        const char *path_id = ms_http_req_param(req, "id");
        if (path_id && strcmp(path_id, c.sub) != 0)
                return ms_http_respond_error(req, 403, "forbidden",
                                             "directive token does not match the path");
        if (ms_directive_get(app->store, c.sub, out, &err) < 0) {
                if (err.code && strcmp(err.code, ERR_NOT_FOUND) == 0)
                        return ms_http_respond_error(req, 404, "not_found", "directive not found");
                return api_store_error(req, &err);
        }
        if (strcmp(out->territory_id, t->id) != 0) {
                ms_directive_clear(out);
                return ms_http_respond_error(req, 403, "forbidden", "territory mismatch");
        }
        return 0;
}

int ms_auth_user(ms_app *app, ms_http_req *req, ms_user *out)
{
        const char *h = ms_http_req_header(req, "Authorization");
        if (!h || strncmp(h, "Bearer ", 7) != 0 || !h[7])
                return ms_http_respond_error(req, 401, "unauthorized",
                                             "Authorization: Bearer <api token> required");
        err_t err = ERR_INIT;
        if (ms_api_token_authenticate(app->store, h + 7, MS_NOW, out, NULL, &err) < 0) {
                if (err.code && (strcmp(err.code, ERR_UNAUTHORIZED) == 0 ||
                                 strcmp(err.code, ERR_NOT_FOUND) == 0))
                        return ms_http_respond_error(req, 401, "unauthorized",
                                                     "unknown or revoked API token");
                return api_store_error(req, &err);
        }
        if (!out->account_id[0]) {
                ms_user_clear(out);
                return ms_http_respond_error(req, 401, "unauthorized", "user has no account");
        }
        return 0;
}
