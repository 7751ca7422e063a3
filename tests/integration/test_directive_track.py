#!/usr/bin/env python3
"""Directive track end to end against a real mothership (spec mothership §13.1 vectors 1-43,
§13.6 vectors 86-101, a few §13.11 supplementary vectors and the additions of the
CLI/HTTP contract: cancel, plain-text log, list pagination, long-poll, facility and
enrollment-token endpoints).

One server for the whole file; every test builds its own account/territory/facility/directive
so that the cases are independent (a poll claims any queued directive of the territory's
account, so sharing an account between tests would make them interfere).
Usage: test_directive_track.py <path to mothership binary>   (TAP on stdout)
"""
import base64
import json
import os
import re
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (World, b64, check, col_false, col_true, default_setup,  # noqa: E402
                     default_teardown, eq, expect_error, expect_status, fresh_source_ip,
                     is_uuid, jcol, jwt_claims, jwt_sign, run_tap, server_jwt_key, short, skip,
                     b64url)

RECORD_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SECOND_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
REPO = "https://git.example.com/acme/app.git"
CSR_REASON = "CSR enrollment arrives with the built-in CA (TLS issue)"

# --------------------------------------------------------------------------------------------
# §13.1 directive track


def test_v01_enroll_returns_territory_and_config(ctx):
    w = ctx.world()
    r = w.enroll(w.first_enroll_token, name="itest-v01", labels={"env": "test"},
                 metadata={"capacity": {"max_concurrent": 2}})
    expect_status(r, 201, "enroll")
    b = r.body
    check(is_uuid(b.get("territory_id")), f"territory_id missing/not a UUID: {b}")
    cfg = b.get("config")
    check(isinstance(cfg, dict), f"config missing: {b}")
    for k in ("poll_interval_seconds", "lease_ttl_seconds", "cable_url"):
        check(k in cfg and cfg[k] is not None, f"config.{k} missing: {cfg}")
    eq(cfg.get("heartbeat_interval_ws_seconds"), 300, "config.heartbeat_interval_ws_seconds")
    eq(cfg.get("heartbeat_interval_seconds"), 30, "config.heartbeat_interval_seconds")
    eq(cfg.get("poll_interval_seconds"), 2, "config.poll_interval_seconds")
    eq(cfg.get("lease_ttl_seconds"), 300, "config.lease_ttl_seconds")
    eq(b.get("kind"), "server", "kind")


def test_v02_enrolled_territory_online_and_token_used(ctx):
    w = ctx.world()
    tok = w.new_enroll_token(labels={"team": "infra"})
    r = expect_status(w.enroll(tok["enroll_token"], name="itest-v02", labels={"env": "ci"},
                               metadata={"capacity": {"max_concurrent": 2}}), 201, "enroll")
    tid = r.body["territory_id"]
    t = w.terr(tid)
    eq(t.get("status"), "online", "territory status")
    eq(t.get("name"), "itest-v02", "territory name")
    eq(t.get("account_id"), w.account_id, "territory account")
    eq(jcol(t.get("labels")), {"team": "infra", "env": "ci"}, "labels (token labels + request)")
    eq(jcol(t.get("capacity")), {"max_concurrent": 2}, "capacity from metadata.capacity")
    row = w.srv.admin("enroll-token", "show", tok["id"])
    check(row.get("used_at"), f"token used_at not set: {row}")
    check("enroll_token" not in row, f"enroll-token show must not reveal the plaintext: {row}")
    r2 = w.enroll(tok["enroll_token"], name="again")
    expect_error(r2, 422, "invalid_token", "re-using a consumed token")


def test_v03_enroll_with_csr(ctx):
    skip(CSR_REASON)


def test_v04_heartbeat_by_fingerprint(ctx):
    skip(CSR_REASON)


def test_v05_create_directive_queued_and_stored(ctx):
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    r = w.create_directive(fid, "echo hi && ls", shell="/bin/bash", sandbox_profile="untrusted",
                           timeout_seconds=60, requested_capabilities={"network": True})
    expect_status(r, 201, "create directive")
    eq(r.body.get("state"), "queued", "state")
    did = r.body.get("directive_id")
    check(is_uuid(did), f"directive_id: {r.body}")
    check(isinstance(r.body.get("created_at"), str) and RECORD_TS.match(r.body["created_at"]),
          f"created_at must be an RFC 3339 ms timestamp: {r.body.get('created_at')!r}")
    d = w.d(did)
    eq(d.get("command"), "echo hi && ls", "stored command")
    eq(d.get("shell"), "/bin/bash", "stored shell")
    eq(d.get("sandbox_profile"), "untrusted", "stored sandbox_profile")
    eq(d.get("timeout_seconds"), 60, "stored timeout_seconds")
    eq(d.get("state"), "queued", "stored state")
    eq(d.get("facility_id"), fid, "stored facility")
    eq(d.get("account_id"), w.account_id, "stored account")
    eq(d.get("requested_by_user_id"), w.user_id, "stored requester")
    eq(jcol(d.get("requested_capabilities")), {"network": True}, "requested_capabilities")


def test_v06_poll_leases_one_directive(ctx):
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid, repo_url=REPO)
    did = w.directive(fid, "make test", shell="/bin/bash", timeout_seconds=60)
    r = expect_status(w.poll(tid, profiles=["untrusted", "trusted"], max_claim=3), 200, "poll")
    ds = r.body.get("directives")
    check(isinstance(ds, list) and len(ds) == 1, f"expected exactly 1 lease: {short(r.body)}")
    lease = ds[0]
    eq(lease.get("directive_id"), did, "leased directive")
    check(isinstance(lease.get("directive_token"), str) and lease["directive_token"],
          "directive_token must be a non-empty string")
    spec = lease.get("spec") or {}
    eq(spec.get("command"), "make test", "spec.command")
    eq(spec.get("shell"), "/bin/bash", "spec.shell")
    eq((spec.get("facility") or {}).get("mount"), "/workspace", "spec.facility.mount")
    eq((spec.get("facility") or {}).get("repo_url"), REPO, "spec.facility.repo_url")
    eq((spec.get("facility") or {}).get("id"), fid, "spec.facility.id")
    eq(r.body.get("lease_ttl_seconds"), 300, "lease_ttl_seconds")
    eq(r.body.get("retry_after_seconds"), 0, "retry_after_seconds with a lease")


def test_v07_leased_state_and_facility_lock(ctx):
    w = ctx.world()
    ls = w.lease()
    d = w.d(ls.did)
    eq(d.get("state"), "leased", "state")
    eq(d.get("territory_id"), ls.tid, "territory_id")
    check(d.get("lease_expires_at"), f"lease_expires_at not set: {d}")
    eq(w.f(ls.fid).get("locked_by_directive_id"), ls.did, "facility locked_by_directive_id")


def test_v08_second_poll_gets_nothing(ctx):
    w = ctx.world()
    ls = w.lease()
    r = expect_status(w.poll(ls.tid, profiles=["untrusted", "trusted"], max_claim=3), 200)
    eq(r.body.get("directives"), [], "directives of the second poll")
    check(isinstance(r.body.get("retry_after_seconds"), int) and r.body["retry_after_seconds"] > 0,
          f"retry_after_seconds must be > 0: {r.body}")


def test_v09_started_moves_to_running(ctx):
    w = ctx.world()
    ls = w.lease()
    r = expect_status(w.started(ls, sandbox_version="bwrap-0.8.0", nexus_version="0.1.0"), 200)
    eq(r.body.get("ok"), True, "ok")
    eq(r.body.get("duplicate"), False, "duplicate")
    eq(r.body.get("state"), "running", "state")
    eq(r.body.get("directive_id"), ls.did, "directive_id")
    d = w.d(ls.did)
    eq(d.get("state"), "running", "stored state")
    eq(d.get("sandbox_version"), "bwrap-0.8.0", "stored sandbox_version")
    eq(d.get("nexus_version"), "0.1.0", "stored nexus_version")


def test_v10_started_repeat_is_duplicate(ctx):
    w = ctx.world()
    ls = w.lease()
    expect_status(w.started(ls, sandbox_version="bwrap-0.8.0", nexus_version="0.1.0"), 200)
    r = expect_status(w.started(ls, sandbox_version="bwrap-0.8.0", nexus_version="0.1.0"), 200)
    eq(r.body.get("ok"), True, "ok")
    eq(r.body.get("duplicate"), True, "duplicate")
    eq(r.body.get("state"), "running", "state")


def test_v11_started_with_other_version_conflicts(ctx):
    w = ctx.world()
    ls = w.lease()
    expect_status(w.started(ls, sandbox_version="bwrap-0.8.0", nexus_version="0.1.0"), 200)
    r = w.started(ls, sandbox_version="bwrap-0.8.0", nexus_version="9.9.9")
    expect_error(r, 409, "invalid_state")
    eq(w.d(ls.did).get("nexus_version"), "0.1.0", "nexus_version unchanged")


