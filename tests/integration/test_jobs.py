#!/usr/bin/env python3
"""Periodic jobs run on demand through `mothership admin job run` (spec mothership §10.3,
§7.7; acceptance vectors §13.1 27 and §13.7 102-104, 110, 111).

Each case gets its own server and data dir, so job counts ("processed") are exact. Old rows
are made by moving created_at back with the server stopped (spec §1.14 needs "forced
timestamps" fixtures; the admin CLI has no command for that, so the test edits the SQLite file
directly, which is the only schema knowledge here: table and column names of spec §1). Each
server is stopped with SIGTERM at the end of its case and must exit 0.
Usage: test_jobs.py <path to mothership binary>   (TAP on stdout)
"""
import os
import sys

sys.dont_write_bytecode = True   # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Server, World, b64, check, eq, expect_error,  # noqa: E402
                     expect_status, jcol, run_tap)


class JCtx:
    def __init__(self, binary):
        self.binary = binary


def setup(binary):
    return JCtx(binary)


class Fresh:
    """A server of its own for one case: `with Fresh(ctx) as (srv, w): ...`."""

    def __init__(self, ctx):
        self.ctx = ctx

    def __enter__(self):
        self.srv = Server(self.ctx.binary).start()
        self.ctx.srv = self.srv        # lets the reporter notice a crash
        return self.srv, World(self.srv)

    def __exit__(self, et, ev, tb):
        try:
            if et is None:
                self.srv.stop()       # must exit 0 (raises otherwise)
        finally:
            self.ctx.srv = None
            self.srv.cleanup()
        return False


def job(srv, name, *args):
    j = srv.admin("job", "run", name, *[str(a) for a in args])
    eq(j.get("job"), name, "job name echoed")
    check(isinstance(j.get("processed"), int), f"processed must be an integer: {j}")
    return j["processed"]


def events(srv, did, etype=None):
    args = ["audit", "list", "--directive", did]
    if etype:
        args += ["--type", etype]
    evs = srv.admin(*args).get("events")
    check(isinstance(evs, list), "audit list: events must be a list")
    return evs


# --------------------------------------------------------------------------------------------
# lease reaper (§7.7)


def test_v27_reaper_requeues_expired_lease(ctx):
    with Fresh(ctx) as (srv, w):
        ls = w.lease()
        e = srv.admin("lease", "expire", ls.did, "--ago-seconds", "60")
        eq(e.get("directive_id"), ls.did, "lease expire directive_id")
        check(e.get("lease_expires_at"), f"lease expire: {e}")
        eq(job(srv, "reaper"), 1, "processed")
        d = w.d(ls.did)
        eq(d.get("state"), "queued", "state")
        eq(d.get("territory_id"), None, "territory_id cleared")
        eq(d.get("lease_expires_at"), None, "lease_expires_at cleared")
        eq(d.get("last_heartbeat_at"), None, "last_heartbeat_at cleared")
        eq(w.f(ls.fid).get("locked_by_directive_id"), None, "facility unlocked")
        evs = events(srv, ls.did, "directive.lease_expired")
        eq(len(evs), 1, "one directive.lease_expired event")
        eq(evs[0].get("severity"), "warn", "severity")
        p = jcol(evs[0].get("payload")) or {}
        check("territory_id" in p and "lease_expires_at" in p, f"payload keys: {p}")


def test_reaped_directive_is_leased_again(ctx):
    with Fresh(ctx) as (srv, w):
        ls = w.lease()
        srv.admin("lease", "expire", ls.did)
        eq(job(srv, "reaper"), 1, "processed")
        expect_error(w.started(ls), 403, "forbidden", "old token after the lease was reaped")
        r = expect_status(w.poll(ls.tid), 200)
        ds = r.body.get("directives") or []
        eq([d["directive_id"] for d in ds], [ls.did], "leased again")
        eq(w.f(ls.fid).get("locked_by_directive_id"), ls.did, "facility locked again")
        # a still-unexpired old token is accepted again once the directive is bound to the
        # same territory (§4 binding checks)
        expect_status(w.started(ls), 200, "old token after re-lease to the same territory")


