#!/usr/bin/env python3
"""Policies, approvals and the audit trail end to end against a real mothership (issue 4):
the policy API (spec mothership §3.3.1, §13.5 vectors 74-85, §13.11 S15-S16), directive
creation under the CommandValidator and the resolver (§3.3.2, §6.11), approve / reject with who
and why (§3.3.5, §6.10), poll-time re-validation (§7.4 step 3, §13.8 vectors 150-152, plus the
issue's "newly needs approval is not leased"), the audit catalogue of §10.1 read back through
GET /mothership/api/v1/audit_events, and audit error isolation (a failed audit write never fails
the request; it is counted in /metrics and logged).

Account-scoped policies only affect their own account, so most cases share one server and build
a fresh account each; the few that need a global policy (which applies to every account) start
a server of their own.
Usage: test_policies.py <path to mothership binary>   (TAP on stdout)
"""
import json
import os
import re
import sqlite3
import sys
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True   # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AdminError, Server, World, check, default_setup,  # noqa: E402
                     default_teardown, eq, expect_error, expect_status, is_uuid, jcol, run_tap,
                     short)

RECORD_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
POLICY_KEYS = {"id", "name", "priority", "active", "scope_type", "scope_id", "fs", "net",
               "secrets", "sandbox_profile_rules", "approval", "created_at", "updated_at"}

# --------------------------------------------------------------------------------------------
# helpers


def create_policy(w, body, token=None):
    return w.api("POST", "/policies", body, token=token)


def new_policy(w, **body):
    body.setdefault("name", "itest policy")
    r = expect_status(create_policy(w, body), 201, "create policy")
    check(is_uuid(r.body.get("id")), f"policy id: {r.body}")
    return r.body


def audit(w, token=None, **query):
    q = urllib.parse.urlencode(query)
    return w.api("GET", "/audit_events" + (("?" + q) if q else ""), token=token)


def events(w, **query):
    r = expect_status(audit(w, limit=200, **query), 200, "audit_events")
    evs = r.body.get("audit_events")
    check(isinstance(evs, list), f"audit_events is not a list: {short(r.body)}")
    return evs


def one_event(w, did, etype):
    evs = events(w, directive_id=did, type=etype)
    eq(len(evs), 1, f"number of {etype} events for {did}")
    return evs[0]


def db_query(srv, sql, params=()):
    """Read-only look at the server's database (WAL: safe while it runs)."""
    db = sqlite3.connect(os.path.join(srv.data_dir, "mothership.sqlite3"), timeout=30)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def db_exec(srv, sql):
    db = sqlite3.connect(os.path.join(srv.data_dir, "mothership.sqlite3"), timeout=30)
    try:
        with db:
            db.executescript(sql)
    finally:
        db.close()


def count_directives(w, fid):
    r = expect_status(w.api("GET", f"/facilities/{fid}/directives"), 200)
    return len(r.body.get("directives") or [])


def held(w, fid, command="cat file.txt | grep pattern"):
    """A host directive awaiting approval because of the CommandValidator (§13.6 #99)."""
    r = expect_status(w.create_directive(fid, command, sandbox_profile="host"), 202,
                      "risky host command")
    eq(r.body.get("state"), "awaiting_approval", "state")
    return r.body["directive_id"]


def lease_ids(r):
    return [d.get("directive_id") for d in (r.body.get("directives") or [])]


class OwnServer:
    """A server of its own, optionally with a global policy (it applies to every account)."""

    def __init__(self, ctx, policy=None):
        self.ctx, self.policy = ctx, policy

    def __enter__(self):
        self.srv = Server(self.ctx.srv.binary).start()
        w = World(self.srv)
        if self.policy is not None:
            path = os.path.join(self.srv.log_dir, "policy.json")
            with open(path, "w") as f:
                json.dump(self.policy, f)
            w.global_policy = self.srv.admin("policy", "create-global", "--file", path)
        return w

    def __exit__(self, et, ev, tb):
        try:
            if et is None:
                self.srv.stop()
        finally:
            self.srv.cleanup()
        return False


# --------------------------------------------------------------------------------------------
# §13.5 policies API


def test_v74_index_lists_only_own_account(ctx):
    # spec mothership §13 #74
    w, other = ctx.world(), ctx.world()
    mine = new_policy(w, name="mine")
    new_policy(other, name="theirs")
    r = expect_status(w.api("GET", "/policies"), 200)
    ps = r.body.get("policies")
    eq([p.get("id") for p in ps], [mine["id"]], "exactly the caller's policy")
    eq(set(ps[0].keys()) - {"device"}, POLICY_KEYS, "policy representation keys")


def test_v75_scope_filter_excludes_global(ctx):
    # spec mothership §13 #75: the global policy is never listed, the Account one is
    with OwnServer(ctx, {"name": "global", "approval": {"default": "skip"}}) as w:
        p = new_policy(w, name="acct", scope_type="Account", scope_id=w.account_id)
        r = expect_status(w.api("GET", "/policies?scope_type=Account"), 200)
        ids = [x.get("id") for x in r.body.get("policies")]
        eq(ids, [p["id"]], "Account-scoped policies")
        check(w.global_policy["policy_id"] not in ids, "global policy listed")
        r = expect_status(w.api("GET", "/policies?scope_type=User"), 200)
        eq(r.body.get("policies"), [], "no User-scoped policies")
        expect_error(w.api("GET", f"/policies/{w.global_policy['policy_id']}"), 404,
                     "not_found", "a global policy is not shown over HTTP")


def test_v76_index_excludes_inactive(ctx):
    # spec mothership §13 #76
    w = ctx.world()
    a = new_policy(w, name="on")
    b = new_policy(w, name="off", active=False)
    ids = [x["id"] for x in expect_status(w.api("GET", "/policies"), 200).body["policies"]]
    eq(ids, [a["id"]], "active only")
    check(b["id"] not in ids, "inactive listed")