def test_v12_directive_heartbeat_renews(ctx):
    w = ctx.world()
    ls = w.running()
    before = w.d(ls.did)
    r = expect_status(w.heartbeat(ls, progress={"pct": 10}), 200)
    eq(r.body.get("cancel_requested"), False, "cancel_requested")
    eq(r.body.get("lease_renewed"), True, "lease_renewed")
    tok = r.body.get("directive_token")
    check(isinstance(tok, str) and tok, "fresh directive_token must be non-empty")
    c = jwt_claims(tok)
    eq(c.get("sub"), ls.did, "new token sub")
    eq(c.get("tid"), ls.tid, "new token tid")
    eq(c.get("exp", 0) - c.get("iat", 0), 300, "new token TTL")
    after = w.d(ls.did)
    check(after.get("last_heartbeat_at"), f"last_heartbeat_at not set: {after}")
    check(after.get("lease_expires_at") and after["lease_expires_at"] >= before["lease_expires_at"],
          f"lease_expires_at not renewed: {before.get('lease_expires_at')} -> "
          f"{after.get('lease_expires_at')}")


def test_v13_heartbeat_with_refreshed_token(ctx):
    w = ctx.world()
    ls = w.running()
    r = expect_status(w.heartbeat(ls), 200)
    r2 = expect_status(w.heartbeat(ls, token=r.body["directive_token"]), 200,
                       "heartbeat with the refreshed token")
    eq(r2.body.get("lease_renewed"), True, "lease_renewed")


def _chunks(w, ls, stream, after=-1, limit=500):
    r = expect_status(w.log_page(ls.fid, ls.did, stream=stream, after_seq=after, limit=limit),
                      200, f"log page {stream}")
    return r.body


def test_v14_log_chunks_stored_per_stream(ctx):
    w = ctx.world()
    ls = w.running()
    out, err = b"hello\n", b"\x00\xffwarning: binary\n"
    for stream, data in (("stdout", out), ("stderr", err)):
        r = expect_status(w.chunk(ls, stream, 0, data), 200, f"{stream} chunk")
        eq(r.body.get("ok"), True, "ok")
        eq(r.body.get("stored"), True, "stored")
        eq(r.body.get("duplicate"), False, "duplicate")
        eq(r.body.get("accepted_bytes"), len(data), "accepted_bytes")
        eq(r.body.get("truncated"), False, "truncated")
        eq(r.body.get("stream"), stream, "stream echo")
        eq(r.body.get("seq"), 0, "seq echo")
    for stream, data in (("stdout", out), ("stderr", err)):
        chunks = _chunks(w, ls, stream)["chunks"]
        eq(len(chunks), 1, f"{stream} chunk count")
        eq(base64.b64decode(chunks[0]["bytes_base64"]), data, f"{stream} bytes")
        eq(chunks[0].get("bytesize"), len(data), f"{stream} bytesize")
    d = w.d(ls.did)
    eq(d.get("stdout_bytes"), len(out), "stdout_bytes")
    eq(d.get("stderr_bytes"), len(err), "stderr_bytes")


def test_v15_second_stdout_chunk_concatenates(ctx):
    w = ctx.world()
    ls = w.running()
    expect_status(w.chunk(ls, "stdout", 0, b"hello\n"), 200)
    expect_status(w.chunk(ls, "stdout", 1, b"world\n"), 200)
    chunks = _chunks(w, ls, "stdout")["chunks"]
    eq([c["seq"] for c in chunks], [0, 1], "seqs ascending")
    eq(b"".join(base64.b64decode(c["bytes_base64"]) for c in chunks), b"hello\nworld\n",
       "concatenated stdout")


def _two_chunks(w):
    ls = w.running()
    expect_status(w.chunk(ls, "stdout", 0, b"hello\n"), 200)
    expect_status(w.chunk(ls, "stdout", 1, b"world\n"), 200)
    expect_status(w.chunk(ls, "stderr", 0, b"oops\n"), 200)
    return ls


def test_v16_log_read_first_page(ctx):
    w = ctx.world()
    ls = _two_chunks(w)
    b = _chunks(w, ls, "stdout", after=-1, limit=1)
    eq(b.get("stream"), "stdout", "stream")
    eq(b.get("directive_id"), ls.did, "directive_id")
    eq(b.get("facility_id"), ls.fid, "facility_id")
    eq(b.get("after_seq"), -1, "after_seq echo")
    eq(b.get("limit"), 1, "limit echo")
    eq(len(b.get("chunks", [])), 1, "chunk count")
    c = b["chunks"][0]
    eq(c.get("seq"), 0, "seq")
    eq(base64.b64decode(c["bytes_base64"]), b"hello\n", "content")
    eq(c.get("truncated"), False, "chunk truncated")
    check(isinstance(c.get("created_at"), str) and SECOND_TS.match(c["created_at"]),
          f"chunk created_at must be second precision: {c.get('created_at')!r}")
    eq(b.get("next_after_seq"), 0, "next_after_seq")
    eq(b.get("stdout_truncated"), False, "stdout_truncated")
    eq(b.get("stderr_truncated"), False, "stderr_truncated")


def test_v17_log_read_after_seq(ctx):
    w = ctx.world()
    ls = _two_chunks(w)
    b = _chunks(w, ls, "stdout", after=0, limit=200)
    eq([c["seq"] for c in b.get("chunks", [])], [1], "seqs after 0")
    eq(base64.b64decode(b["chunks"][0]["bytes_base64"]), b"world\n", "content")
    eq(b.get("next_after_seq"), 1, "next_after_seq")
    b2 = _chunks(w, ls, "stdout", after=1, limit=200)
    eq(b2.get("chunks"), [], "nothing after the last chunk")
    eq(b2.get("next_after_seq"), 1, "next_after_seq echoes after_seq when empty")


def test_v18_log_read_stderr(ctx):
    w = ctx.world()
    ls = _two_chunks(w)
    b = _chunks(w, ls, "stderr")
    eq(len(b.get("chunks", [])), 1, "stderr chunk count")
    eq(b["chunks"][0].get("seq"), 0, "seq")
    eq(base64.b64decode(b["chunks"][0]["bytes_base64"]), b"oops\n", "content")
    eq(b.get("stderr_truncated"), False, "stderr_truncated")


DIFF = (b"--- a/README\n+++ b/README\n@@ -1 +1 @@\n-old\n+new\n")


def _finish_v19(w, ls, **over):
    body = dict(exit_code=0, stdout_truncated=False, stderr_truncated=False,
                diff_truncated=False, snapshot_before="abc123", snapshot_after="def456",
                artifacts_manifest={"files": ["output.tar.gz"]}, diff_base64=b64(DIFF))
    body.update(over)
    return w.finished(ls, "succeeded", **body)


def test_v19_finished_succeeded(ctx):
    w = ctx.world()
    ls = w.running()
    r = expect_status(_finish_v19(w, ls), 200, "finished")
    eq(r.body.get("ok"), True, "ok")
    eq(r.body.get("final_state"), "succeeded", "final_state")
    eq(r.body.get("duplicate"), False, "duplicate")
    eq(r.body.get("directive_id"), ls.did, "directive_id")
    d = w.d(ls.did)
    eq(d.get("state"), "succeeded", "state")
    eq(d.get("exit_code"), 0, "exit_code")
    eq(d.get("finished_status"), "succeeded", "finished_status")
    eq(d.get("snapshot_before"), "abc123", "snapshot_before")
    eq(d.get("snapshot_after"), "def456", "snapshot_after")
    eq(jcol(d.get("artifacts_manifest")), {"files": ["output.tar.gz"]}, "artifacts_manifest")
    for k in ("stdout_truncated", "stderr_truncated", "diff_truncated"):
        check(col_false(d.get(k)), f"{k} must be false: {d.get(k)!r}")
    rd = w.api("GET", f"/facilities/{ls.fid}/directives/{ls.did}/diff")
    expect_status(rd, 200, "diff download")
    eq(rd.raw, DIFF, "stored diff bytes")
    check("text/x-diff" in rd.headers.get("content-type", ""),
          f"diff content-type: {rd.headers.get('content-type')!r}")
    check(w.f(ls.fid).get("locked_by_directive_id") is None, "facility must be unlocked")


def test_v20_identical_finished_is_duplicate(ctx):
    w = ctx.world()
    ls = w.running()
    expect_status(_finish_v19(w, ls), 200)
    r = expect_status(_finish_v19(w, ls), 200, "identical finished")
    eq(r.body.get("ok"), True, "ok")
    eq(r.body.get("duplicate"), True, "duplicate")
    eq(r.body.get("final_state"), "succeeded", "final_state")