def test_reaper_ignores_unexpired_and_running(ctx):
    with Fresh(ctx) as (srv, w):
        fresh = w.lease()
        running = w.running()
        srv.admin("lease", "expire", running.did, "--ago-seconds", "600")
        eq(job(srv, "reaper"), 0, "processed")
        eq(w.d(fresh.did).get("state"), "leased", "unexpired lease kept")
        eq(w.d(running.did).get("state"), "running", "running directive never reaped")
        eq(w.f(running.fid).get("locked_by_directive_id"), running.did, "lock kept")


def test_reaper_processes_every_expired_lease(ctx):
    with Fresh(ctx) as (srv, w):
        leases = [w.lease() for _ in range(3)]
        for ls in leases:
            srv.admin("lease", "expire", ls.did, "--ago-seconds", "5")
        eq(job(srv, "reaper"), 3, "processed")
        eq([w.d(ls.did).get("state") for ls in leases], ["queued"] * 3, "states")
        eq(job(srv, "reaper"), 0, "second run has nothing to do")


def test_lease_expire_of_unknown_directive_fails(ctx):
    with Fresh(ctx) as (srv, w):
        rc, out, err = srv.admin_raw("lease", "expire", "01890a5d-ac96-774b-bcce-b302099a8057")
        eq(rc, 1, "exit status")
        check(err.strip(), "an error line on stderr")


def test_unknown_job_name_is_refused(ctx):
    with Fresh(ctx) as (srv, w):
        rc, out, err = srv.admin_raw("job", "run", "no-such-job")
        check(rc in (1, 2), f"exit status {rc} (expected 1 or 2)")
        check(err.strip(), "an error line on stderr")


# --------------------------------------------------------------------------------------------
# audit retention (§10.3; vectors 102-104)


def _created_event(srv, w, fid):
    did = w.directive(fid)
    evs = events(srv, did, "directive.created")
    eq(len(evs), 1, "directive.created events")
    return did, evs[0]["id"]


def test_v102_audit_cleanup_deletes_old_keeps_fresh(ctx):
    with Fresh(ctx) as (srv, w):
        fid = w.facility(w.territory())
        old_did, old_ev = _created_event(srv, w, fid)
        new_did, new_ev = _created_event(srv, w, fid)
        srv.age([("conduits_audit_events", "id = ?", (old_ev,), 91)])
        eq(job(srv, "audit-retention", "--ttl-days", 90), 1, "processed")
        eq(events(srv, old_did), [], "91-day-old event deleted")
        eq([e["id"] for e in events(srv, new_did)], [new_ev], "fresh event kept")


def test_v103_audit_cleanup_batches(ctx):
    with Fresh(ctx) as (srv, w):
        fid = w.facility(w.territory())
        made = [_created_event(srv, w, fid) for _ in range(5)]
        srv.age([("conduits_audit_events", "id = ?", (ev,), 91) for _, ev in made])
        eq(job(srv, "audit-retention", "--ttl-days", 90, "--batch-size", 2,
               "--max-batches", 1), 2, "processed")
        remaining = sum(len(events(srv, did)) for did, _ in made)
        eq(remaining, 3, "old events remaining")
        # the oldest go first
        eq([len(events(srv, did)) for did, _ in made[:2]], [0, 0], "oldest two deleted")


def test_v104_audit_cleanup_ttl_zero_does_nothing(ctx):
    with Fresh(ctx) as (srv, w):
        fid = w.facility(w.territory())
        did, ev = _created_event(srv, w, fid)
        srv.age([("conduits_audit_events", "id = ?", (ev,), 200)])
        eq(job(srv, "audit-retention", "--ttl-days", 0), 0, "processed")
        eq([e["id"] for e in events(srv, did)], [ev], "200-day-old event kept")


# --------------------------------------------------------------------------------------------
# diff-blob retention (vector 110)


def _diffed(w, content):
    ls = w.running()
    expect_status(w.finished(ls, "succeeded", exit_code=0, diff_base64=b64(content)), 200)
    r = expect_status(w.api("GET", f"/facilities/{ls.fid}/directives/{ls.did}/diff"), 200)
    eq(r.raw, content, "diff before cleanup")
    return ls