def test_v77_include_inactive(ctx):
    # spec mothership §13 #77 (and our `active` filter)
    w = ctx.world()
    a = new_policy(w, name="on", priority=1)
    b = new_policy(w, name="off", active=False, priority=2)
    r = expect_status(w.api("GET", "/policies?include_inactive=true"), 200)
    eq([x["id"] for x in r.body["policies"]], [a["id"], b["id"]], "both, by priority")
    r = expect_status(w.api("GET", "/policies?include_inactive=1"), 200)
    eq([x["id"] for x in r.body["policies"]], [a["id"]], "include_inactive must be exactly true")
    r = expect_status(w.api("GET", "/policies?active=false"), 200)
    eq([x["id"] for x in r.body["policies"]], [b["id"]], "active=false")
    expect_error(w.api("GET", "/policies?active=maybe"), 422, "invalid_param")


def test_v78_show_returns_sections_exactly(ctx):
    # spec mothership §13 #78
    w = ctx.world()
    p = new_policy(w, name="show me", fs={"read": ["/workspace"], "write": []},
                   net={"mode": "none"}, approval={"host_profile": "forbidden"})
    r = expect_status(w.api("GET", f"/policies/{p['id']}"), 200)
    eq(r.body.get("name"), "show me", "name")
    eq(r.body.get("fs"), {"read": ["/workspace"], "write": []}, "fs")
    eq(r.body.get("net"), {"mode": "none"}, "net")
    eq(r.body.get("approval"), {"host_profile": "forbidden"}, "approval")
    eq(r.body.get("secrets"), {}, "secrets")
    check(RECORD_TS.match(r.body.get("created_at") or ""), f"created_at: {r.body}")


def test_v79_show_other_account_404(ctx):
    # spec mothership §13 #79
    w, other = ctx.world(), ctx.world()
    p = new_policy(other, name="theirs")
    r = expect_error(w.api("GET", f"/policies/{p['id']}"), 404, "not_found")
    eq(r.body.get("detail"), "policy not found", "detail")
    expect_error(w.api("GET", "/policies/not-a-uuid"), 404, "not_found")


def test_v80_create_stored_with_callers_account(ctx):
    # spec mothership §13 #80
    w = ctx.world()
    r = expect_status(create_policy(w, {
        "name": "net policy", "priority": 10,
        "fs": {"read": ["workspace:**"], "write": ["workspace:**"]},
        "net": {"mode": "allowlist", "allow": ["github.com:443", "*.npmjs.org:443"]},
        "approval": {"net_unrestricted": "forbidden"}}), 201)
    eq(r.body.get("name"), "net policy", "name")
    eq(r.body.get("priority"), 10, "priority")
    eq(r.body.get("net"), {"mode": "allowlist", "allow": ["github.com:443", "*.npmjs.org:443"]},
       "net")
    rows = db_query(ctx.srv, "SELECT account_id FROM conduits_policies WHERE id = ?",
                    (r.body["id"],))
    eq(rows, [(w.account_id,)], "stored account_id")
    # no scope_type: stored as scope Account of the caller (never global over HTTP)
    eq(r.body.get("scope_type"), "Account", "default scope_type")
    eq(r.body.get("scope_id"), w.account_id, "default scope_id")


def test_v81_create_account_scope_echoes(ctx):
    # spec mothership §13 #81
    w = ctx.world()
    r = expect_status(create_policy(w, {"name": "acct", "scope_type": "Account",
                                        "scope_id": w.account_id}), 201)
    eq(r.body.get("scope_type"), "Account", "scope_type")
    eq(r.body.get("scope_id"), w.account_id, "scope_id")


def test_v82_create_without_name_422(ctx):
    # spec mothership §13 #82
    w = ctx.world()
    r = expect_error(create_policy(w, {"priority": 1}), 422, "validation_failed")
    check(any("name" in d for d in r.body.get("details") or []), f"details: {r.body}")
    expect_error(create_policy(w, {"name": "   "}), 422, "validation_failed", "blank name")
    eq(expect_status(w.api("GET", "/policies"), 200).body["policies"], [], "nothing stored")


def test_v83_patch_partial_update(ctx):
    # spec mothership §13 #83
    w = ctx.world()
    p = new_policy(w, name="before", priority=1, net={"mode": "none"})
    r = expect_status(w.api("PATCH", f"/policies/{p['id']}", {
        "name": "after", "priority": 99, "approval": {"host_profile": "forbidden"}}), 200)
    eq(r.body.get("name"), "after", "name")
    eq(r.body.get("priority"), 99, "priority")
    s = expect_status(w.api("GET", f"/policies/{p['id']}"), 200).body
    eq(s.get("approval"), {"host_profile": "forbidden"}, "stored approval")
    eq(s.get("net"), {"mode": "none"}, "untouched field kept")
    r = expect_status(w.api("PUT", f"/policies/{p['id']}", {"priority": "7"}), 200, "PUT")
    eq(r.body.get("priority"), 7, "numeric string priority")
    eq(r.body.get("name"), "after", "PUT is partial too")
    r = expect_error(w.api("PATCH", f"/policies/{p['id']}", {"net": {"mode": "sometimes"}}),
                     422, "validation_failed")
    eq(expect_status(w.api("GET", f"/policies/{p['id']}"), 200).body.get("net"),
       {"mode": "none"}, "a refused update changes nothing")


def test_v84_delete_soft(ctx):
    # spec mothership §13 #84
    w = ctx.world()
    p = new_policy(w, name="gone")
    r = expect_status(w.api("DELETE", f"/policies/{p['id']}"), 200)
    eq(r.body, {"id": p["id"], "active": False}, "delete body")
    eq(expect_status(w.api("GET", f"/policies/{p['id']}"), 200).body.get("active"), False,
       "stored inactive")
    eq(db_query(ctx.srv, "SELECT active FROM conduits_policies WHERE id = ?", (p["id"],)),
       [(0,)], "active column")