def test_v21_started_after_finished_is_duplicate(ctx):
    w = ctx.world()
    ls = w.running()
    expect_status(_finish_v19(w, ls), 200)
    r = expect_status(w.started(ls), 200, "started after finished")
    eq(r.body.get("duplicate"), True, "duplicate")
    eq(r.body.get("state"), "succeeded", "state")


def test_v22_log_chunk_after_finished_stored(ctx):
    w = ctx.world()
    ls = w.running()
    expect_status(w.chunk(ls, "stdout", 0, b"a"), 200)
    expect_status(w.chunk(ls, "stdout", 1, b"b"), 200)
    expect_status(_finish_v19(w, ls), 200)
    r = expect_status(w.chunk(ls, "stdout", 2, b"late output\n"), 200, "chunk after finished")
    eq(r.body.get("ok"), True, "ok")
    eq(r.body.get("stored"), True, "stored")
    eq(r.body.get("duplicate"), False, "duplicate")
    chunks = _chunks(w, ls, "stdout")["chunks"]
    eq([c["seq"] for c in chunks], [0, 1, 2], "seqs")


def test_v23_finished_with_other_exit_code_conflicts(ctx):
    w = ctx.world()
    ls = w.running()
    expect_status(_finish_v19(w, ls), 200)
    r = _finish_v19(w, ls, exit_code=1)
    expect_error(r, 409, "invalid_state", "finished succeeded with exit_code 1 after exit 0")
    eq(w.d(ls.did).get("exit_code"), 0, "exit_code unchanged")


def test_v24_user_show_directive(ctx):
    w = ctx.world()
    ls = w.running(command="echo shown")
    expect_status(_finish_v19(w, ls), 200)
    r = expect_status(w.api("GET", f"/facilities/{ls.fid}/directives/{ls.did}"), 200)
    b = r.body
    eq(b.get("id"), ls.did, "id")
    eq(b.get("state"), "succeeded", "state")
    eq(b.get("exit_code"), 0, "exit_code")
    eq(b.get("finished_status"), "succeeded", "finished_status")
    eq(b.get("command"), "echo shown", "command")
    eq(b.get("territory_id"), ls.tid, "territory_id")
    eq(b.get("sandbox_profile"), "untrusted", "sandbox_profile")
    for k in ("created_at", "updated_at"):
        check(isinstance(b.get(k), str) and RECORD_TS.match(b[k]), f"{k}: {b.get(k)!r}")


def test_v25_user_list_directives(ctx):
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    d1 = w.directive(fid, "echo one")
    d2 = w.directive(fid, "echo two")
    r = expect_status(w.api("GET", f"/facilities/{fid}/directives"), 200)
    ds = r.body.get("directives")
    check(isinstance(ds, list) and len(ds) >= 1, f"directives: {short(r.body)}")
    eq([d["id"] for d in ds], [d2, d1], "newest first")


def test_v26_second_directive_on_same_facility(ctx):
    w = ctx.world()
    ls1 = w.running()
    expect_status(_finish_v19(w, ls1), 200)
    did2 = w.directive(ls1.fid, "echo second")
    r = expect_status(w.poll(ls1.tid), 200, "poll")
    ds = r.body.get("directives")
    check(isinstance(ds, list) and len(ds) == 1 and ds[0]["directive_id"] == did2,
          f"poll must lease the second directive: {short(r.body)}")
    tok = ds[0]["directive_token"]
    eq(w.f(ls1.fid).get("locked_by_directive_id"), did2, "facility locked by the second")
    ls2 = type(ls1)(ls1.tid, ls1.fid, did2, tok, ds[0].get("spec"), ds[0])
    r = expect_status(w.started(ls2, nexus_version="0.1.0"), 200, "started (nexus_version only)")
    eq(r.body.get("duplicate"), False, "duplicate")
    r = expect_status(w.finished(ls2, "failed", exit_code=1), 200, "finished failed")
    eq(r.body.get("final_state"), "failed", "final_state")
    check(w.f(ls1.fid).get("locked_by_directive_id") is None, "facility must be unlocked")
    eq(w.d(did2).get("state"), "failed", "stored state")


def test_v27_expired_lease_reaped_back_to_queued(ctx):
    w = ctx.world()
    ls = w.lease()
    e = w.srv.admin("lease", "expire", ls.did, "--ago-seconds", "60")
    eq(e.get("directive_id"), ls.did, "lease expire echo")
    j = w.srv.admin("job", "run", "reaper")
    eq(j.get("job"), "reaper", "job name")
    check(isinstance(j.get("processed"), int) and j["processed"] >= 1,
          f"reaper processed: {j}")
    d = w.d(ls.did)
    eq(d.get("state"), "queued", "state after reaping")
    eq(d.get("territory_id"), None, "territory_id cleared")
    eq(d.get("lease_expires_at"), None, "lease_expires_at cleared")
    check(w.f(ls.fid).get("locked_by_directive_id") is None, "facility must be unlocked")


def test_v28_territory_heartbeat_rest(ctx):
    w = ctx.world()
    tid = w.territory()
    r = expect_status(w.t_heartbeat(tid, nexus_version="0.2.0", labels={"rack": "r1"},
                                    capacity={"max_concurrent": 4}), 200)
    eq(r.body.get("ok"), True, "ok")
    eq(r.body.get("territory_id"), tid, "territory_id")
    eq(r.body.get("next_heartbeat_interval_seconds"), 30, "next_heartbeat_interval_seconds")
    eq(r.body.get("websocket_connected"), False, "websocket_connected")
    t = w.terr(tid)
    check(t.get("last_heartbeat_at"), f"last_heartbeat_at not stored: {t}")
    eq(t.get("nexus_version"), "0.2.0", "nexus_version")
    eq(jcol(t.get("labels")), {"rack": "r1"}, "labels replaced")
    eq(jcol(t.get("capacity")), {"max_concurrent": 4}, "capacity replaced")


def test_v29_territory_heartbeat_websocket_connected(ctx):
    w = ctx.world()
    tid = w.territory()
    w.srv.admin("territory", "set", tid, "--websocket-connected", "true")
    r = expect_status(w.t_heartbeat(tid, nexus_version="0.2.0", labels={"a": "b"},
                                    capacity={"max_concurrent": 1}), 200)
    eq(r.body.get("next_heartbeat_interval_seconds"), 300, "next_heartbeat_interval_seconds")
    eq(r.body.get("websocket_connected"), True, "websocket_connected")


def test_v30_enroll_with_bad_tokens(ctx):
    w = ctx.world()
    r = w.enroll("definitely-not-a-token-" + "x" * 20)
    expect_error(r, 422, "invalid_token", "unknown token")
    tok = w.new_enroll_token()["enroll_token"]
    expect_status(w.enroll(tok), 201, "first use")
    expect_error(w.enroll(tok), 422, "invalid_token", "used token")
    revoked = w.new_enroll_token()
    w.srv.admin("enroll-token", "revoke", revoked["id"])
    expect_error(w.enroll(revoked["enroll_token"]), 422, "invalid_token", "revoked token")


def _wait_window(period, margin=3.0):
    """Sleeps past a fixed-window boundary when one is about to fall inside a burst."""
    left = period - (time.time() % period)
    if left < margin:
        time.sleep(left + 0.2)


def test_v31_enroll_rate_limited_after_10(ctx):
    w = ctx.world()
    ip = fresh_source_ip()
    _wait_window(3600)
    for i in range(10):
        r = w.enroll("unknown-token-%d" % i, source=ip)
        expect_error(r, 422, "invalid_token", f"enroll #{i + 1}")
    r = w.enroll("unknown-token-11", source=ip)
    expect_error(r, 429, "rate_limited", "enroll #11")
    check("retry-after" in r.headers, f"429 without Retry-After: {r.headers}")
    eq(r.headers.get("retry-after"), "3600", "Retry-After")
    # another client address is not affected
    expect_error(w.enroll("unknown-token-12"), 422, "invalid_token", "other IP")


def test_v32_poll_needs_identity(ctx):
    w = ctx.world()
    r = w.t(None, "POST", "/polls", {"supported_sandbox_profiles": ["untrusted"]})
    expect_error(r, 401, "unauthorized", "no identity")
    r = w.t("01890a5d-ac96-774b-bcce-b302099a8057", "POST", "/polls", {})
    expect_error(r, 401, "unauthorized", "unknown territory id")


def test_v33_create_with_unknown_profile_422(ctx):
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    r = w.create_directive(fid, "echo x", sandbox_profile="super_admin_mode")
    expect_error(r, 422, None, "unknown sandbox_profile")
    r = expect_status(w.api("GET", f"/facilities/{fid}/directives"), 200)
    eq(r.body.get("directives"), [], "nothing stored")