def test_v110_diff_cleanup_purges_old_diff(ctx):
    with Fresh(ctx) as (srv, w):
        old = _diffed(w, b"--- a\n+++ b\n-old\n+new\n")
        new = _diffed(w, b"--- a\n+++ b\n-x\n+y\n")
        srv.age([("diff_blobs", "directive_id = ?", (old.did,), 40)])
        eq(job(srv, "diff-retention", "--ttl-days", 30, "--batch-size", 100), 1, "processed")
        r = w.api("GET", f"/facilities/{old.fid}/directives/{old.did}/diff")
        expect_status(r, 404, "purged diff")
        r = expect_status(w.api("GET", f"/facilities/{new.fid}/directives/{new.did}/diff"), 200)
        eq(r.raw, b"--- a\n+++ b\n-x\n+y\n", "fresh diff kept")
        eq(w.d(old.did).get("state"), "succeeded", "directive itself untouched")


def test_diff_cleanup_same_content_shared_blob(ctx):
    """Two directives with identical diffs: purging the old one keeps the other readable."""
    with Fresh(ctx) as (srv, w):
        same = b"--- a\n+++ b\n-same\n+same2\n"
        old = _diffed(w, same)
        new = _diffed(w, same)
        srv.age([("diff_blobs", "directive_id = ?", (old.did,), 40)])
        eq(job(srv, "diff-retention", "--ttl-days", 30), 1, "processed")
        expect_status(w.api("GET", f"/facilities/{old.fid}/directives/{old.did}/diff"), 404)
        r = expect_status(w.api("GET", f"/facilities/{new.fid}/directives/{new.did}/diff"), 200)
        eq(r.raw, same, "shared content still served")


# --------------------------------------------------------------------------------------------
# log-chunk retention (vector 111)


def _seqs(w, ls):
    r = expect_status(w.log_page(ls.fid, ls.did, stream="stdout", limit=500), 200)
    return [c["seq"] for c in r.body.get("chunks", [])]


def test_v111_log_cleanup_old_chunk_deleted(ctx):
    with Fresh(ctx) as (srv, w):
        ls = w.running()
        expect_status(w.chunk(ls, "stdout", 0, b"forty days old\n"), 200)
        expect_status(w.chunk(ls, "stdout", 1, b"one day old\n"), 200)
        srv.age([("conduits_log_chunks", "directive_id = ? AND stream = 'stdout' AND seq = ?",
                  (ls.did, 0), 40),
                 ("conduits_log_chunks", "directive_id = ? AND stream = 'stdout' AND seq = ?",
                  (ls.did, 1), 1)])
        eq(job(srv, "log-retention", "--ttl-days", 30, "--max-batches", 1), 1, "processed")
        eq(_seqs(w, ls), [1], "remaining chunks")
        # byte counters are not decremented (§10.3)
        eq(w.d(ls.did).get("stdout_bytes"), len(b"forty days old\n") + len(b"one day old\n"),
           "stdout_bytes")


def test_log_cleanup_batches(ctx):
    with Fresh(ctx) as (srv, w):
        ls = w.running()
        for i in range(5):
            expect_status(w.chunk(ls, "stdout", i, b"chunk %d\n" % i), 200)
        srv.age([("conduits_log_chunks", "directive_id = ? AND seq = ?", (ls.did, i), 40 + i)
                 for i in range(5)])
        eq(job(srv, "log-retention", "--ttl-days", 30, "--batch-size", 2, "--max-batches", 1),
           2, "processed")
        eq(_seqs(w, ls), [0, 1, 2], "the two oldest (seq 4 and 3) went first")
        eq(job(srv, "log-retention", "--ttl-days", 30, "--batch-size", 2, "--max-batches", 5),
           3, "processed")
        eq(_seqs(w, ls), [], "all old chunks gone")


def test_log_cleanup_ttl_zero_does_nothing(ctx):
    with Fresh(ctx) as (srv, w):
        ls = w.running()
        expect_status(w.chunk(ls, "stdout", 0, b"x"), 200)
        srv.age([("conduits_log_chunks", "directive_id = ?", (ls.did,), 400)])
        eq(job(srv, "log-retention", "--ttl-days", 0), 0, "processed")
        eq(_seqs(w, ls), [0], "kept")


if __name__ == "__main__":
    run_tap(globals(), setup=setup)