def test_v85_policies_without_auth_401(ctx):
    # spec mothership §13 #85
    for method, path in (("GET", "/policies"), ("POST", "/policies"),
                         ("GET", "/policies/0191b2a4-0000-7000-8000-000000000000"),
                         ("PATCH", "/policies/0191b2a4-0000-7000-8000-000000000000"),
                         ("DELETE", "/policies/0191b2a4-0000-7000-8000-000000000000"),
                         ("GET", "/audit_events")):
        r = ctx.srv.request(method, "/mothership/api/v1" + path,
                            body={"name": "x"} if method in ("POST", "PATCH") else None)
        expect_error(r, 401, "unauthorized", f"{method} {path}")


def test_s15_device_section_is_kept(ctx):
    # spec mothership §13 #S15 says the reference drops `device`; issue 4 lets users set it on
    # their own scopes (a documented difference): it is validated, stored and shown.
    w = ctx.world()
    p = new_policy(w, name="dev", device={"allowed": ["camera.*"], "denied": ["sms.send"]})
    eq(p.get("device"), {"allowed": ["camera.*"], "denied": ["sms.send"]}, "device echoed")
    r = expect_error(create_policy(w, {"name": "bad dev", "device": {"allowed": "camera.*"}}),
                     422, "validation_failed", "device.allowed as a string")
    r = expect_error(create_policy(w, {"name": "bad dev", "device": {"sometimes": []}}),
                     422, "validation_failed", "device with an unknown key")
    check("unknown" in r.body.get("detail", ""), f"detail names the unknown key: {r.body}")


def test_s16_scope_type_territory_and_101_fs_entries_422(ctx):
    # spec mothership §13 #S16
    w = ctx.world()
    expect_error(create_policy(w, {"name": "t", "scope_type": "Conduits::Territory",
                                   "scope_id": w.account_id}), 422, "validation_failed")
    expect_error(create_policy(w, {"name": "t", "scope_type": ""}), 422, "validation_failed",
                 "empty scope_type")
    r = expect_error(create_policy(w, {"name": "big", "fs": {
        "read": [f"/workspace/d{i}" for i in range(101)], "write": []}}), 422,
        "validation_failed")
    check("100" in r.body.get("detail", ""), f"detail names the limit: {r.body}")
    expect_status(create_policy(w, {"name": "ok", "fs": {
        "read": [f"/workspace/d{i}" for i in range(100)], "write": []}}), 201, "100 entries")


def test_policy_validation_errors(ctx):
    """Every §6.1 rule (and ours: allowlist entries, NetCapabilityV1) gives 422
    validation_failed with a message naming the problem; several are all reported."""
    w = ctx.world()
    cases = [
        ({"priority": None}, "priority"),
        ({"priority": 1.5}, "priority"),
        ({"priority": "ten"}, "priority"),
        ({"fs": {"read": ["/workspace"], "exec": []}}, "unknown"),
        ({"fs": {"read": "/workspace"}}, "read"),
        ({"fs": "workspace"}, "fs"),
        ({"net": {"mode": "sometimes"}}, "mode"),
        ({"net": {"mode": "allowlist", "allow": ["not a host"]}}, "allow"),
        ({"net": {"mode": "allowlist", "allow": ["10.0.0.1:443"]}}, "allow"),
        ({"net": {"mode": "allowlist"}}, "allow"),
        ({"approval": {"host_profile": "maybe"}}, "approval"),
        ({"approval": ["host_profile"]}, "approval"),
        ({"active": "yes"}, "active"),
        ({"scope_type": "Account", "scope_id": "not-a-uuid"}, "scope_id"),
    ]
    for extra, word in cases:
        body = {"name": "bad"}
        body.update(extra)
        r = expect_error(create_policy(w, body), 422, "validation_failed", json.dumps(extra))
        details = r.body.get("details")
        check(isinstance(details, list) and details, f"details for {extra}: {r.body}")
        check(any(word in d for d in details), f"no detail mentions {word!r} for {extra}: "
              f"{details}")
    r = expect_error(create_policy(w, {"priority": None, "net": {"mode": "x"}}), 422,
                     "validation_failed")
    check(len(r.body.get("details") or []) >= 3, f"all problems reported: {r.body}")
    eq(expect_status(w.api("GET", "/policies?include_inactive=true"), 200).body["policies"], [],
       "nothing stored")
    r = expect_status(w.api("POST", "/policies", raw=b"{not json",
                            headers={"Content-Type": "application/json"}), 400)


def test_policy_scope_must_be_in_callers_account(ctx):
    """Stricter than REF (§3.3.1 Quirk): User / Facility / Account scope ids must name
    something of the caller's account; a foreign id and an unknown id answer the same."""
    w, other = ctx.world(), ctx.world()
    u2, _ = w.other_user("colleague")
    fid = w.facility(w.territory())
    ofid = other.facility(other.territory())
    expect_status(create_policy(w, {"name": "u", "scope_type": "User", "scope_id": u2}), 201)
    expect_status(create_policy(w, {"name": "f", "scope_type": "Conduits::Facility",
                                    "scope_id": fid}), 201)
    unknown = "0191b2a4-0000-7000-8000-000000000001"
    for st, sid in (("User", other.user_id), ("User", unknown),
                    ("Conduits::Facility", ofid), ("Conduits::Facility", unknown),
                    ("Account", other.account_id), ("User", None)):
        body = {"name": "x", "scope_type": st}
        if sid:
            body["scope_id"] = sid
        r = expect_error(create_policy(w, body), 422, "validation_failed", f"{st} {sid}")
        check(other.account_id not in json.dumps(r.body), "the answer names another account")
    a = expect_error(create_policy(w, {"name": "x", "scope_type": "User",
                                       "scope_id": other.user_id}), 422).body
    b = expect_error(create_policy(w, {"name": "x", "scope_type": "User",
                                       "scope_id": unknown}), 422).body
    eq(a, b, "foreign and unknown user ids answer identically")


