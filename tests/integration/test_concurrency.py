#!/usr/bin/env python3
"""Concurrent claiming (spec mothership §7.4, §7.10, §7.11).

8 threads poll as 8 enrolled territories of one account (capacity.max_concurrent 5 sent by
heartbeat, max_directives_to_claim 5) while 2 threads create 1,000 directives spread over 100
facilities ("spread" load), then 300 directives over only 3 facilities ("hot" load: nearly
every claim races for the same facility locks). Each territory finishes every directive right after leasing it (every other one
with `started` first, the rest straight from `leased`, the implicit start of §3.2.7).

Checked: every directive is claimed exactly once and ends `succeeded`; nothing is lost or
duplicated; no two directives of one facility are ever held at once (§7.11: a lease of D2 on F
arrives only after D1's finished report on F was at least sent); all facilities end unlocked;
no 5xx. Rate rules (§3.1.4: 60 polls and 120 directive reports per territory per minute) bound
the throughput; a 429 is honoured by waiting for the next fixed window and is not an error.
Usage: test_concurrency.py <path to mothership binary>   (TAP on stdout)
"""
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.dont_write_bytecode = True   # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (World, check, default_setup, default_teardown, eq,  # noqa: E402
                     expect_status, fresh_source_ip, is_uuid, run_tap, short)

N_TERRITORIES = 8
N_FACILITIES = 100
N_DIRECTIVES = 1000
N_CREATORS = 2
DEADLINE_S = 210


def _sleep_to_next_window(period=60):
    time.sleep(period - (time.time() % period) + 0.05)


class Run:
    def __init__(self, w, tids, fids, n_directives):
        self.w, self.tids, self.fids = w, tids, fids
        self.n_directives = n_directives
        self.lock = threading.Lock()
        self.created = {}            # did -> fid
        self.claims = {}             # did -> [tid, ...]
        self.holding = {}            # fid -> did whose finished report has not been sent yet
        self.finished = set()
        self.errors = []
        self.overlaps = []
        self.foreign = []
        self.creators_done = threading.Event()
        self.stop = threading.Event()
        self.stats = {"polls": 0, "empty_polls": 0, "poll_429": 0, "report_429": 0}

    def err(self, msg):
        with self.lock:
            if len(self.errors) < 50:
                self.errors.append(msg)

    # -- creators
    def creator(self, k):
        w = self.w
        for n in range(k, self.n_directives, N_CREATORS):
            if self.stop.is_set():
                return
            fid = self.fids[n % len(self.fids)]
            r = w.create_directive(fid, f"echo directive-{n}")
            if r.status != 201 or not is_uuid((r.body or {}).get("directive_id")
                                               if isinstance(r.body, dict) else None):
                self.err(f"create #{n}: {r.status} {short(r.body, 200)}")
                continue
            with self.lock:
                self.created[r.body["directive_id"]] = fid

    # -- territories
    def report(self, tid, ls_did, token, verb, body):
        """Sends one directive report, waiting out 429s. Returns the final response."""
        while True:
            r = self.w.t(tid, "POST", f"/directives/{ls_did}/{verb}", body, token=token)
            if r.status != 429:
                return r
            with self.lock:
                self.stats["report_429"] += 1
            _sleep_to_next_window()

    def territory(self, tid, idx):
        w = self.w
        n = 0
        while not self.stop.is_set():
            r = w.poll(tid, max_claim=5)
            with self.lock:
                self.stats["polls"] += 1
            if r.status == 429:
                with self.lock:
                    self.stats["poll_429"] += 1
                _sleep_to_next_window()
                continue
            if r.status != 200 or not isinstance(r.body, dict):
                self.err(f"poll by {tid}: {r.status} {short(r.body, 200)}")
                time.sleep(0.5)
                continue
            leases = r.body.get("directives") or []
            if not leases:
                with self.lock:
                    self.stats["empty_polls"] += 1
                    done = (self.creators_done.is_set() and
                            len(self.finished) >= len(self.created))
                if done:
                    return
                time.sleep(1.0)
                continue
            for lease in leases:
                did = lease.get("directive_id")
                token = lease.get("directive_token")
                fid = ((lease.get("spec") or {}).get("facility") or {}).get("id")
                with self.lock:
                    self.claims.setdefault(did, []).append(tid)
                    if fid not in self.fids:
                        self.foreign.append((did, fid))
                    other = self.holding.get(fid)
                    if other is not None and other != did:
                        self.overlaps.append(f"facility {fid}: {did} leased by {tid} while "
                                             f"{other} still held (finished not yet sent)")
                    self.holding[fid] = did
                n += 1
                if n % 2 == 0:
                    r = self.report(tid, did, token, "started", {"nexus_version": "itest"})
                    if r.status != 200:
                        self.err(f"started {did}: {r.status} {short(r.body, 200)}")
                with self.lock:
                    if self.holding.get(fid) == did:
                        del self.holding[fid]
                r = self.report(tid, did, token, "finished", {"status": "succeeded",
                                                              "exit_code": 0})
                if r.status != 200 or (r.body or {}).get("final_state") != "succeeded":
                    self.err(f"finished {did}: {r.status} {short(r.body, 200)}")
                    continue
                with self.lock:
                    self.finished.add(did)