def test_v34_log_chunk_invalid_stream_422(ctx):
    w = ctx.world()
    ls = w.running()
    expect_error(w.chunk(ls, "invalid_stream", 0, b"x"), 422, "invalid_param")


def test_v35_truncated_string_false_is_false(ctx):
    w = ctx.world()
    ls = w.running()
    r = expect_status(w.chunk(ls, "stdout", 0, b"data", truncated="false"), 200)
    eq(r.body.get("truncated"), False, "truncated")
    check(col_false(w.d(ls.did).get("stdout_truncated")), "stdout_truncated must stay false")
    # only JSON true or the exact string "true" set the flag (spec §0.2 flag coercion)
    r = expect_status(w.chunk(ls, "stdout", 1, b"more", truncated="TRUE"), 200)
    eq(r.body.get("truncated"), False, "\"TRUE\" is not true")
    r = expect_status(w.chunk(ls, "stdout", 2, b"more", truncated="true"), 200)
    eq(r.body.get("truncated"), True, "\"true\" is true")
    check(col_true(w.d(ls.did).get("stdout_truncated")), "stdout_truncated set by \"true\"")


def test_v36_log_chunk_over_256k_422(ctx):
    w = ctx.world()
    ls = w.running()
    r = w.chunk(ls, "stdout", 0, os.urandom(262145))
    expect_error(r, 422, "invalid_param", "256 KiB + 1")
    r = expect_status(w.chunk(ls, "stdout", 1, os.urandom(262144)), 200, "exactly 256 KiB")
    eq(r.body.get("accepted_bytes"), 262144, "accepted_bytes")


def test_v37_token_of_other_territory_403(ctx):
    w = ctx.world()
    a = w.running()
    b = w.running()
    # territory A presents the token B received for B's directive (tid = B)
    r = w.heartbeat(b, tid=a.tid)
    expect_error(r, 403, "forbidden", "token tid is another territory")
    check(w.d(b.did).get("last_heartbeat_at") is None, "B's directive must not be touched")


def _four_reports(w, ls, tid, token):
    return [
        ("started", w.started(ls, tid=tid, token=token, nexus_version="0.1.0")),
        ("heartbeat", w.heartbeat(ls, tid=tid, token=token)),
        ("log_chunks", w.chunk(ls, "stdout", 0, b"x", tid=tid, token=token)),
        ("finished", w.finished(ls, "succeeded", tid=tid, token=token, exit_code=0)),
    ]


def test_v38_token_sent_by_other_territory_403(ctx):
    w = ctx.world()
    a = w.lease()
    b_tid = w.territory()
    for name, r in _four_reports(w, a, b_tid, a.token):
        expect_error(r, 403, "forbidden", f"{name} by territory B with A's token")
    d = w.d(a.did)
    eq(d.get("state"), "leased", "state stays leased")
    eq(d.get("territory_id"), a.tid, "still leased to A")


def test_v39_old_token_after_release_to_other_territory_403(ctx):
    w = ctx.world()
    a = w.lease()
    w.srv.admin("lease", "expire", a.did, "--ago-seconds", "60")
    w.srv.admin("job", "run", "reaper")
    eq(w.d(a.did).get("state"), "queued", "re-queued")
    b_tid = w.territory()
    r = expect_status(w.poll(b_tid), 200)
    ds = r.body.get("directives") or []
    check(len(ds) == 1 and ds[0]["directive_id"] == a.did,
          f"territory B must lease the re-queued directive: {short(r.body)}")
    # A still holds an unexpired token with tid = A, sub = the directive (now leased to B)
    for name, resp in _four_reports(w, a, a.tid, a.token):
        expect_error(resp, 403, "forbidden", f"{name} by A with its old token")
    d = w.d(a.did)
    eq(d.get("state"), "leased", "state stays leased")
    eq(d.get("territory_id"), b_tid, "still leased to B")


def test_v40_finished_with_bad_status_422(ctx):
    w = ctx.world()
    ls = w.running()
    expect_error(w.finished(ls, "exploded", exit_code=0), 422, "invalid_param")
    eq(w.d(ls.did).get("state"), "running", "state unchanged")


def test_v41_finished_with_bad_diff_base64_422(ctx):
    w = ctx.world()
    ls = w.running()
    expect_error(w.finished(ls, "succeeded", exit_code=0, diff_base64="not base64"), 422,
                 "invalid_param")
    eq(w.d(ls.did).get("state"), "running", "state unchanged")


def test_v42_diff_over_max_diff_bytes_then_finish_without(ctx):
    w = ctx.world()
    ls = w.running(limits={"max_diff_bytes": 4})
    r = w.finished(ls, "succeeded", exit_code=0, diff_base64=b64(b"12345"))
    expect_error(r, 422, "invalid_param", "5-byte diff over max_diff_bytes 4")
    eq(w.d(ls.did).get("state"), "running", "state unchanged by the rejected report")
    r = expect_status(w.finished(ls, "failed", exit_code=1), 200, "finished without diff")
    eq(r.body.get("final_state"), "failed", "final_state")


def test_v43_finished_from_leased(ctx):
    w = ctx.world()
    ls = w.lease()
    r = expect_status(w.finished(ls, "failed", exit_code=1), 200, "finished while leased")
    eq(r.body.get("ok"), True, "ok")
    eq(r.body.get("duplicate"), False, "duplicate")
    eq(r.body.get("final_state"), "failed", "final_state")
    r = expect_status(w.finished(ls, "failed", exit_code=1), 200, "identical retry")
    eq(r.body.get("duplicate"), True, "duplicate on retry")
    check(w.f(ls.fid).get("locked_by_directive_id") is None, "facility must be unlocked")


# --------------------------------------------------------------------------------------------
# §13.11 supplementary vectors and §3/§7 rules not covered by a numbered vector


def test_s04_directive_report_without_token_401(ctx):
    w = ctx.world()
    ls = w.lease()
    r = w.t(ls.tid, "POST", f"/directives/{ls.did}/started", {})
    expect_error(r, 401, "unauthorized")
    check("missing directive token" in str(r.body.get("detail")),
          f"detail: {r.body.get('detail')!r}")
    r = w.t(ls.tid, "POST", f"/directives/{ls.did}/started", {},
            headers={"Authorization": "bearer " + ls.token})
    expect_error(r, 401, "unauthorized", "lower-case bearer prefix")


def test_s05_duplicate_log_chunk(ctx):
    w = ctx.world()
    ls = w.running()
    expect_status(w.chunk(ls, "stdout", 0, b"first"), 200)
    r = expect_status(w.chunk(ls, "stdout", 0, b"second payload"), 200)
    eq(r.body.get("stored"), False, "stored")
    eq(r.body.get("duplicate"), True, "duplicate")
    eq(r.body.get("accepted_bytes"), 0, "accepted_bytes")
    chunks = _chunks(w, ls, "stdout")["chunks"]
    eq([base64.b64decode(c["bytes_base64"]) for c in chunks], [b"first"], "stored bytes")
    eq(w.d(ls.did).get("stdout_bytes"), 5, "stdout_bytes not double counted")


def test_s06_output_quota(ctx):
    w = ctx.world()
    ls = w.running(limits={"max_output_bytes": 10})
    r = expect_status(w.chunk(ls, "stdout", 0, b"12345678"), 200)
    eq(r.body.get("accepted_bytes"), 8, "stdout accepted")
    r = expect_status(w.chunk(ls, "stderr", 0, b"abcdefgh"), 200)
    eq(r.body.get("stored"), True, "stored")
    eq(r.body.get("accepted_bytes"), 2, "accepted_bytes")
    eq(r.body.get("truncated"), True, "truncated")
    r = expect_status(w.chunk(ls, "stderr", 1, b"more"), 200)
    eq(r.body.get("stored"), False, "stored after quota")
    eq(r.body.get("truncated"), True, "truncated after quota")
    b = _chunks(w, ls, "stderr")
    eq([base64.b64decode(c["bytes_base64"]) for c in b["chunks"]], [b"ab"], "stored prefix")
    eq(b.get("stderr_truncated"), True, "stderr_truncated")
    eq(b.get("stdout_truncated"), False, "stdout_truncated")


def test_s07_log_chunk_and_heartbeat_on_leased_409(ctx):
    w = ctx.world()
    ls = w.lease()
    expect_error(w.chunk(ls, "stdout", 0, b"x"), 409, "invalid_state", "log chunk while leased")
    expect_error(w.heartbeat(ls), 409, "invalid_state", "heartbeat while leased")