def test_policy_update_and_delete_other_account_404(ctx):
    w, other = ctx.world(), ctx.world()
    p = new_policy(other, name="theirs", approval={"host_profile": "forbidden"})
    expect_error(w.api("PATCH", f"/policies/{p['id']}", {"name": "mine now"}), 404, "not_found")
    expect_error(w.api("DELETE", f"/policies/{p['id']}"), 404, "not_found")
    s = expect_status(other.api("GET", f"/policies/{p['id']}"), 200).body
    eq((s.get("name"), s.get("active")), ("theirs", True), "unchanged")
    # moving a policy into another account's scope is refused like creating it there
    mine = new_policy(w, name="mine")
    expect_error(w.api("PATCH", f"/policies/{mine['id']}", {"scope_type": "User",
                                                           "scope_id": other.user_id}),
                 422, "validation_failed")


def test_policy_crud_is_audited(ctx):
    """Our addition (the reference audits no policy CRUD, §10.1): created / updated /
    deactivated, with the acting user."""
    w = ctx.world()
    p = new_policy(w, name="audited")
    expect_status(w.api("PATCH", f"/policies/{p['id']}", {"priority": 5}), 200)
    expect_status(w.api("DELETE", f"/policies/{p['id']}"), 200)
    for t in ("policy.created", "policy.updated", "policy.deactivated"):
        evs = events(w, type=t)
        eq(len(evs), 1, f"{t} events")
        eq(evs[0].get("actor_id"), w.user_id, f"{t} actor")
        eq(evs[0]["payload"].get("policy_id"), p["id"], f"{t} policy_id")
    eq(events(w, type="policy.updated")[0]["payload"].get("fields"), ["priority"],
       "updated fields")


def test_admin_create_global_validates_sections(ctx):
    """`mothership admin policy create-global` applies the same §6.1 validation."""
    srv = ctx.srv
    path = os.path.join(srv.log_dir, "bad_policy.json")
    for doc in ({"name": "g", "net": {"mode": "sometimes"}},
                {"name": "g", "approval": {"host_profile": "maybe"}},
                {"name": "g", "fs": {"read": ["/w"], "bogus": []}}):
        with open(path, "w") as f:
            json.dump(doc, f)
        try:
            srv.admin("policy", "create-global", "--file", path)
        except AdminError as e:
            check(e.rc == 1, f"exit status {e.rc} for {doc}")
            continue
        raise AssertionError(f"create-global accepted {doc}")


# --------------------------------------------------------------------------------------------
# directive creation (§3.3.2) — the end-to-end list


def test_forbidden_command_422_nothing_stored_audited(ctx):
    # spec mothership §13 #97, plus the directive.command_forbidden audit event (§10.1)
    w = ctx.world()
    fid = w.facility(w.territory())
    r = expect_error(w.create_directive(fid, "sudo rm -rf /", sandbox_profile="host"), 422,
                     "command_forbidden")
    v = r.body.get("violations") or []
    check("privilege escalation via sudo" in v and "recursive rm at filesystem root" in v,
          f"violations: {v}")
    eq(count_directives(w, fid), 0, "nothing stored")
    eq(db_query(ctx.srv, "SELECT count(*) FROM conduits_directives WHERE facility_id = ?",
                (fid,)), [(0,)], "no row")
    evs = events(w, type="directive.command_forbidden")
    eq(len(evs), 1, "command_forbidden events")
    e = evs[0]
    eq((e.get("severity"), e.get("actor_id"), e.get("directive_id")),
       ("critical", w.user_id, None), "severity/actor/no directive")
    eq(e["payload"].get("command"), "sudo rm -rf /", "payload.command")
    eq(e["payload"].get("sandbox_profile"), "host", "payload.sandbox_profile")
    eq(e["payload"].get("violations"), v, "payload.violations")


def test_policy_forbidden_403_nothing_stored_audited(ctx):
    # spec mothership §13 #87 with an Account-scoped policy, plus directive.policy_forbidden
    w = ctx.world()
    fid = w.facility(w.territory())
    p = new_policy(w, name="no host", approval={"host_profile": "forbidden"})
    r = expect_error(w.create_directive(fid, "echo hi", sandbox_profile="host"), 403,
                     "policy_forbidden")
    check(any("host" in x for x in r.body.get("reasons") or []), f"reasons: {r.body}")
    eq(r.body.get("policies_applied"), [p["id"]], "policies_applied")
    eq(count_directives(w, fid), 0, "nothing stored")
    e = events(w, type="directive.policy_forbidden")
    eq(len(e), 1, "policy_forbidden events")
    eq(e[0].get("severity"), "critical", "severity")
    eq(e[0]["payload"].get("policies_applied"), [p["id"]], "payload.policies_applied")
    eq(e[0]["payload"].get("reasons"), r.body.get("reasons"), "payload.reasons")
    # the untrusted profile is not touched by host_profile
    expect_status(w.create_directive(fid, "echo hi"), 201, "untrusted still allowed")


def test_policy_verdict_and_command_verdict_combine(ctx):
    # §3.3.2 step 3: policy reasons first, then the command's; the strictest verdict wins
    w = ctx.world()
    fid = w.facility(w.territory())
    new_policy(w, name="ask host", approval={"host_profile": "needs_approval"})
    r = expect_status(w.create_directive(fid, "ls | wc -l", sandbox_profile="host"), 202)
    reasons = r.body.get("approval_reasons")
    eq(reasons, ["host profile requires: needs_approval", "pipe operator"], "combined reasons")
    e = one_event(w, r.body["directive_id"], "directive.created")
    eq(e["payload"].get("verdict"), "needs_approval", "created verdict")
    eq(e["payload"].get("reasons"), reasons, "created reasons")