class CCtx:
    def __init__(self, srv):
        self.srv = srv
        self.runs = {}


def setup(binary):
    """Rate limits off when this server build offers the switch (`--rate-limits off`): the
    point here is contention, and 429 pauses would serialise the territories. Without the
    switch the run still works, waiting out each 429 until the next window."""
    c = None
    if os.environ.get("ITEST_RATE_LIMITS") != "on":
        try:
            c = default_setup(binary, extra_args=["--rate-limits", "off"])
            c.srv.rate_limited = False
        except Exception:
            c = None
    if c is None:
        c = default_setup(binary)
        c.srv.rate_limited = True
    print(f"# rate limits {'on' if c.srv.rate_limited else 'off'}", flush=True)
    return CCtx(c.srv)


def _facility(w, tid):
    r = w.api("POST", "/facilities", {"territory_id": tid, "kind": "empty"})
    if r.status == 201 and is_uuid(((r.body or {}).get("facility") or {}).get("id")):
        return r.body["facility"]["id"]
    return w.facility(tid, kind="empty", repo_url=None)


def _ensure_run(ctx, phase="spread"):
    """Each load runs once; the cases below each check one property of it.
    spread: 1,000 directives over 100 facilities; hot: 300 directives over 3 facilities, so
    that nearly every poll races for the same facility locks (§7.4 step 5)."""
    n_dir, n_fac = {"spread": (N_DIRECTIVES, N_FACILITIES), "hot": (300, 3)}[phase]
    runs = ctx.runs
    if phase in runs:
        if isinstance(runs[phase], str):
            raise AssertionError(f"the {phase} load run failed: {runs[phase]}")
        return runs[phase]
    try:
        w = World(ctx.srv)
        tids = [w.territory(capacity={"max_concurrent": 5}, name=f"conc-{phase}-{i}")
                for i in range(N_TERRITORIES)]
        with ThreadPoolExecutor(8) as ex:
            fids = list(ex.map(lambda i: _facility(w, tids[i % len(tids)]), range(n_fac)))
        run = Run(w, tids, fids, n_dir)
        creators = [threading.Thread(target=run.creator, args=(k,)) for k in range(N_CREATORS)]
        pollers = [threading.Thread(target=run.territory, args=(tid, i))
                   for i, tid in enumerate(tids)]
        t0 = time.monotonic()
        for t in pollers + creators:
            t.start()
        for t in creators:
            t.join(DEADLINE_S)
        run.creators_done.set()
        for t in pollers:
            t.join(max(1.0, DEADLINE_S - (time.monotonic() - t0)))
        run.timed_out = any(t.is_alive() for t in pollers + creators)
        run.stop.set()
        for t in pollers + creators:
            t.join(60)
        run.elapsed = time.monotonic() - t0
        runs[phase] = run
        print(f"# {phase} load: {len(run.created)} created, {len(run.finished)} finished in "
              f"{run.elapsed:.1f}s; stats {run.stats}", flush=True)
        return run
    except Exception as e:
        runs[phase] = repr(e)
        raise


