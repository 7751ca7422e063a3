/* domain/auth.h — who is calling (DESIGN D10, spec mothership §3.1).
 *
 * Territories: the fingerprint of a client certificate verified by a TLS-terminating proxy
 * (header accepted only from a configured trusted proxy address), or — only when the server
 * was started with --territory-auth header|either — the X-Nexus-Territory-Id header.
 * Decommissioned territories are refused (403), which the reference does not do.
 * Directive-scoped routes also need the directive JWT, and its `sub` must equal the {id} in
 * the path (the reference does not compare them).
 * Users: Authorization: Bearer <api token>, stored hashed.
 *
 * Rate limits (spec §3.1.4) are keyed by the authenticated identity, or by the peer address
 * when authentication failed — never by a client-chosen header. Built-in TLS will add one
 * more way to learn the fingerprint (the verified peer certificate); nothing else changes.
 *
 * Each function returns 0 when the caller is authenticated, or the status it answered. */
#pragma once
#include "app.h"
#include "http/server.h"
#include "store/store.h"

/* Fills only id, account_id, status, capacity and runtime_status of *out: those come from a
 * cache (1 s TTL, dropped by ms_auth_territory_forget) on the hot path. */
int ms_auth_territory(ms_app *app, ms_http_req *req, ms_territory *out);
/* The territory changed (heartbeat, status): the next request reads it again. */
void ms_auth_territory_forget(const char *territory_id);
/* After ms_auth_territory: the directive token. *out is the directive named by the token. */
int ms_auth_directive(ms_app *app, ms_http_req *req, const ms_territory *t, ms_directive *out);
int ms_auth_user(ms_app *app, ms_http_req *req, ms_user *out);