def test_created_event_skip_has_verdict_and_policies(ctx):
    # §10.1 directive.created for a queued directive: verdict skip, policies_applied, no reasons
    w = ctx.world()
    fid = w.facility(w.territory())
    p = new_policy(w, name="narrow", fs={"read": ["/workspace/src"], "write": []})
    did = w.directive(fid)
    e = one_event(w, did, "directive.created")
    eq(e["payload"], {"verdict": "skip", "policies_applied": [p["id"]]}, "payload")
    eq(e.get("actor_id"), w.user_id, "actor")
    d = w.d(did)
    eq((jcol(d["effective_capabilities"]) or {}).get("fs"),
       {"read": ["/workspace/src"], "write": []}, "effective fs from the policy")
    snap = jcol(d.get("policy_snapshot")) or {}
    eq(snap.get("policies_applied"), [p["id"]], "snapshot policies_applied")
    eq(snap.get("fs"), {"read": ["/workspace/src"], "write": []}, "snapshot fs")


def test_user_and_facility_scoped_policies_apply_only_there(ctx):
    # §6.5: a User policy applies to that requester only; a Facility policy to that facility
    w = ctx.world()
    tid = w.territory()
    f1, f2 = w.facility(tid), w.facility(tid)
    u2, tok2 = w.other_user("second")
    new_policy(w, name="f1 no host", scope_type="Conduits::Facility", scope_id=f1,
               approval={"host_profile": "forbidden"})
    new_policy(w, name="u2 no host", scope_type="User", scope_id=u2,
               approval={"host_profile": "forbidden"})
    expect_error(w.create_directive(f1, "echo a", sandbox_profile="host"), 403,
                 "policy_forbidden", "facility policy")
    expect_status(w.create_directive(f2, "echo a", sandbox_profile="host"), 201,
                  "other facility, first user")
    expect_error(w.create_directive(f2, "echo a", token=tok2, sandbox_profile="host"), 403,
                 "policy_forbidden", "user policy")


def test_net_request_is_narrowed_never_widened(ctx):
    # issue 4 item 3 (stricter than REF §6.6 step 5): a requested allowlist is intersected
    w = ctx.world()
    fid = w.facility(w.territory())
    new_policy(w, name="gh only", net={"mode": "allowlist", "allow": ["github.com:443",
                                                                      "*.example.org:443"]})
    did = w.directive(fid, requested_capabilities={"net": {
        "mode": "allowlist", "allow": ["github.com:443", "evil.com:443", "a.example.org:443"]}})
    net = (jcol(w.d(did)["effective_capabilities"]) or {}).get("net")
    eq(net, {"mode": "allowlist", "allow": ["github.com:443", "a.example.org:443"]},
       "effective net")
    did = w.directive(fid, requested_capabilities={"net": {"mode": "unrestricted"}})
    eq(((jcol(w.d(did)["effective_capabilities"]) or {}).get("net") or {}).get("mode"),
       "allowlist", "unrestricted request capped")


def test_cross_account_policies_do_not_apply(ctx):
    w, other = ctx.world(), ctx.world()
    new_policy(other, name="their rule", approval={"host_profile": "forbidden"})
    fid = w.facility(w.territory())
    did = w.directive(fid, "echo hi", sandbox_profile="host")
    snap = jcol(w.d(did).get("policy_snapshot")) or {}
    eq(snap.get("policies_applied"), [], "no policy of another account applied")


# --------------------------------------------------------------------------------------------
# approve / reject (§3.3.5, §6.10)


def test_held_directive_approved_by_other_user_then_leased(ctx):
    """The issue's flow: a risky command is held, the requester's own approval is refused,
    another user's approval (with a reason) lets a polling territory lease it; every step has
    its audit event, and the terminal event carries the timing telemetry."""
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    did = held(w, fid)
    r = expect_status(w.poll(tid, profiles=["host"]), 200, "poll while held")
    eq(lease_ids(r), [], "an awaiting directive is never leased")
    r = expect_error(w.api("POST", f"/facilities/{fid}/directives/{did}/approve",
                           {"reason": "my own"}), 403, "forbidden")
    check("cannot approve own" in r.body.get("detail", ""), f"detail: {r.body}")
    eq(w.d(did)["state"], "awaiting_approval", "still awaiting")
    other, tok = w.other_user("reviewer")
    r = expect_status(w.api("POST", f"/facilities/{fid}/directives/{did}/approve",
                            {"reason": "grep of a log file is fine"}, token=tok), 200)
    eq((r.body.get("state"), r.body.get("approved_by_user_id"), r.body.get("reason")),
       ("queued", other, "grep of a log file is fine"), "approve response")
    d = w.d(did)
    eq((d["state"], d["approved_by_user_id"], d["decision_reason"]),
       ("queued", other, "grep of a log file is fine"), "stored decision")
    check(d.get("decided_at"), "decided_at")
    show = expect_status(w.api("GET", f"/facilities/{fid}/directives/{did}"), 200).body
    eq((show.get("approved_by_user_id"), show.get("decision_reason")),
       (other, "grep of a log file is fine"), "decision in the user API view")
    r = expect_status(w.poll(tid, profiles=["host"]), 200, "poll after approval")
    eq(lease_ids(r), [did], "leased after approval")
    lease = r.body["directives"][0]
    token = lease["directive_token"]
    expect_status(w.t(tid, "POST", f"/directives/{did}/started", {"nexus_version": "1"},
                      token=token), 200, "started")
    expect_status(w.t(tid, "POST", f"/directives/{did}/finished",
                      {"status": "succeeded", "exit_code": 0}, token=token), 200, "finished")
    # every step's audit event (§10.1)
    e = one_event(w, did, "directive.created")
    eq(e["payload"].get("verdict"), "needs_approval", "created verdict")
    check(any("pipe" in x for x in e["payload"].get("reasons") or []), f"created: {e}")
    e = one_event(w, did, "directive.approved")
    eq((e.get("actor_id"), e["payload"].get("approved_by_user_id"), e["payload"].get("reason")),
       (other, other, "grep of a log file is fine"), "approved event")
    e = one_event(w, did, "directive.started")
    check(isinstance(e["payload"].get("time_to_start_ms"), int), f"started: {e}")
    eq(e.get("territory_id"), tid, "started territory")
    e = one_event(w, did, "directive.finished")
    p = e["payload"]
    check(isinstance(p.get("time_to_start_ms"), int) and isinstance(p.get("total_duration_ms"),
                                                                     int),
          f"finished timing: {p}")
    check(0 <= p["time_to_start_ms"] <= p["total_duration_ms"], f"timing order: {p}")
    eq((p.get("status"), p.get("exit_code")), ("succeeded", 0), "finished status")
    check(w.d(did).get("started_at"), "started_at stored")


