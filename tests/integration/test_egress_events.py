"""The egress audit stream (issue 6, our additive extension; docs/api.md "Egress events").

nexusd sends its proxy's decisions (spec nexus §7.10 records, JSONL) as log chunks of a third
stream, "egress". The mothership stores them apart from stdout/stderr (own 4 MiB budget, never
counted in max_output_bytes or stdout_bytes/stderr_bytes, never in the plain-text log) and
serves them parsed at GET /mothership/api/v1/facilities/{fid}/directives/{id}/egress_events.
Usage: test_egress_events.py <path to mothership binary>   (TAP on stdout)
"""
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Server, World, check, eq, expect_error, expect_status,  # noqa: E402
                     run_tap)


class Ctx:
    def __init__(self, binary):
        self.srv = Server(binary).start()
        self.w = World(self.srv)


def setup(binary):
    return Ctx(binary)


def teardown(ctx):
    ctx.srv.stop()


def rec(host, decision="deny", reason="NOT_IN_ALLOWLIST", **extra):
    r = {"ts": "2026-11-27T12:00:00Z", "directive_id": "x", "dest_host": host,
         "dest_port": 443, "decision": decision, "reason_code": reason, "method": "CONNECT"}
    r.update(extra)
    return r


def jsonl(*records):
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def events(w, ls, **query):
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return w.api("GET", f"/facilities/{ls.fid}/directives/{ls.did}/egress_events" +
                 (("?" + q) if q else ""))


def test_egress_chunks_are_served_as_records(ctx):
    w = ctx.w
    ls = w.running()
    expect_status(w.chunk(ls, "egress", 0, jsonl(rec("evil.test"), rec("ok.test", "allow", "OK",
                                                                       resolved_ip="11.22.33.1"))),
                  200, "egress chunk 0")
    expect_status(w.chunk(ls, "egress", 1, jsonl(rec("169.254.169.254", reason="DNS_DENIED"))),
                  200, "egress chunk 1")
    r = expect_status(events(w, ls), 200, "egress_events")
    got = r.body["egress_events"]
    eq([e["dest_host"] for e in got], ["evil.test", "ok.test", "169.254.169.254"], "records")
    eq(got[1]["resolved_ip"], "11.22.33.1", "fields kept")
    eq(r.body["next_after_seq"], None, "no more pages")


def test_egress_bytes_do_not_count_as_output(ctx):
    w = ctx.w
    ls = w.running(limits={"max_output_bytes": 10})
    data = jsonl(*[rec(f"h{i}.test") for i in range(20)])
    check(len(data) > 10, "the records are larger than the output budget")
    r = expect_status(w.chunk(ls, "egress", 0, data), 200, "egress chunk")
    eq(r.body.get("stored"), True, "stored despite max_output_bytes=10")
    d = w.d(ls.did)
    eq((d.get("stdout_bytes"), d.get("stderr_bytes")), (0, 0), "output counters untouched")
    expect_status(w.chunk(ls, "stdout", 0, b"0123456789"), 200, "stdout still has its budget")
    eq(len(events(w, ls).body["egress_events"]), 20, "all records")


def test_egress_not_in_plain_log_or_both_streams(ctx):
    w = ctx.w
    ls = w.running()
    expect_status(w.chunk(ls, "stdout", 0, b"out\n"), 200)
    expect_status(w.chunk(ls, "egress", 0, jsonl(rec("a.test"))), 200)
    r = expect_status(w.api("GET", f"/facilities/{ls.fid}/directives/{ls.did}/log"), 200)
    eq(r.raw if hasattr(r, "raw") else r.body, b"out\n", "plain stdout log")
    r = expect_status(w.log_page(ls.fid, ls.did, stream="stdout"), 200)
    eq(len(r.body["chunks"]), 1, "stdout page has only stdout")


def test_egress_duplicate_seq_is_kept_once(ctx):
    w = ctx.w
    ls = w.running()
    expect_status(w.chunk(ls, "egress", 0, jsonl(rec("a.test"))), 200)
    r = expect_status(w.chunk(ls, "egress", 0, jsonl(rec("b.test"))), 200)
    eq((r.body.get("stored"), r.body.get("duplicate")), (False, True), "re-sent seq")
    eq([e["dest_host"] for e in events(w, ls).body["egress_events"]], ["a.test"], "first kept")


def test_egress_budget_is_capped(ctx):
    w = ctx.w
    ls = w.running()
    line = json.dumps(rec("x" * 100 + ".test")) + "\n"
    big = (line * (200_000 // len(line))).encode()
    stored = 0
    for seq in range(30):   # 30 x ~200 kB > the 4 MiB budget
        r = expect_status(w.chunk(ls, "egress", seq, big), 200, f"chunk {seq}")
        if r.body.get("stored"):
            stored += 1
        else:
            eq(r.body.get("truncated"), True, "refused chunk reported truncated")
    check(0 < stored < 30, f"some chunks refused by the cap (stored {stored})")


def test_egress_paging_by_chunk(ctx):
    w = ctx.w
    ls = w.running()
    for seq in range(3):
        expect_status(w.chunk(ls, "egress", seq, jsonl(rec(f"s{seq}a.test"), rec(f"s{seq}b.test"))),
                      200)
    r = expect_status(events(w, ls, limit=3), 200)
    eq([e["dest_host"] for e in r.body["egress_events"]],
       ["s0a.test", "s0b.test", "s1a.test", "s1b.test"], "whole chunks until >= limit")
    eq(r.body["next_after_seq"], 1, "cursor is the last chunk seq")
    r = expect_status(events(w, ls, limit=3, after_seq=1), 200)
    eq([e["dest_host"] for e in r.body["egress_events"]], ["s2a.test", "s2b.test"], "page 2")
    eq(r.body["next_after_seq"], None, "end")


def test_egress_events_bad_params_and_isolation(ctx):
    w = ctx.w
    ls = w.running()
    expect_error(events(w, ls, limit=0), 422)
    expect_error(events(w, ls, after_seq="x"), 422)
    other = World(ctx.srv)
    r = other.api("GET", f"/facilities/{ls.fid}/directives/{ls.did}/egress_events")
    expect_error(r, 404, what="another account sees nothing")


def test_unknown_stream_still_refused(ctx):
    w = ctx.w
    ls = w.running()
    r = w.chunk(ls, "audit", 0, b"x")
    expect_error(r, 422, "invalid_param")
    check("egress" in json.dumps(r.body), "the error names the accepted streams")


if __name__ == "__main__":
    run_tap(globals(), setup=setup, teardown=teardown)