def test_s08_enroll_without_csr_has_no_cert_keys(ctx):
    w = ctx.world()
    r = expect_status(w.enroll(w.first_enroll_token), 201)
    for k in ("mtls_client_cert_pem", "ca_bundle_pem"):
        check(k not in r.body, f"{k} must be omitted without a CSR: {short(r.body)}")


def test_s13_create_without_command_400(ctx):
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    r = w.api("POST", f"/facilities/{fid}/directives", {"shell": "/bin/sh"})
    expect_error(r, 400, None, "missing command")
    r = w.api("POST", f"/facilities/{fid}/directives", {"command": "   "})
    expect_error(r, 400, None, "blank command")


def test_s17_capacity_limits_leases(ctx):
    w = ctx.world()
    tid = w.territory()
    fids = [w.facility(tid) for _ in range(4)]
    for f in fids:
        w.directive(f)
    expect_status(w.t_heartbeat(tid, capacity={"max_concurrent": 3},
                                runtime_status={"running_directives": 3}), 200)
    r = expect_status(w.poll(tid, max_claim=5), 200)
    eq(r.body.get("directives"), [], "no slot free")
    eq(r.body.get("retry_after_seconds"), 2, "retry_after_seconds")
    expect_status(w.t_heartbeat(tid, capacity={"max_concurrent": 3},
                                runtime_status={"running_directives": 0}), 200)
    r = expect_status(w.poll(tid, max_claim=5), 200)
    eq(len(r.body.get("directives") or []), 3, "leases with 3 free slots")


def test_s18_log_page_parameter_checks(ctx):
    w = ctx.world()
    ls = _two_chunks(w)
    r = expect_status(w.log_page(ls.fid, ls.did, stream="stdout", limit=1000), 200)
    eq(r.body.get("limit"), 500, "limit capped")
    expect_error(w.log_page(ls.fid, ls.did, stream="stdout", after_seq=-2), 422,
                 "invalid_after_seq")
    expect_error(w.log_page(ls.fid, ls.did, stream="stdout", limit=0), 422, "invalid_limit")
    expect_error(w.log_page(ls.fid, ls.did, stream="nope"), 422, "invalid_stream")
    # stream is checked first, then after_seq, then limit
    expect_error(w.log_page(ls.fid, ls.did, stream="nope", after_seq=-5, limit=0), 422,
                 "invalid_stream")
    expect_error(w.log_page(ls.fid, ls.did, stream="stdout", after_seq="x", limit=0), 422,
                 "invalid_after_seq")


def test_s19_poll_rate_limit(ctx):
    w = ctx.world()
    tid = w.territory()
    _wait_window(60, margin=15)
    for i in range(60):
        expect_status(w.poll(tid), 200, f"poll #{i + 1}")
    r = w.poll(tid)
    expect_error(r, 429, "rate_limited", "poll #61")
    eq(r.headers.get("retry-after"), "60", "Retry-After")


def test_x_lease_spec_defaults(ctx):
    """§7.5: defaults sent in the spec; no repo_url key when the facility has none."""
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid, kind="empty", repo_url=None)
    ls = w.lease(tid=tid, fid=fid, command="true")
    s = ls.spec
    eq(s.get("directive_id"), ls.did, "spec.directive_id")
    eq(s.get("sandbox_profile"), "untrusted", "spec.sandbox_profile")
    eq(s.get("shell"), "/bin/sh", "spec.shell default")
    eq(s.get("cwd"), "/workspace", "spec.cwd default")
    eq(s.get("timeout_seconds"), 300, "spec.timeout_seconds default")
    eq(s.get("limits"), {}, "spec.limits")
    eq(s.get("artifacts"), {}, "spec.artifacts")
    check("repo_url" not in (s.get("facility") or {}), f"no repo_url expected: {s}")
    caps = s.get("capabilities") or {}
    eq(caps.get("fs"), {"read": ["workspace:**"], "write": ["workspace:**"]}, "capabilities.fs")
    eq(caps.get("net"), {}, "capabilities.net")
    check("env_allowlist" not in s and "env_refs" not in s, "env lists are not forwarded")
    c = jwt_claims(ls.token)
    eq((c.get("sub"), c.get("tid")), (ls.did, tid), "token sub/tid")
    eq(c.get("exp", 0) - c.get("iat", 0), 300, "token TTL")


def test_x_poll_profile_filter_and_health(ctx):
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    did = w.directive(fid, sandbox_profile="trusted")
    r = expect_status(w.poll(tid, profiles=["untrusted"]), 200)
    eq(r.body.get("directives"), [], "trusted directive not offered to an untrusted-only poll")
    expect_status(w.t_heartbeat(tid, capacity={
        "max_concurrent": 2, "sandbox_health": {"container": {"healthy": False}}}), 200)
    r = expect_status(w.poll(tid, profiles=["trusted"]), 200)
    eq(r.body.get("directives"), [], "unhealthy container driver: not leased")
    eq(w.d(did).get("state"), "queued", "stays queued")
    expect_status(w.t_heartbeat(tid, capacity={
        "max_concurrent": 2, "sandbox_health": {"container": {"healthy": True}}}), 200)
    r = expect_status(w.poll(tid, profiles=["trusted"]), 200)
    eq([d["directive_id"] for d in r.body.get("directives") or []], [did], "leased when healthy")


def test_x_poll_never_crosses_accounts(ctx):
    w1, w2 = ctx.world(), ctx.world()
    t1 = w1.territory()
    did = w1.directive(w1.facility(t1))
    t2 = w2.territory()
    r = expect_status(w2.poll(t2), 200)
    eq(r.body.get("directives"), [], "other account's directive offered")
    eq(w1.d(did).get("state"), "queued", "still queued")
    # and another account's user cannot see the facility
    r = w2.api("GET", f"/facilities/{w1.d(did)['facility_id']}/directives")
    expect_error(r, 404, "not_found", "facility of another account")


def test_x_audit_trail_of_a_directive(ctx):
    """§10.1: created, started (first only) and finished (first only) events."""
    w = ctx.world()
    ls = w.lease()
    expect_status(w.started(ls, sandbox_version="sv1"), 200)
    expect_status(w.started(ls, sandbox_version="sv1"), 200)
    expect_status(w.finished(ls, "succeeded", exit_code=0), 200)
    expect_status(w.finished(ls, "succeeded", exit_code=0), 200)
    evs = w.srv.admin("audit", "list", "--directive", ls.did).get("events")
    check(isinstance(evs, list), "audit list: events missing")
    types = sorted(e.get("event_type") for e in evs)
    eq(types, ["directive.created", "directive.finished", "directive.started"], "event types")
    by = {e["event_type"]: e for e in evs}
    p = jcol(by["directive.started"].get("payload")) or {}
    eq(p.get("territory_id"), ls.tid, "started payload territory_id")
    eq(p.get("sandbox_version"), "sv1", "started payload sandbox_version")
    check(isinstance(p.get("time_to_start_ms"), int), f"time_to_start_ms: {p}")
    p = jcol(by["directive.finished"].get("payload")) or {}
    eq(p.get("status"), "succeeded", "finished payload status")
    eq(p.get("exit_code"), 0, "finished payload exit_code")
    eq(p.get("territory_id"), ls.tid, "finished payload territory_id")
    p = jcol(by["directive.created"].get("payload")) or {}
    eq(p.get("verdict"), "skip", "created payload verdict")
    eq(by["directive.created"].get("actor_id"), w.user_id, "created actor")


def test_x_forged_and_tampered_tokens_401(ctx):
    w = ctx.world()
    ls = w.running()
    h, p, s = ls.token.split(".")
    flipped = s[:-2] + ("A" if s[-2] != "A" else "B") + s[-1]
    r = w.heartbeat(ls, token=f"{h}.{p}.{flipped}")
    expect_error(r, 401, "unauthorized", "tampered signature")
    none_hdr = b64url(json.dumps({"alg": "none"}).encode())
    r = w.heartbeat(ls, token=f"{none_hdr}.{p}.")
    expect_error(r, 401, "unauthorized", "alg none")
    r = w.heartbeat(ls, token="garbage")
    expect_error(r, 401, "unauthorized", "not a JWT")
    key = server_jwt_key(w.srv)
    if key is None:
        skip("cannot read the server's token key to forge an expired token")
    now = int(time.time())
    good = jwt_sign({"sub": ls.did, "tid": ls.tid, "iat": now, "exp": now + 300}, key)
    if w.heartbeat(ls, token=good).status != 200:
        skip("forged tokens are not accepted (key derivation differs); expiry not testable")
    old = jwt_sign({"sub": ls.did, "tid": ls.tid, "iat": now - 400, "exp": now - 100}, key)
    r = w.heartbeat(ls, token=old)
    expect_error(r, 401, "unauthorized", "expired token")
    eq(r.body.get("detail"), "directive token expired", "expired detail")
    other = w.territory()
    r = w.heartbeat(ls, token=jwt_sign({"sub": ls.did, "tid": other, "iat": now,
                                         "exp": now + 300}, key))
    expect_error(r, 403, "forbidden", "token minted for another tid, sent by the owner")
    eq(r.body.get("detail"), "directive token territory mismatch", "tid mismatch detail")