def test_rejection_is_terminal_and_recorded(ctx):
    # spec mothership §13 #93 plus who and why; rejection is terminal (§2.1 reject)
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    did = held(w, fid)
    other, tok = w.other_user("reviewer")
    r = expect_status(w.api("POST", f"/facilities/{fid}/directives/{did}/reject",
                            {"reason": "no pipes on prod"}, token=tok), 200)
    eq((r.body.get("state"), r.body.get("rejected_by_user_id"), r.body.get("reason")),
       ("canceled", other, "no pipes on prod"), "reject response")
    d = w.d(did)
    eq((d["state"], d["rejected_by_user_id"], d["decision_reason"], d["approved_by_user_id"]),
       ("canceled", other, "no pipes on prod", None), "stored")
    expect_error(w.api("POST", f"/facilities/{fid}/directives/{did}/approve", token=tok), 409,
                 "state_conflict", "approve after reject")
    expect_error(w.api("POST", f"/facilities/{fid}/directives/{did}/reject", token=tok), 409,
                 "state_conflict", "reject twice")
    eq(lease_ids(expect_status(w.poll(tid, profiles=["host"]), 200)), [], "never leased")
    e = one_event(w, did, "directive.rejected")
    eq((e.get("actor_id"), e["payload"].get("rejected_by_user_id"), e["payload"].get("reason")),
       (other, other, "no pipes on prod"), "rejected event")


def test_requester_may_reject_own(ctx):
    # §6.10: rejection has no self restriction (spec §13 #93)
    w = ctx.world()
    fid = w.facility(w.territory())
    did = held(w, fid)
    r = expect_status(w.api("POST", f"/facilities/{fid}/directives/{did}/reject"), 200)
    eq(r.body.get("rejected_by_user_id"), w.user_id, "rejected by the requester")
    eq(w.d(did)["decision_reason"], None, "no reason given")


def test_decision_reason_validated(ctx):
    w = ctx.world()
    fid = w.facility(w.territory())
    did = held(w, fid)
    _, tok = w.other_user()
    for bad in ({"reason": 5}, {"reason": "x" * 1001}, {"reason": ["a"]}):
        expect_error(w.api("POST", f"/facilities/{fid}/directives/{did}/approve", bad,
                           token=tok), 422, "invalid_param", json.dumps(bad)[:40])
    eq(w.d(did)["state"], "awaiting_approval", "unchanged")
    r = expect_status(w.api("POST", f"/facilities/{fid}/directives/{did}/approve",
                            {"reason": "y" * 1000}, token=tok), 200, "1000 bytes accepted")
    eq(len(w.d(did)["decision_reason"]), 1000, "stored reason")


def test_approval_other_account_404(ctx):
    w, other = ctx.world(), ctx.world()
    fid = w.facility(w.territory())
    did = held(w, fid)
    expect_error(other.api("POST", f"/facilities/{fid}/directives/{did}/approve"), 404,
                 "not_found")
    eq(w.d(did)["state"], "awaiting_approval", "unchanged")


# --------------------------------------------------------------------------------------------
# poll-time re-validation (§7.4 step 3, §6.11)


def test_v150_policy_added_after_creation_forbids_cancel_at_poll(ctx):
    # spec mothership §13 #150
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    did = w.directive(fid, "echo hi", sandbox_profile="host")
    p = new_policy(w, name="no host now", approval={"host_profile": "forbidden"})
    r = expect_status(w.poll(tid, profiles=["host"]), 200)
    eq(lease_ids(r), [], "not leased")
    d = w.d(did)
    eq((d["state"], d["territory_id"]), ("canceled", None), "canceled, never bound")
    eq(w.f(fid).get("locked_by_directive_id"), None, "facility not locked")
    e = one_event(w, did, "directive.lease_policy_revalidated")
    eq(e.get("severity"), "warn", "severity")
    eq((e["payload"].get("action"), e["payload"].get("reason")),
       ("canceled", "policy_now_forbidden"), "payload")
    eq(e["payload"].get("policies_applied"), [p["id"]], "policies_applied")


def test_policy_newly_needs_approval_is_held_not_leased(ctx):
    """Issue 4: the reference leases a directive that newly needs approval (a bug); here it
    goes back to awaiting_approval, and once someone approves it the approval stands."""
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    did = w.directive(fid, "echo hi", sandbox_profile="host")
    new_policy(w, name="ask now", approval={"host_profile": "needs_approval"})
    r = expect_status(w.poll(tid, profiles=["host"]), 200)
    eq(lease_ids(r), [], "not leased")
    eq(w.d(did)["state"], "awaiting_approval", "held")
    e = one_event(w, did, "directive.lease_policy_revalidated")
    eq((e.get("severity"), e["payload"].get("action"), e["payload"].get("reason")),
       ("warn", "awaiting_approval", "policy_now_needs_approval"), "event")
    check(any("host" in x for x in e["payload"].get("reasons") or []), f"reasons: {e}")
    _, tok = w.other_user()
    expect_status(w.api("POST", f"/facilities/{fid}/directives/{did}/approve", token=tok), 200)
    r = expect_status(w.poll(tid, profiles=["host"]), 200)
    eq(lease_ids(r), [did], "leased: the approval stands")
    eq(len(events(w, directive_id=did, type="directive.lease_policy_revalidated")), 1,
       "no second hold")


