#!/usr/bin/env python3
"""Crash durability of log chunks (spec mothership §3.2.6, §7.10; DESIGN D7).

Round: 4 territories each run one directive; 4 threads post stdout chunks seq 0..N (random
sizes up to 16 KiB, distinct content per seq), recording which ones were answered 200. Mid-load
the server is killed with SIGKILL, then restarted on the same data dir. Then:
  * every chunk that got a 200 is readable through the user log API with the exact bytes;
  * no stored chunk differs from what was sent for its seq (no torn or mixed-up writes);
  * the directive's stdout_bytes equals the sum of its stored chunks;
  * re-sending an acknowledged chunk answers duplicate:true (stored:false) and changes nothing;
  * re-sending the chunks that were in flight completes the log exactly once;
  * the directive tokens minted before the crash still work (the key survives a restart) and
    the directives can be finished.
Four rounds (different kill points), then a clean SIGTERM shutdown (exit 0).
Per territory the load stays under the 120 directive reports/minute rate rule (§3.1.4); the
rate-limit counters restart empty with the process.
Usage: test_crash.py <path to mothership binary>   (TAP on stdout)
"""
import base64
import os
import random
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HttpError, World, check, col_false, default_setup,  # noqa: E402
                     default_teardown, eq, expect_status, run_tap, short)

N_DIRECTIVES = 4
N_CHUNKS = 110           # + 1 started report: under 120 reports/min per territory
MAX_CHUNK = 16384


def payload(round_no, k, seq):
    rnd = random.Random(round_no * 1000003 + k * 10007 + seq)
    size = rnd.randint(1, MAX_CHUNK)
    return f"r{round_no} d{k} seq {seq}:".encode() + rnd.randbytes(size)


class Round:
    def __init__(self, no, kill_after):
        self.no, self.kill_after = no, kill_after
        self.leases = []
        self.sent = {}       # (k, seq) -> payload (request started)
        self.acked = {}      # (k, seq) -> payload (answered 200 stored:true)
        self.bad_acks = []
        self.lock = threading.Lock()
        self.ack_count = 0
        self.enough = threading.Event()
        self.error = None
        self.stored = {}     # k -> {seq: bytes} after the restart
        self.pages_error = []


def _poster(ctx, rd, k, ls):
    w = ctx.w
    for seq in range(N_CHUNKS):
        data = payload(rd.no, k, seq)
        with rd.lock:
            rd.sent[(k, seq)] = data
        try:
            r = w.chunk(ls, "stdout", seq, data)
        except (HttpError, OSError):
            return                      # the server is gone
        if r.status == 200 and isinstance(r.body, dict) and r.body.get("stored") is True \
                and r.body.get("accepted_bytes") == len(data):
            with rd.lock:
                rd.acked[(k, seq)] = data
                rd.ack_count += 1
                if rd.ack_count >= rd.kill_after:
                    rd.enough.set()
        elif r.status != 200:
            with rd.lock:
                rd.bad_acks.append(f"d{k} seq {seq}: {r.status} {short(r.body, 200)}")
            return


def _read_all(w, ls):
    out, after = {}, -1
    for _ in range(100):
        r = w.log_page(ls.fid, ls.did, stream="stdout", after_seq=after, limit=500)
        expect_status(r, 200, "log page after restart")
        chunks = r.body.get("chunks") or []
        for c in chunks:
            check(c["seq"] not in out, f"seq {c['seq']} returned twice")
            out[c["seq"]] = base64.b64decode(c["bytes_base64"])
        if not chunks:
            break
        after = r.body.get("next_after_seq")
    return out


def _run_round(ctx, no, kill_after):
    key = f"round{no}"
    if key in ctx.rounds:
        rd = ctx.rounds[key]
        if rd.error:
            raise AssertionError(f"round {no} could not run: {rd.error}")
        return rd
    rd = Round(no, kill_after)
    ctx.rounds[key] = rd
    try:
        w = ctx.w
        rd.leases = [w.running() for _ in range(N_DIRECTIVES)]
        threads = [threading.Thread(target=_poster, args=(ctx, rd, k, ls))
                   for k, ls in enumerate(rd.leases)]
        for t in threads:
            t.start()
        rd.enough.wait(120)
        check(rd.enough.is_set(), f"only {rd.ack_count} chunks acknowledged before the kill "
                                  f"deadline; errors {rd.bad_acks[:5]}")
        ctx.srv.kill9()
        for t in threads:
            t.join(60)
        rd.killed_with_inflight = len(rd.sent) - len(rd.acked)
        print(f"# round {no}: killed after {len(rd.acked)} acknowledged chunks, "
              f"{rd.killed_with_inflight} sent without an answer", flush=True)
        ctx.srv.start()
        for k, ls in enumerate(rd.leases):
            rd.stored[k] = _read_all(w, ls)
    except Exception as e:
        rd.error = repr(e)
        raise
    return rd


class CrashCtx:
    def __init__(self, srv):
        self.srv = srv
        self.w = World(srv)
        self.rounds = {}


def setup(binary):
    return CrashCtx(default_setup(binary).srv)