def check_load_completes_in_time(ctx, phase):
    run = _ensure_run(ctx, phase)
    check(not run.timed_out, f"not finished within {DEADLINE_S}s: {len(run.finished)} of "
                             f"{len(run.created)} finished; stats {run.stats}")
    check(not run.errors, "errors during the load:\n" + "\n".join(run.errors))


def check_all_directives_created(ctx, phase):
    run = _ensure_run(ctx, phase)
    eq(len(run.created), run.n_directives, "directives created")


def check_every_directive_claimed_exactly_once(ctx, phase):
    run = _ensure_run(ctx, phase)
    dup = {d: t for d, t in run.claims.items() if len(t) != 1}
    check(not dup, f"{len(dup)} directives leased more than once, e.g. "
                   f"{short(list(dup.items())[:5])}")
    missing = set(run.created) - set(run.claims)
    check(not missing, f"{len(missing)} directives never leased, e.g. {sorted(missing)[:5]}")
    unknown = set(run.claims) - set(run.created)
    check(not unknown, f"{len(unknown)} leased directives this test never created: "
                       f"{sorted(unknown)[:5]}")
    check(not run.foreign, f"leases on unknown facilities: {run.foreign[:5]}")


def check_facility_lock_never_shared(ctx, phase):
    run = _ensure_run(ctx, phase)
    check(not run.overlaps, f"{len(run.overlaps)} overlapping holds:\n" +
          "\n".join(run.overlaps[:20]))


def check_all_directives_terminal_succeeded(ctx, phase):
    run = _ensure_run(ctx, phase)
    w = run.w
    states = {}
    bad = []

    def list_facility(fid):
        out, cursor = {}, None
        for _ in range(50):
            q = "?limit=50" + (f"&cursor={cursor}" if cursor else "")
            r = w.api("GET", f"/facilities/{fid}/directives{q}")
            if r.status != 200:
                return None, f"list {fid}: {r.status} {short(r.body, 200)}"
            for d in r.body.get("directives", []):
                out[d["id"]] = d.get("state")
            cursor = r.body.get("next_cursor")
            if not cursor:
                break
        return out, None

    with ThreadPoolExecutor(4) as ex:
        for out, e in ex.map(list_facility, run.fids):
            if e:
                bad.append(e)
            else:
                states.update(out)
    check(not bad, "\n".join(bad[:10]))
    eq(len(states), len(run.created), "directives listed over all facilities")
    not_ok = {d: s for d, s in states.items() if s != "succeeded"}
    check(not not_ok, f"{len(not_ok)} directives not succeeded, e.g. {short(list(not_ok.items())[:8])}")


def check_nothing_left_to_lease(ctx, phase):
    run = _ensure_run(ctx, phase)
    r = expect_status(run.w.poll(run.tids[0], max_claim=5), (200, 429))
    if r.status == 200:
        eq(r.body.get("directives"), [], "a final poll")


def check_all_facilities_unlocked(ctx, phase):
    run = _ensure_run(ctx, phase)
    with ThreadPoolExecutor(4) as ex:
        rows = list(ex.map(run.w.f, run.fids))
    locked = [(r.get("id"), r.get("locked_by_directive_id")) for r in rows
              if r.get("locked_by_directive_id")]
    check(not locked, f"{len(locked)} facilities still locked: {locked[:5]}")


def test_zz_no_5xx_during_the_loads(ctx):
    for phase in ("spread", "hot"):
        _ensure_run(ctx, phase)
    errs = ctx.srv.server_errors
    check(not errs, f"{len(errs)} responses were 5xx:\n" + "\n".join(errs[:20]))


def _make_cases():
    g = globals()
    checks = [(k[len("check_"):], v) for k, v in list(g.items()) if k.startswith("check_")]
    for phase in ("spread", "hot"):
        for name, fn in checks:
            def case(ctx, fn=fn, phase=phase):
                fn(ctx, phase)
            case.__name__ = f"test_{phase}_{name}"
            case.__module__ = __name__
            g[case.__name__] = case
    # keep the final 5xx check last
    g["test_zz_no_5xx_during_the_loads"] = g.pop("test_zz_no_5xx_during_the_loads")


_make_cases()


if __name__ == "__main__":
    run_tap(globals(), setup=setup, teardown=default_teardown)