def test_approval_withdrawn_when_capabilities_widen_after_it(ctx):
    """Security review M1: B approved what they saw (net none); a later account-policy edit
    that widens the directive's network must not ride on that approval."""
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    pid = new_policy(w, name="net", priority=10, net={"mode": "none"},
                     approval={"host_profile": "needs_approval"})["id"]
    did = w.create_directive(fid, "echo hi", sandbox_profile="host",
                             requested_capabilities={"net": {"mode": "unrestricted"}}).body[
                                 "directive_id"]
    eq(w.d(did)["state"], "awaiting_approval", "held by the host rule")
    eq(jcol(w.d(did)["effective_capabilities"])["net"].get("mode"), "none",
       "the approver sees net none")
    _, tok = w.other_user()
    expect_status(w.api("POST", f"/facilities/{fid}/directives/{did}/approve", token=tok), 200)
    expect_status(w.api("PATCH", f"/policies/{pid}", {"net": {"mode": "unrestricted"}}), 200)
    eq(lease_ids(expect_status(w.poll(tid, profiles=["host"]), 200)), [], "not leased")
    d = w.d(did)
    eq((d["state"], d.get("approved_by_user_id")), ("awaiting_approval", None),
       "held again, approval withdrawn")
    eq(jcol(d["effective_capabilities"])["net"].get("mode"), "unrestricted",
       "the new capabilities are what the next approver sees")
    e = one_event(w, did, "directive.lease_policy_revalidated")
    eq(e["payload"].get("reason"), "capabilities_changed_after_approval", "event reason")
    expect_status(w.api("POST", f"/facilities/{fid}/directives/{did}/approve", token=tok), 200)
    eq(lease_ids(expect_status(w.poll(tid, profiles=["host"]), 200)), [did],
       "leased after a fresh approval")


def test_approved_directive_escalated_to_forbidden_is_canceled(ctx):
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    did = held(w, fid)
    _, tok = w.other_user()
    expect_status(w.api("POST", f"/facilities/{fid}/directives/{did}/approve", token=tok), 200)
    new_policy(w, name="no host now", approval={"host_profile": "forbidden"})
    eq(lease_ids(expect_status(w.poll(tid, profiles=["host"]), 200)), [], "not leased")
    eq(w.d(did)["state"], "canceled", "the approval does not outrank forbidden")


def test_v151_policy_narrows_fs_at_poll(ctx):
    # spec mothership §13 #151
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    did = w.directive(fid)
    before = jcol(w.d(did)["effective_capabilities"])
    eq(before.get("fs"), {"read": ["workspace:**"], "write": ["workspace:**"]}, "before")
    p = new_policy(w, name="src only", fs={"read": ["/workspace/src"], "write": []})
    r = expect_status(w.poll(tid), 200)
    eq(lease_ids(r), [did], "leased")
    d = w.d(did)
    eff = jcol(d["effective_capabilities"])
    eq(eff.get("fs"), {"read": ["/workspace/src"], "write": []}, "stored effective fs")
    eq(r.body["directives"][0]["spec"]["capabilities"].get("fs"),
       {"read": ["/workspace/src"], "write": []}, "the lease carries the new capabilities")
    eq((jcol(d["policy_snapshot"]) or {}).get("policies_applied"), [p["id"]], "re-snapshotted")
    e = one_event(w, did, "directive.lease_policy_revalidated")
    eq((e.get("severity"), e["payload"].get("action")), ("info", "capabilities_updated"),
       "event")


def test_v152_no_policy_change_leases_without_event(ctx):
    # spec mothership §13 #152
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    new_policy(w, name="src only", fs={"read": ["/workspace/src"], "write": []})
    did = w.directive(fid)
    eq(lease_ids(expect_status(w.poll(tid), 200)), [did], "leased")
    eq(events(w, directive_id=did, type="directive.lease_policy_revalidated"), [],
       "no re-validation event")


# --------------------------------------------------------------------------------------------
# GET /audit_events


def test_audit_query_filters_and_pagination(ctx):
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    dids = [w.directive(fid, f"echo {i}") for i in range(5)]
    evs = events(w, type="directive.created")
    eq(sorted(e["directive_id"] for e in evs), sorted(dids), "created events")
    eq([e["directive_id"] for e in evs], list(reversed(dids)), "newest first")
    for e in evs:
        check(RECORD_TS.match(e.get("created_at") or ""), f"created_at: {e}")
        eq(e.get("account_id"), w.account_id, "account")
    asc = events(w, type="directive.created", order="asc")
    eq([e["directive_id"] for e in asc], dids, "order=asc")
    # pagination: 2 + 2 + 1, next_cursor null at the end
    seen, cursor, pages = [], None, 0
    while True:
        q = {"type": "directive.created", "limit": 2}
        if cursor:
            q["cursor"] = cursor
        r = expect_status(audit(w, **q), 200)
        seen += [e["directive_id"] for e in r.body["audit_events"]]
        cursor = r.body.get("next_cursor")
        pages += 1
        if not cursor or pages > 5:
            break
    eq(seen, list(reversed(dids)), "pages cover every event once")
    eq(pages, 3, "pages")
    eq([e["directive_id"] for e in events(w, directive_id=dids[2])], [dids[2]], "directive_id")
    # territory filter: lease + start one
    r = expect_status(w.poll(tid), 200)
    ls = r.body["directives"][0]
    expect_status(w.t(tid, "POST", f"/directives/{ls['directive_id']}/started", {},
                      token=ls["directive_token"]), 200)
    evs = events(w, territory_id=tid)
    eq([e["event_type"] for e in evs], ["directive.started"], "territory_id filter")
    # time range: everything is after 2000 and before 2100; nothing before 2000
    eq(len(events(w, since="2000-01-01T00:00:00Z", until="2100-01-01T00:00:00Z")),
       len(events(w)), "since/until covering all")
    eq(events(w, until="2000-01-01T00:00:00Z"), [], "until in the past")
    first = events(w, order="asc")[0]
    eq(events(w, since="2100-01-01T00:00:00.000Z"), [], "since in the future")
    check(first in events(w, since=first["created_at"]), "since is inclusive")
    check(first not in events(w, until=first["created_at"]), "until is exclusive")