def test_x_cancel_running_directive(ctx):
    w = ctx.world()
    ls = w.running()
    r = expect_status(w.api("POST", f"/facilities/{ls.fid}/directives/{ls.did}/cancel"), 200)
    eq(r.body.get("directive_id"), ls.did, "directive_id")
    eq(r.body.get("cancel_requested"), True, "cancel_requested")
    check(w.d(ls.did).get("cancel_requested_at"), "cancel_requested_at stored")
    r = expect_status(w.heartbeat(ls), 200)
    eq(r.body.get("cancel_requested"), True, "heartbeat tells Nexus to cancel")
    r = expect_status(w.finished(ls, "canceled", exit_code=130), 200)
    eq(r.body.get("final_state"), "canceled", "final_state")
    r = w.api("POST", f"/facilities/{ls.fid}/directives/{ls.did}/cancel")
    expect_error(r, 409, "state_conflict", "cancel of a terminal directive")


def test_x_cancel_queued_directive(ctx):
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    did = w.directive(fid)
    r = expect_status(w.api("POST", f"/facilities/{fid}/directives/{did}/cancel"), 200)
    eq(r.body.get("cancel_requested"), True, "cancel_requested")
    r2 = expect_status(w.api("POST", f"/facilities/{fid}/directives/{did}/cancel"), (200, 409),
                       "second cancel")
    if r2.status == 409:
        eq(r2.body.get("error"), "state_conflict", "second cancel error")


def test_x_plain_text_log(ctx):
    w = ctx.world()
    ls = _two_chunks(w)
    r = expect_status(w.api("GET", f"/facilities/{ls.fid}/directives/{ls.did}/log?stream=stdout"),
                      200)
    check(r.headers.get("content-type", "").startswith("text/plain"),
          f"content-type: {r.headers.get('content-type')!r}")
    eq(r.raw, b"hello\nworld\n", "stdout text")
    r = expect_status(w.api("GET", f"/facilities/{ls.fid}/directives/{ls.did}/log?stream=stderr"),
                      200)
    eq(r.raw, b"oops\n", "stderr text")


def test_x_diff_absent_404(ctx):
    w = ctx.world()
    ls = w.running()
    expect_status(w.finished(ls, "succeeded", exit_code=0), 200)
    r = w.api("GET", f"/facilities/{ls.fid}/directives/{ls.did}/diff")
    expect_status(r, 404, "no diff")


def test_x_directive_list_pagination_and_filters(ctx):
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    ids = [w.directive(fid, f"echo {i}") for i in range(3)]
    r = expect_status(w.api("GET", f"/facilities/{fid}/directives?limit=2"), 200)
    page1 = [d["id"] for d in r.body.get("directives", [])]
    eq(page1, [ids[2], ids[1]], "first page newest first")
    cur = r.body.get("next_cursor")
    check(cur, f"next_cursor expected: {r.body}")
    r = expect_status(w.api("GET", f"/facilities/{fid}/directives?limit=2&cursor={cur}"), 200)
    eq([d["id"] for d in r.body.get("directives", [])], [ids[0]], "second page")
    eq(r.body.get("next_cursor"), None, "last page next_cursor")
    r = expect_status(w.poll(tid), 200)  # leases the oldest queued directive
    eq([d["directive_id"] for d in r.body.get("directives") or []], [ids[0]], "oldest leased")
    r = expect_status(w.api("GET", f"/facilities/{fid}/directives?state=leased"), 200)
    eq([d["id"] for d in r.body.get("directives", [])], [ids[0]], "state filter")
    r = expect_status(w.api("GET", f"/facilities/{fid}/directives?state=queued"), 200)
    eq([d["id"] for d in r.body.get("directives", [])], [ids[2], ids[1]], "state=queued")
    r = expect_status(w.api("GET", f"/facilities/{fid}/directives?territory_id={tid}"), 200)
    eq([d["id"] for d in r.body.get("directives", [])], [ids[0]], "territory filter")


def test_x_long_poll_wakes_on_create(ctx):
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    out = {}

    def poller():
        t0 = time.monotonic()
        out["r"] = w.poll(tid, wait_seconds=20)
        out["dt"] = time.monotonic() - t0

    th = threading.Thread(target=poller)
    th.start()
    time.sleep(1.0)
    did = w.directive(fid)
    th.join(40)
    check("r" in out, "long-poll did not return")
    r = expect_status(out["r"], 200, "long poll")
    eq([d["directive_id"] for d in r.body.get("directives") or []], [did], "woken with the lease")
    check(out["dt"] < 15, f"long-poll returned only after {out['dt']:.1f}s")
    t0 = time.monotonic()
    r = expect_status(w.poll(tid, wait_seconds=1), 200)
    dt = time.monotonic() - t0
    eq(r.body.get("directives"), [], "nothing to lease")
    check(0.8 <= dt < 10, f"wait_seconds 1 returned after {dt:.2f}s")


def test_x_facility_endpoints(ctx):
    w = ctx.world()
    tid = w.territory()
    r = expect_status(w.api("POST", "/facilities", {"territory_id": tid, "kind": "repo",
                                                    "repo_url": REPO}), 201)
    f = r.body.get("facility") or {}
    check(is_uuid(f.get("id")), f"facility id: {r.body}")
    eq(f.get("territory_id"), tid, "territory_id")
    r = expect_status(w.api("GET", "/facilities"), 200)
    check(f["id"] in [x.get("id") for x in r.body.get("facilities", [])], "listed")
    other = ctx.world()
    r = other.api("GET", "/facilities")
    expect_status(r, 200)
    check(f["id"] not in [x.get("id") for x in r.body.get("facilities", [])],
          "another account must not see the facility")
    r = other.api("POST", "/facilities", {"territory_id": tid})
    check(400 <= r.status < 500, f"facility on another account's territory: {r.status}")


def test_x_enrollment_token_endpoint(ctx):
    w = ctx.world()
    r = expect_status(w.api("POST", "/enrollment_tokens", {"labels": {"site": "lab"},
                                                           "ttl_seconds": 600}), 201)
    for k in ("id", "enroll_token", "expires_at"):
        check(r.body.get(k), f"{k} missing: {r.body}")
    r2 = expect_status(w.enroll(r.body["enroll_token"]), 201)
    eq(jcol(w.terr(r2.body["territory_id"]).get("labels")), {"site": "lab"}, "token labels")


def test_x_started_on_queued_directive_impossible(ctx):
    """A token is only minted at lease time; after reaping, started is refused (403) since
    the directive is bound to no territory (§4 binding checks)."""
    w = ctx.world()
    ls = w.lease()
    w.srv.admin("lease", "expire", ls.did, "--ago-seconds", "60")
    w.srv.admin("job", "run", "reaper")
    expect_error(w.started(ls), 403, "forbidden")
    eq(w.d(ls.did).get("state"), "queued", "still queued")


def test_x_enroll_defaults(ctx):
    """§3.2.1: blank name → nexus-<8 hex>, blank kind → server, blank platform → null."""
    w = ctx.world()
    tok = w.new_enroll_token()["enroll_token"]
    r = expect_status(w.enroll(tok, name="   ", kind="", platform="", display_name=None), 201)
    eq(r.body.get("kind"), "server", "kind")
    t = w.terr(r.body["territory_id"])
    check(re.match(r"^nexus-[0-9a-f]{8}$", t.get("name") or ""), f"name {t.get('name')!r}")
    eq(t.get("kind"), "server", "stored kind")
    eq(t.get("platform"), None, "platform")
    eq(jcol(t.get("capacity")), {}, "capacity without metadata")
    tok = w.new_enroll_token()["enroll_token"]
    r = expect_status(w.enroll(tok, kind="desktop", platform="linux", display_name="Box"), 201)
    eq(r.body.get("kind"), "desktop", "kind echoed")
    t = w.terr(r.body["territory_id"])
    eq((t.get("kind"), t.get("platform"), t.get("display_name")), ("desktop", "linux", "Box"),
       "stored kind/platform/display_name")


def test_x_enroll_with_expired_token_422(ctx):
    w = ctx.world()
    tok = w.new_enroll_token(ttl=1)
    time.sleep(2.2)
    expect_error(w.enroll(tok["enroll_token"]), 422, "invalid_token", "expired token")
    row = w.srv.admin("enroll-token", "show", tok["id"])
    eq(row.get("used_at"), None, "an expired token is not consumed")