def _acked_survive(rd):
    missing, wrong = [], []
    for (k, seq), data in sorted(rd.acked.items()):
        got = rd.stored[k].get(seq)
        if got is None:
            missing.append(f"d{k} seq {seq}")
        elif got != data:
            wrong.append(f"d{k} seq {seq}: {len(got)} bytes stored, {len(data)} acknowledged")
    check(not rd.bad_acks, "unexpected answers during the load:\n" + "\n".join(rd.bad_acks))
    check(not missing, f"{len(missing)} acknowledged chunks lost: {missing[:10]}")
    check(not wrong, f"{len(wrong)} acknowledged chunks differ: {wrong[:10]}")


def _no_torn(rd):
    bad = []
    for k, chunks in rd.stored.items():
        for seq, got in chunks.items():
            sent = rd.sent.get((k, seq))
            if sent is None:
                bad.append(f"d{k} seq {seq} stored but never sent")
            elif got != sent:
                bad.append(f"d{k} seq {seq}: stored {len(got)} bytes differ from the "
                           f"{len(sent)} sent")
    check(not bad, "\n".join(bad[:10]))


def _counters(ctx, rd):
    bad = []
    for k, ls in enumerate(rd.leases):
        d = ctx.w.d(ls.did)
        total = sum(len(b) for b in rd.stored[k].values())
        if d.get("stdout_bytes") != total:
            bad.append(f"d{k}: stdout_bytes {d.get('stdout_bytes')} != {total} stored")
        if d.get("state") != "running":
            bad.append(f"d{k}: state {d.get('state')} after the crash (expected running)")
        if not col_false(d.get("stdout_truncated")):
            bad.append(f"d{k}: stdout_truncated {d.get('stdout_truncated')!r}")
    check(not bad, "\n".join(bad))


def _resend_acked(ctx, rd):
    w = ctx.w
    bad = []
    for (k, seq), data in sorted(rd.acked.items()):
        r = w.chunk(rd.leases[k], "stdout", seq, data)
        if r.status != 200 or r.body.get("duplicate") is not True or \
                r.body.get("stored") is not False or r.body.get("accepted_bytes") != 0:
            bad.append(f"d{k} seq {seq}: {r.status} {short(r.body, 200)}")
    check(not bad, f"{len(bad)} re-sent acknowledged chunks not answered duplicate:\n" +
          "\n".join(bad[:10]))


def _resend_inflight(ctx, rd):
    w = ctx.w
    bad = []
    for (k, seq), data in sorted(rd.sent.items()):
        if (k, seq) in rd.acked:
            continue
        r = w.chunk(rd.leases[k], "stdout", seq, data)
        stored_before = seq in rd.stored[k]
        if r.status != 200 or r.body.get("duplicate") is not stored_before:
            bad.append(f"d{k} seq {seq} (stored before: {stored_before}): {r.status} "
                       f"{short(r.body, 200)}")
    check(not bad, "\n".join(bad[:10]))
    for k, ls in enumerate(rd.leases):
        got = _read_all(w, ls)
        want = {seq: d for (kk, seq), d in rd.sent.items() if kk == k}
        eq(sorted(got), sorted(want), f"d{k} stored seqs after completing")
        check(all(got[s] == want[s] for s in want), f"d{k}: content differs after completing")
        eq(w.d(ls.did).get("stdout_bytes"), sum(len(b) for b in want.values()),
           f"d{k} stdout_bytes after completing")


def _tokens_survive(ctx, rd):
    w = ctx.w
    for k, ls in enumerate(rd.leases):
        r = expect_status(w.heartbeat(ls), 200, f"d{k} heartbeat with the pre-crash token")
        r = expect_status(w.finished(ls, "succeeded", exit_code=0), 200, f"d{k} finished")
        eq(r.body.get("final_state"), "succeeded", "final_state")
        check(w.f(ls.fid).get("locked_by_directive_id") is None, f"d{k} facility unlocked")


def _make_cases():
    g = globals()
    # kill points: early, mid and late in the load (at most 4 x 110 chunks are posted)
    for no, kill_after in ((1, 120), (2, 40), (3, 3), (4, 300)):
        steps = [("acked_chunks_survive_kill9", lambda ctx, rd: _acked_survive(rd)),
                 ("no_torn_or_foreign_chunks", lambda ctx, rd: _no_torn(rd)),
                 ("byte_counters_match_chunks", _counters),
                 ("resent_acked_chunks_are_duplicates", _resend_acked),
                 ("resent_inflight_chunks_complete_the_log", _resend_inflight),
                 ("pre_crash_tokens_still_work", _tokens_survive)]
        for name, fn in steps:
            def case(ctx, fn=fn, no=no, kill_after=kill_after):
                fn(ctx, _run_round(ctx, no, kill_after))
            case.__name__ = f"test_round{no}_{name}"
            case.__module__ = __name__
            g[case.__name__] = case


_make_cases()


def test_data_survives_restart(ctx):
    """Accounts, tokens and territories made before the crashes still work."""
    w = ctx.w
    expect_status(w.api("GET", "/facilities"), 200, "API token after restarts")
    tid = w.territory()
    ls = w.lease(tid=tid)
    expect_status(w.finished(ls, "succeeded", exit_code=0), 200)


def test_no_5xx_seen(ctx):
    errs = ctx.srv.server_errors
    check(not errs, f"{len(errs)} responses were 5xx:\n" + "\n".join(errs[:20]))


if __name__ == "__main__":
    run_tap(globals(), setup=setup, teardown=default_teardown)