def test_audit_query_bad_filters_422(ctx):
    w = ctx.world()
    for q, code in (({"since": "yesterday"}, "invalid_param"),
                    ({"until": "2026-13-01T00:00:00Z"}, "invalid_param"),
                    ({"directive_id": "nope"}, "invalid_param"),
                    ({"territory_id": "1234"}, "invalid_param"),
                    ({"severity": "fatal"}, "invalid_param"),
                    ({"order": "sideways"}, "invalid_param"),
                    ({"cursor": "x"}, "invalid_param"),
                    ({"type": "x" * 200}, "invalid_param"),
                    ({"limit": "0"}, "invalid_limit"),
                    ({"limit": "201"}, "invalid_limit"),
                    ({"limit": "ten"}, "invalid_limit")):
        expect_error(audit(w, **q), 422, code, json.dumps(q)[:60])


def test_audit_query_is_account_scoped(ctx):
    w, other = ctx.world(), ctx.world()
    fid = w.facility(w.territory())
    did = w.directive(fid)
    check(events(w, directive_id=did), "own event visible")
    eq(events(other, directive_id=did), [], "another account sees nothing of it")
    check(all(e["account_id"] == other.account_id for e in events(other)),
          "only the caller's account")


def test_wake_up_broadcast_audited_for_long_poll(ctx):
    """§10.1 directive.wake_up_broadcast (spec §13 #115 analogue): our wake-up channel is the
    parked long-poll, so via = long_poll and territory_count counts the polls woken."""
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    out = {}

    def park():
        out["r"] = w.poll(tid, wait_seconds=10)

    t = threading.Thread(target=park)
    t.start()
    time.sleep(0.8)   # let the poll park (nothing is queued yet)
    did = w.directive(fid)
    t.join(15)
    check("r" in out, "long-poll did not return")
    eq(lease_ids(out["r"]), [did], "the parked poll got the directive")
    e = one_event(w, did, "directive.wake_up_broadcast")
    eq((e["payload"].get("via"), e["payload"].get("territory_count")), ("long_poll", 1),
       "payload")
    # nobody parked: no event (§10.1: only when pushed to at least one territory)
    did2 = w.directive(fid)
    eq(events(w, directive_id=did2, type="directive.wake_up_broadcast"), [], "no listener")
    # spec mothership §13 #122: a directive awaiting approval wakes nobody
    tid2 = w.territory()
    fid2 = w.facility(tid2)
    out.clear()

    def park_host():
        out["r"] = w.poll(tid2, profiles=["host"], wait_seconds=2)

    t = threading.Thread(target=park_host)
    t.start()
    time.sleep(0.5)
    hid = held(w, fid2)
    t.join(10)
    eq(lease_ids(out["r"]), [], "the parked poll got nothing")
    eq(events(w, directive_id=hid, type="directive.wake_up_broadcast"), [],
       "no wake-up for an awaiting directive")


def metric_value(srv, name):
    r = expect_status(srv.request("GET", "/metrics"), 200, "/metrics")
    text = r.raw.decode("utf-8", "replace")
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_audit_write_failure_never_fails_the_request(ctx):
    """Issue 4 item 8: a failing audit insert (here: a trigger installed from the test that
    aborts every insert) leaves the request successful, is counted in
    conduits_audit_write_failures_total and logged as an error line."""
    with OwnServer(ctx) as w:
        srv = w.srv
        tid = w.territory()
        fid = w.facility(tid)
        before = metric_value(srv, "conduits_audit_write_failures_total")
        db_exec(srv, "CREATE TRIGGER itest_audit_broken BEFORE INSERT ON conduits_audit_events "
                     "BEGIN SELECT RAISE(ABORT, 'itest: audit table unwritable'); END;")
        try:
            did = w.directive(fid, "echo survives")                      # outside a tx
            hid = held(w, fid)
            _, tok = w.other_user()
            expect_status(w.api("POST", f"/facilities/{fid}/directives/{hid}/approve",
                                token=tok), 200, "approve (audit inside its transaction)")
            expect_error(w.create_directive(fid, "sudo ls", sandbox_profile="host"), 422,
                         "command_forbidden", "refusal still answered")
        finally:
            db_exec(srv, "DROP TRIGGER itest_audit_broken;")
        eq(w.d(did)["state"], "queued", "directive stored")
        d = w.d(hid)
        eq((d["state"], d["approved_by_user_id"] is not None), ("queued", True),
           "approval committed although its audit failed")
        after = metric_value(srv, "conduits_audit_write_failures_total")
        check(after - before >= 4, f"failures counted: {before} -> {after}")
        eq(db_query(srv, "SELECT count(*) FROM conduits_audit_events WHERE directive_id IN "
                         "(?, ?)", (did, hid)), [(0,)], "no event written meanwhile")
        time.sleep(0.2)
        with open(srv.log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        check("audit write failed" in log and "itest: audit table unwritable" in log,
              "error line in the log")
        # and writing works again afterwards
        did2 = w.directive(fid)
        eq(len(events(w, directive_id=did2, type="directive.created")), 1, "audit back")


if __name__ == "__main__":
    run_tap(globals(), setup=default_setup, teardown=default_teardown)