def test_x_heartbeat_brings_offline_territory_online(ctx):
    """§2.2 go_online; §3.2.2 capabilities as a single string; blank capabilities ignored."""
    w = ctx.world()
    tid = w.territory()
    w.srv.admin("territory", "set", tid, "--status", "offline")
    eq(w.terr(tid).get("status"), "offline", "status set by admin")
    expect_status(w.t_heartbeat(tid, capabilities="camera.snap",
                                runtime_status={"running_directives": 1}), 200)
    t = w.terr(tid)
    eq(t.get("status"), "online", "back online")
    eq(jcol(t.get("capabilities")), ["camera.snap"], "single string → one-element array")
    eq(jcol(t.get("runtime_status")), {"running_directives": 1}, "runtime_status")
    expect_status(w.t_heartbeat(tid, capabilities=[]), 200)
    eq(jcol(w.terr(tid).get("capabilities")), ["camera.snap"], "[] is blank: kept")


def test_x_poll_defaults(ctx):
    """§3.2.3: blank profiles → [untrusted]; max_directives_to_claim < 1 → 1."""
    w = ctx.world()
    tid = w.territory(capacity={"max_concurrent": 5})
    fids = [w.facility(tid) for _ in range(3)]
    dids = [w.directive(f) for f in fids]
    r = expect_status(w.poll(tid, profiles=None, max_claim=0), 200)
    eq([d["directive_id"] for d in r.body.get("directives") or []], dids[:1], "one, oldest")
    r = expect_status(w.poll(tid, profiles=[], max_claim=-3), 200)
    eq([d["directive_id"] for d in r.body.get("directives") or []], dids[1:2], "one again")
    r = expect_status(w.poll(tid, profiles="untrusted", max_claim="5"), 200)
    eq([d["directive_id"] for d in r.body.get("directives") or []], dids[2:], "single string")


def test_x_started_fills_missing_versions_on_duplicate(ctx):
    w = ctx.world()
    ls = w.lease()
    expect_status(w.started(ls, nexus_version="0.1.0"), 200)
    r = expect_status(w.started(ls, nexus_version="0.1.0", sandbox_version="bwrap-1"), 200)
    eq(r.body.get("duplicate"), True, "duplicate")
    eq(w.d(ls.did).get("sandbox_version"), "bwrap-1", "null version filled")
    expect_error(w.started(ls, sandbox_version="other"), 409, "invalid_state",
                 "sandbox_version mismatch")


def test_x_log_chunks_out_of_order_and_empty(ctx):
    """§3.2.6: seqs need not be contiguous or ordered; an empty payload is not stored and
    marks the stream truncated (Quirk kept by the spec)."""
    w = ctx.world()
    ls = w.running()
    for seq, data in ((5, b"five"), (2, b"two"), (9, b"nine")):
        expect_status(w.chunk(ls, "stdout", seq, data), 200)
    b = _chunks(w, ls, "stdout")
    eq([(c["seq"], base64.b64decode(c["bytes_base64"])) for c in b["chunks"]],
       [(2, b"two"), (5, b"five"), (9, b"nine")], "ascending seq")
    r = expect_status(w.chunk(ls, "stderr", 0, b""), 200)
    eq((r.body.get("stored"), r.body.get("truncated"), r.body.get("accepted_bytes")),
       (False, True, 0), "empty payload")
    check(col_true(w.d(ls.did).get("stderr_truncated")), "stderr_truncated set")


def test_x_finished_variants(ctx):
    """§3.2.7: other statuses, exit_code null, finished_at stored, a bad finished_at rolls
    back, a different diff on a retry conflicts."""
    w = ctx.world()
    ls = w.running()
    r = w.finished(ls, "timed_out", exit_code=124, finished_at="2026-02-27T14:30:22.123Z")
    expect_status(r, 200)
    eq(r.body.get("final_state"), "timed_out", "timed_out")
    d = w.d(ls.did)
    check(str(d.get("finished_at") or "").startswith("2026-02-27T14:30:22"),
          f"finished_at stored: {d.get('finished_at')!r}")
    eq(d.get("exit_code"), 124, "exit_code")
    ls = w.running()
    expect_error(w.finished(ls, "failed", exit_code=1, finished_at="2026-13-40T99:00:00Z"),
                 422, "invalid_param", "out-of-range finished_at")
    eq(w.d(ls.did).get("state"), "running", "rolled back")
    r = expect_status(w.finished(ls, "canceled", exit_code=None), 200)
    eq(r.body.get("final_state"), "canceled", "canceled")
    eq(w.d(ls.did).get("exit_code"), None, "exit_code null")
    ls = w.running()
    expect_status(w.finished(ls, "succeeded", exit_code=0, diff_base64=b64(b"+a\n")), 200)
    expect_error(w.finished(ls, "succeeded", exit_code=0, diff_base64=b64(b"+b\n")), 409,
                 "invalid_state", "a different diff on a retry")


def test_x_old_token_valid_after_refresh(ctx):
    """§4: the heartbeat's new token does not revoke the old one."""
    w = ctx.world()
    ls = w.running()
    r = expect_status(w.heartbeat(ls), 200)
    check(r.body.get("directive_token"), "new token")
    expect_status(w.heartbeat(ls, token=ls.token), 200, "old token still valid")


def test_x_directive_of_other_facility_404(ctx):
    w = ctx.world()
    ls = w.running()
    other_fid = w.facility(ls.tid)
    for sub in ("", "/log_chunks?stream=stdout", "/log?stream=stdout", "/diff"):
        r = w.api("GET", f"/facilities/{other_fid}/directives/{ls.did}{sub}")
        expect_error(r, 404, None, f"directive under another facility{sub}")
    for verb in ("approve", "reject", "cancel"):
        r = w.api("POST", f"/facilities/{other_fid}/directives/{ls.did}/{verb}")
        expect_error(r, 404, None, f"{verb} under another facility")


# --------------------------------------------------------------------------------------------
# §13.6 facility directives API


def test_v86_create_without_policies(ctx):
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    r = expect_status(w.create_directive(fid, "echo hello", sandbox_profile="untrusted"), 201)
    eq(r.body.get("state"), "queued", "state")
    did = r.body.get("directive_id")
    check(is_uuid(did), "directive_id")
    d = w.d(did)
    eff = jcol(d.get("effective_capabilities")) or {}
    check("fs" in eff, f"effective_capabilities.fs missing: {eff}")
    eq(eff.get("fs"), {"read": ["workspace:**"], "write": ["workspace:**"]}, "default fs")
    snap = jcol(d.get("policy_snapshot"))
    check(isinstance(snap, dict) and "policies_applied" in snap,
          f"policy_snapshot missing: {snap!r}")
    check(isinstance(snap.get("resolved_at"), str) and SECOND_TS.match(snap["resolved_at"]),
          f"policy_snapshot.resolved_at: {snap.get('resolved_at')!r}")


_policy_lock = threading.Lock()


def _awaiting(ctx, w):
    """A host directive awaiting approval (global policy approval.host_profile =
    needs_approval, as in vector 88)."""
    with _policy_lock:
        if not getattr(ctx, "approval_policy", None):
            path = os.path.join(ctx.srv.log_dir, "approval_policy.json")
            with open(path, "w") as f:
                json.dump({"name": "itest host needs approval",
                           "approval": {"host_profile": "needs_approval"}}, f)
            ctx.approval_policy = ctx.srv.admin("policy", "create-global", "--file", path)
    tid = w.territory()
    fid = w.facility(tid)
    r = w.create_directive(fid, "echo hello world", sandbox_profile="host")
    expect_status(r, 202, "create host directive under a needs_approval policy")
    eq(r.body.get("state"), "awaiting_approval", "state")
    check(r.body.get("approval_reasons"), f"approval_reasons: {r.body}")
    return fid, r.body["directive_id"]


def test_v91_approve_by_other_user(ctx):
    w = ctx.world()
    fid, did = _awaiting(ctx, w)
    other, tok = w.other_user()
    r = expect_status(w.api("POST", f"/facilities/{fid}/directives/{did}/approve", token=tok), 200)
    eq(r.body.get("state"), "queued", "state")
    eq(r.body.get("approved_by_user_id"), other, "approved_by_user_id")
    eq(r.body.get("directive_id"), did, "directive_id")
    d = w.d(did)
    eq(d.get("state"), "queued", "stored state")
    eq(d.get("approved_by_user_id"), other, "stored approved_by_user_id")


def test_v92_self_approval_forbidden(ctx):
    w = ctx.world()
    fid, did = _awaiting(ctx, w)
    r = w.api("POST", f"/facilities/{fid}/directives/{did}/approve")
    expect_error(r, 403, "forbidden")
    check("cannot approve own" in str(r.body.get("detail")), f"detail: {r.body.get('detail')!r}")
    eq(w.d(did).get("state"), "awaiting_approval", "still awaiting")


def test_v93_reject_by_requester(ctx):
    w = ctx.world()
    fid, did = _awaiting(ctx, w)
    r = expect_status(w.api("POST", f"/facilities/{fid}/directives/{did}/reject"), 200)
    eq(r.body.get("state"), "canceled", "state")
    eq(w.d(did).get("state"), "canceled", "stored state")


def test_v94_approve_queued_conflicts(ctx):
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    did = w.directive(fid)
    _, tok = w.other_user()
    r = w.api("POST", f"/facilities/{fid}/directives/{did}/approve", token=tok)
    expect_error(r, 409, "state_conflict")
    eq(w.d(did).get("state"), "queued", "state unchanged")


def test_v95_reject_queued_conflicts(ctx):
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    did = w.directive(fid)
    expect_error(w.api("POST", f"/facilities/{fid}/directives/{did}/reject"), 409,
                 "state_conflict")
    eq(w.d(did).get("state"), "queued", "state unchanged")


def test_v96_approve_stores_approver(ctx):
    w = ctx.world()
    fid, did = _awaiting(ctx, w)
    other, tok = w.other_user("second approver")
    expect_status(w.api("POST", f"/facilities/{fid}/directives/{did}/approve", token=tok), 200)
    eq(w.d(did).get("approved_by_user_id"), other, "approved_by_user_id")
    evs = w.srv.admin("audit", "list", "--directive", did, "--type", "directive.approved")
    evs = evs.get("events") or []
    eq(len(evs), 1, "one directive.approved event")
    eq(evs[0].get("actor_id"), other, "approved event actor")


# Vectors 87-90 and 97-100 (the policy/approval engine, issue 4). Global policies apply to every
# account, so each runs on a server of its own.


class _OwnServer:
    def __init__(self, ctx, policy=None):
        self.ctx, self.policy = ctx, policy

    def __enter__(self):
        from harness import Server
        self.srv = Server(self.ctx.srv.binary).start()
        w = World(self.srv)
        if self.policy is not None:
            path = os.path.join(self.srv.log_dir, "policy.json")
            with open(path, "w") as f:
                json.dump(self.policy, f)
            self.srv.admin("policy", "create-global", "--file", path)
        return w

    def __exit__(self, et, ev, tb):
        try:
            if et is None:
                self.srv.stop()
        finally:
            self.srv.cleanup()
        return False


def _count_directives(w, fid):
    r = expect_status(w.api("GET", f"/facilities/{fid}/directives"), 200)
    return len(r.body.get("directives") or [])


def test_v87_policy_forbids_host(ctx):
    with _OwnServer(ctx, {"name": "no host", "approval": {"host_profile": "forbidden"}}) as w:
        fid = w.facility(w.territory())
        r = w.create_directive(fid, "echo hi", sandbox_profile="host")
        expect_error(r, 403, "policy_forbidden")
        check(r.body.get("reasons"), f"reasons: {r.body}")
        eq(_count_directives(w, fid), 0, "nothing stored")


def test_v88_policy_needs_approval_for_host(ctx):
    with _OwnServer(ctx, {"name": "ask", "approval": {"host_profile": "needs_approval"}}) as w:
        fid = w.facility(w.territory())
        r = expect_status(w.create_directive(fid, "echo hi", sandbox_profile="host"), 202)
        eq(r.body.get("state"), "awaiting_approval", "state")
        check(r.body.get("approval_reasons"), "approval_reasons")
        d = w.d(r.body["directive_id"])
        eq(d.get("state"), "awaiting_approval", "stored state")
        check(jcol(d.get("effective_capabilities")), "effective capabilities stored")
        check(jcol(d.get("policy_snapshot")), "policy snapshot stored")


def test_v89_policy_net_none_caps_request(ctx):
    with _OwnServer(ctx, {"name": "no net", "net": {"mode": "none"}}) as w:
        fid = w.facility(w.territory())
        r = expect_status(w.create_directive(fid, "echo hi", requested_capabilities={
            "net": {"mode": "unrestricted"}}), 201)
        eff = jcol(w.d(r.body["directive_id"]).get("effective_capabilities")) or {}
        eq((eff.get("net") or {}).get("mode"), "none", "effective net.mode")


def test_v90_policy_fs_intersection(ctx):
    with _OwnServer(ctx, {"name": "src only",
                          "fs": {"read": ["/workspace/src"], "write": []}}) as w:
        fid = w.facility(w.territory())
        r = expect_status(w.create_directive(fid, "echo hi", requested_capabilities={
            "fs": {"read": ["/workspace"], "write": ["/workspace"]}}), 201)
        fs = (jcol(w.d(r.body["directive_id"]).get("effective_capabilities")) or {}).get("fs")
        check("/workspace/src" in (fs or {}).get("read", []), f"effective fs.read: {fs}")
        eq((fs or {}).get("write"), [], "effective fs.write")


def test_v97_forbidden_host_command_422(ctx):
    with _OwnServer(ctx) as w:
        fid = w.facility(w.territory())
        r = w.create_directive(fid, "sudo rm -rf /", sandbox_profile="host")
        expect_error(r, 422, "command_forbidden")
        check(r.body.get("violations"), f"violations: {r.body}")
        eq(_count_directives(w, fid), 0, "nothing stored")


def test_v98_untrusted_command_not_validated(ctx):
    with _OwnServer(ctx) as w:
        fid = w.facility(w.territory())
        r = expect_status(w.create_directive(fid, "sudo rm -rf /", sandbox_profile="untrusted"),
                          201)
        eq(r.body.get("state"), "queued", "state")


def test_v99_host_pipe_needs_approval(ctx):
    with _OwnServer(ctx) as w:
        fid = w.facility(w.territory())
        r = expect_status(w.create_directive(fid, "cat file.txt | grep pattern",
                                             sandbox_profile="host"), 202)
        eq(r.body.get("state"), "awaiting_approval", "state")
        check(any("pipe" in x for x in r.body.get("approval_reasons") or []),
              f"a reason mentions the pipe: {r.body}")


def test_v100_host_safe_command_queued(ctx):
    with _OwnServer(ctx) as w:
        fid = w.facility(w.territory())
        r = expect_status(w.create_directive(fid, "echo hello world", sandbox_profile="host"),
                          201)
        eq(r.body.get("state"), "queued", "state")


def test_v101_create_without_auth_401(ctx):
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    r = w.srv.request("POST", f"/mothership/api/v1/facilities/{fid}/directives",
                      body={"command": "echo hello"})
    expect_error(r, 401, "unauthorized", "no Authorization")
    r = w.srv.request("POST", f"/mothership/api/v1/facilities/{fid}/directives",
                      body={"command": "echo hello"},
                      headers={"Authorization": "Bearer not-a-real-token"})
    expect_error(r, 401, "unauthorized", "unknown token")
    # the headers of the reference are not an authentication here
    r = w.srv.request("POST", f"/mothership/api/v1/facilities/{fid}/directives",
                      body={"command": "echo hello"},
                      headers={"X-Account-Id": w.account_id, "X-User-Id": w.user_id})
    expect_error(r, 401, "unauthorized", "X-Account-Id/X-User-Id only")
    r = expect_status(w.api("GET", f"/facilities/{fid}/directives"), 200)
    eq(r.body.get("directives"), [], "nothing created")


def test_s14_self_approval_of_queued_403(ctx):
    w = ctx.world()
    tid = w.territory()
    fid = w.facility(tid)
    did = w.directive(fid)
    r = w.api("POST", f"/facilities/{fid}/directives/{did}/approve")
    expect_error(r, 403, "forbidden", "self check precedes the state check")


def test_x_revoked_api_token_401(ctx):
    w = ctx.world()
    u, tok = w.other_user("short-lived")
    expect_status(w.api("GET", "/facilities", token=tok), 200)
    toks = w.srv.admin("token", "create", "--user", u)
    w.srv.admin("token", "revoke", toks["token_id"])
    expect_error(w.api("GET", "/facilities", token=toks["api_token"]), 401, "unauthorized")
    expect_status(w.api("GET", "/facilities", token=tok), 200, "the other token still works")


def test_x_decommissioned_territory_refused_within_a_second(ctx):
    """Territory identities are cached for at most 1 s on the hot path (domain/auth.c):
    decommissioning through `mothership admin` (another process) is seen within that."""
    w = ctx.world()
    tid = w.territory()
    expect_status(w.poll(tid), 200, "poll before")
    w.srv.admin("territory", "set", tid, "--status", "decommissioned")
    time.sleep(1.3)
    expect_error(w.poll(tid), 403, "forbidden")


if __name__ == "__main__":
    run_tap(globals(), setup=default_setup, teardown=default_teardown)
