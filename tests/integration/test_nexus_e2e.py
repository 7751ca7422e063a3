#!/usr/bin/env python3
"""End-to-end tests of the node daemon: a real `nexusd` against a real `mothership`, both on
loopback (spec nexus §1–§5, §9, §10; DESIGN D11–D16).

Every case builds its own account (admin bootstrap), territory (enrolled from a fresh loopback
source address, see harness.py) and facilities, starts its own nexusd processes with their own
work_dir, and cleans every process and temp dir up, also on failure. Directives use the host
profile (the only driver this build has, DESIGN D12).

Usage: test_nexus_e2e.py <path to mothership> <path to nexusd>     (TAP on stdout, exit 0)
"""
import contextlib
import json
import os
import random
import signal
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import check, eq, expect_status, fail, short  # noqa: E402
from nexus_harness import (GitHttpServer, free_port, git, kill_marked,  # noqa: E402
                           log_text, nx_setup, nx_teardown, pids_with_marker, rss_kib,
                           run_nexusd_cmd, to_yaml, unique, wait_state, wait_until)

# RSS ceiling of nexusd while a directive floods 50 MB of output (case 4). Measured on the
# ASan+UBSan debug build (Debian 12, x86_64): ~25 MiB idle, ~30 MiB peak during the flood.
# The memory of a run is bounded by the logstream outbox (1 MiB) plus one read buffer per
# stream; a daemon that buffered the flood would pass 50 MiB.
RSS_LIMIT_KIB = 64 * 1024


def sleeper(base):
    """A sleep duration string that is unique to this run: it marks the processes of a test."""
    return f"{base}.{random.randrange(10**6):06d}"


def tree_command(dur):
    """Three sleeps, one of them in its own session (escapes a process-group kill)."""
    return f"sh -c 'sleep {dur} & sleep {dur} & setsid sleep {dur} & wait'"


def exact_sleeps(dur):
    return [p for p in pids_with_marker(dur) if p[1] == f"sleep {dur}"]


def host_directive(w, fid, command, **fields):
    """A host directive. One the CommandValidator holds for approval (spec mothership §6.8:
    pipes, `;`, `&`, redirections) is approved by a second user of the account (§6.10)."""
    fields.setdefault("sandbox_profile", "host")
    r = w.create_directive(fid, command, **fields)
    if r.status == 202:
        if not getattr(w, "approver_token", None):
            _, w.approver_token = w.other_user("e2e approver")
        did = r.body["directive_id"]
        expect_status(w.api("POST", f"/facilities/{fid}/directives/{did}/approve",
                            token=w.approver_token), 200, "approve the held directive")
        return did
    expect_status(r, 201, "create directive")
    return r.body["directive_id"]


def new_fixture(ctx):
    w = ctx.world()
    tid = w.territory()
    return w, tid


# ---------------------------------------------------------------------------------------------
# 1. output, exit code and diff through the user API


# spec nexus §12 #30, #34, #37, #111 (poll, started with Bearer, log chunks, finished end to end)
def test_directive_output_exit_code_and_diff_visible_through_user_api(ctx):
    """A repo facility is cloned (smart HTTP, `git clone --depth 1`), the command writes to
    stdout and stderr, changes a tracked file and exits 3: the user API shows both logs, the
    exit code, status failed, and GET .../diff holds the change (spec nexus §5.4, §5.9, §5.12)."""
    w, tid = new_fixture(ctx)
    with contextlib.ExitStack() as st:
        repo = st.enter_context(GitHttpServer({"README.md": "hello\n",
                                               "src/app.txt": "alpha\nv1\nomega\n"},
                                              root=ctx.tmp))
        fid = w.facility(tid, kind="repo", repo_url=repo.url)
        nx = st.enter_context(ctx.nexus(tid))
        nx.start()
        cmd = ("echo to-stdout-1; echo to-stderr-1 >&2; test -f README.md || exit 99; "
               "sed -i 's/^v1$/v2-changed/' src/app.txt; echo to-stdout-2; exit 3")
        did = host_directive(w, fid, cmd, timeout_seconds=60)
        d = wait_state(w, fid, did, timeout=60, nx=nx)
        out = log_text(w, fid, did, "stdout")
        err = log_text(w, fid, did, "stderr")
        check(b"to-stdout-1\n" in out and b"to-stdout-2\n" in out,
              f"stdout log misses the command output: {out!r}")
        check(b"to-stderr-1\n" in err, f"stderr log misses the command output: {err!r}")
        check(b"to-stderr" not in out and b"to-stdout" not in err,
              f"streams mixed up: stdout={out!r} stderr={err!r}")
        eq(d.get("exit_code"), 3, f"exit_code (state {d.get('state')}, stdout {out!r}, "
                                  f"stderr {err!r})")
        eq(d.get("state"), "failed", "state of a command exiting 3")
        r = w.api("GET", f"/facilities/{fid}/directives/{did}/diff")
        expect_status(r, 200, f"GET diff (stderr log {err!r}; {nx.describe()})")
        diff = r.raw.decode("utf-8", "replace")
        check("src/app.txt" in diff and "-v1" in diff and "+v2-changed" in diff,
              f"diff does not show the change of src/app.txt: {diff!r}")
        check("README.md" not in diff, f"diff shows an unchanged file: {diff!r}")
        check(any("upload-pack" in q for q in repo.requests),
              f"the repo server saw no clone: {repo.requests}")
        summ = nx.summary_for(did)
        eq(len(summ), 1, f"stdout summary lines for the directive ({nx.stdout_lines})")
        eq((summ[0].get("exit_code"), summ[0].get("status")), (3, "failed"), "summary line")


# ---------------------------------------------------------------------------------------------
# 2, 3. timeout and cancel end the whole process tree


def _run_tree_and(ctx, w, tid, timeout_seconds, action):
    dur = sleeper("1000")
    fid = w.facility(tid, kind="empty", repo_url=None)
    try:
        with ctx.nexus(tid) as nx:
            nx.start()
            did = host_directive(w, fid, tree_command(dur), timeout_seconds=timeout_seconds)
            seen = wait_until(lambda: len(exact_sleeps(dur)) >= 3 and exact_sleeps(dur),
                              30, interval=0.05, what=f"the three `sleep {dur}` processes "
                                                      f"of the directive")
            t0 = time.monotonic()
            if action:
                action(w, fid, did)
            d = wait_state(w, fid, did, timeout=30, nx=nx)
            took = time.monotonic() - t0
            # give the kernel a moment to finish killing; nothing may survive the run
            deadline = time.monotonic() + 3
            while exact_sleeps(dur) and time.monotonic() < deadline:
                time.sleep(0.1)
            left = pids_with_marker(dur)
            return d, took, seen, left, nx.describe()
    finally:
        kill_marked(dur)


# spec nexus §12 #115, #240
def test_timeout_kills_whole_process_tree(ctx):
    """timeout_seconds 2 on `sh -c 'sleep & sleep & setsid sleep & wait'` → timed_out, exit
    124, and none of the processes (not even the one in its own session) is left
    (spec nexus §5.8, vector 240; §6.0 ADVISED)."""
    w, tid = new_fixture(ctx)
    d, took, seen, left, desc = _run_tree_and(ctx, w, tid, 2, None)
    eq(d.get("state"), "timed_out", f"state ({desc})")
    eq(d.get("exit_code"), 124, "exit_code of a timed-out directive")
    check(not left, f"processes of the timed-out directive survive: {left} "
                    f"(seen while running: {seen})")
    check(took < 20, f"timed_out reported {took:.1f}s after the processes started")


# spec nexus §12 #116, #237
def test_cancel_kills_whole_process_tree(ctx):
    """POST .../cancel while the tree runs → canceled (learned from the directive heartbeat,
    heartbeat.interval 1s) and no process of the tree is left (spec nexus §5.11, vector 237)."""
    w, tid = new_fixture(ctx)

    def cancel(w, fid, did):
        r = w.api("POST", f"/facilities/{fid}/directives/{did}/cancel")
        expect_status(r, 200, "cancel")
        eq(r.body.get("cancel_requested"), True, "cancel_requested")
    d, took, seen, left, desc = _run_tree_and(ctx, w, tid, 120, cancel)
    eq(d.get("state"), "canceled", f"state ({desc})")
    check(not left, f"processes of the canceled directive survive: {left} "
                    f"(seen while running: {seen})")
    check(took < 20, f"canceled reported {took:.1f}s after the cancel request")


# ---------------------------------------------------------------------------------------------
# 4. output flood


def test_output_flood_truncated_at_cap_and_rss_bounded(ctx):
    """50 MB on stdout with log.max_output_bytes 1 MiB: stdout_truncated, the stored log is the
    cap (within one chunk), the directive succeeds, and nexusd's VmRSS (sampled)
    stays under RSS_LIMIT_KIB (spec nexus §5.9; logstream outbox bound). VmRSS is sampled
    every 20 ms (not 100 ms): the flood takes well under a second on this build."""
    cap, chunk = 1048576, 65536
    w, tid = new_fixture(ctx)
    fid = w.facility(tid, kind="empty", repo_url=None)
    with ctx.nexus(tid, {"log": {"max_output_bytes": cap, "chunk_bytes": chunk}}) as nx:
        nx.start()
        time.sleep(0.5)
        idle = rss_kib(nx.pid)
        samples = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                v = rss_kib(nx.pid)
                if v is not None:
                    samples.append(v)
                stop.wait(0.02)
        t = threading.Thread(target=sample, daemon=True)
        t.start()
        try:
            did = host_directive(w, fid, "head -c 52428800 /dev/zero | tr '\\0' 'a'",
                                 timeout_seconds=120)
            d = wait_state(w, fid, did, timeout=120, nx=nx)
        finally:
            stop.set()
            t.join()
        peak = max(samples) if samples else None
        eq(d.get("state"), "succeeded", f"state ({nx.describe()})")
        row = w.d(did)
        check(H.col_true(row.get("stdout_truncated")),
              f"stdout_truncated not set: {short({k: row.get(k) for k in ('stdout_truncated', 'stdout_bytes', 'stderr_bytes')})}")
        out = log_text(w, fid, did, "stdout")
        check(cap - chunk <= len(out) <= cap,
              f"stored stdout is {len(out)} bytes, expected about the cap {cap} "
              f"(at least {cap - chunk})")
        check(set(out) <= {ord("a")}, "stored stdout holds bytes that were not written")
        eq(row.get("stdout_bytes"), len(out), "stdout_bytes vs the stored log")
        check(peak is not None and len(samples) >= 5,
              f"too few RSS samples ({len(samples)}) — the flood ended before it was measured")
        print(f"# flood: nexusd VmRSS idle {idle} KiB, peak {peak} KiB over {len(samples)} "
              f"samples (limit {RSS_LIMIT_KIB} KiB)")
        check(peak < RSS_LIMIT_KIB, f"nexusd VmRSS peaked at {peak} KiB during the flood "
                                    f"(idle {idle} KiB, limit {RSS_LIMIT_KIB} KiB)")


# ---------------------------------------------------------------------------------------------
# 5. crash between "command finished" and "finished acknowledged"


# spec nexus §12 #239 (REF differs: the WAL holds no tokens)
def test_kill9_before_finished_ack_replays_wal_exactly_once(ctx):
    """The mothership is frozen (SIGSTOP) while the command runs, so `finished` hangs; once it
    is in <work_dir>/.nexus/finished.wal nexusd is killed -9, the mothership resumes and nexusd
    restarts: the directive ends failed/3 exactly once (one directive.finished audit event)
    and the WAL is empty afterwards (spec nexus §5.14, vector 239; DESIGN D16)."""
    w, tid = new_fixture(ctx)
    fid = w.facility(tid, kind="empty", repo_url=None)
    flag = os.path.join(ctx.tmp, unique("flag"))
    srv = ctx.srv
    stopped = False
    try:
        with ctx.nexus(tid) as nx:
            nx.start()
            did = host_directive(w, fid, f"echo before-pause; touch {flag}; sleep 2; exit 3",
                                 timeout_seconds=120)
            wait_until(lambda: os.path.exists(flag), 30, interval=0.02,
                       what="the command to start")
            wait_until(lambda: b"before-pause" in log_text(w, fid, did, "stdout"), 5,
                       interval=0.02, what="the first output to be stored")
            os.kill(srv.proc.pid, signal.SIGSTOP)
            stopped = True
            wait_until(lambda: nx.wal_size() > 0, 30, interval=0.05,
                       what=f"finished.wal to hold the report ({nx.describe()})")
            summ = nx.summary_for(did)
            eq([(s.get("status"), s.get("exit_code")) for s in summ], [("failed", 3)],
               "the summary line printed before the report")
            nx.kill9()
            os.kill(srv.proc.pid, signal.SIGCONT)
            stopped = False
            check(nx.wal_size() > 0, "the WAL is empty right after kill -9")
            nx.start()
            d = wait_state(w, fid, did, timeout=60, nx=nx)
            eq((d.get("state"), d.get("exit_code")), ("failed", 3), "final state and exit code")
            wait_until(lambda: nx.wal_size() == 0, 30, interval=0.1,
                       what=f"the WAL to be emptied after the replay ({nx.describe()})")
            evs = srv.admin("audit", "list", "--directive", did).get("events")
            check(isinstance(evs, list), f"audit list: {evs!r}")
            fin = [e for e in evs if e.get("event_type") == "directive.finished"]
            eq(len(fin), 1, f"directive.finished audit events (all: "
                            f"{[e.get('event_type') for e in evs]})")
            check(nx.alive(), f"nexusd died after the replay: {nx.describe()}")
    finally:
        if stopped and srv.proc is not None:
            os.kill(srv.proc.pid, signal.SIGCONT)


# ---------------------------------------------------------------------------------------------
# 6. the mothership goes away during a run


def _fixed_port_server(ctx):
    port = free_port()
    srv = H.Server(ctx.ms_binary, auth="header",
                   extra_args=["--listen", f"127.0.0.1:{port}", "--rate-limits", "off"])
    srv.start()
    check(srv.port == port, f"mothership listens on {srv.port}, asked for {port}")
    return srv


def test_mothership_restart_during_run_result_delivered(ctx):
    """SIGTERM the mothership while `sleep 5; echo done` runs, restart it on the same data dir
    and port: the directive still ends succeeded with its output (spec nexus §4.7, §5.11)."""
    srv = _fixed_port_server(ctx)
    try:
        w = H.World(srv)
        tid = w.territory()
        fid = w.facility(tid, kind="empty", repo_url=None)
        with ctx.nexus(tid, server_url=f"http://127.0.0.1:{srv.port}") as nx:
            nx.start()
            did = host_directive(w, fid, "sleep 5; echo done", timeout_seconds=120)
            wait_state(w, fid, did, states=("running",), timeout=30, nx=nx)
            t0 = time.monotonic()
            srv.stop()
            srv.start()
            down = time.monotonic() - t0
            check(down < 4.5, f"the mothership restart took {down:.1f}s: the test needs the "
                              f"output to be produced after it is back")
            d = wait_state(w, fid, did, timeout=60, nx=nx)
            eq((d.get("state"), d.get("exit_code")), ("succeeded", 0), f"result ({nx.describe()})")
            eq(log_text(w, fid, did, "stdout"), b"done\n", "stdout log")
            eq(nx.wal_size(), 0, "WAL size after delivery")
    finally:
        srv.kill9()
        srv.cleanup()


# spec nexus §12 #236
def test_finished_retried_until_mothership_returns(ctx):
    """The mothership is stopped before the command ends: `finished` fails (connection
    refused) and is retried (spec nexus §4.7: up to 5 attempts, 2/4/8/16 s); the server comes
    back ~1 s after the command ended and gets the result without restarting nexusd."""
    srv = _fixed_port_server(ctx)
    try:
        w = H.World(srv)
        tid = w.territory()
        fid = w.facility(tid, kind="empty", repo_url=None)
        with ctx.nexus(tid, server_url=f"http://127.0.0.1:{srv.port}") as nx:
            nx.start()
            did = host_directive(w, fid, "echo early; sleep 1; exit 4", timeout_seconds=120)
            wait_until(lambda: b"early" in log_text(w, fid, did, "stdout"), 30, interval=0.05,
                       what="the first output")
            srv.stop()
            wait_until(lambda: nx.summary_for(did), 20, interval=0.05,
                       what=f"the command to finish ({nx.describe()})")
            # the summary line is printed just before the report is written to the WAL
            wait_until(lambda: nx.wal_size() > 0, 10, interval=0.05,
                       what="finished in the WAL while the server is down")
            time.sleep(1.0)
            srv.start()
            d = wait_state(w, fid, did, timeout=45, nx=nx)
            eq((d.get("state"), d.get("exit_code")), ("failed", 4), f"result ({nx.describe()})")
            wait_until(lambda: nx.wal_size() == 0, 10, what="the WAL to be emptied")
    finally:
        srv.kill9()
        srv.cleanup()


# ---------------------------------------------------------------------------------------------
# 7. many directives, two daemons


N_MANY = 100
FAC_PER_TERRITORY = 10


def test_100_directives_two_daemons_each_run_exactly_once(ctx):
    """2 territories × 10 facilities × 5 directives, 2 daemons with 4 workers each: every
    command runs exactly once (it appends its own token to a shared file), every directive
    succeeds, and no two directives of a facility ever overlap (a mkdir lock per facility
    in the command records any overlap) (spec nexus §4.5; mothership facility lock)."""
    w = ctx.world()
    tids = [w.territory(), w.territory()]
    base = os.path.join(ctx.tmp, unique("many"))
    os.makedirs(os.path.join(base, "locks"))
    ran = os.path.join(base, "ran.log")
    overlap = os.path.join(base, "overlap.log")
    facs = [(tid, w.facility(tid, kind="empty", repo_url=None))
            for tid in tids for _ in range(FAC_PER_TERRITORY)]
    expected = {}
    with contextlib.ExitStack() as st:
        nxs = [st.enter_context(ctx.nexus(tid, {"poll": {"max_directives_to_claim": 4,
                                                          "wait_seconds": 10},
                                                 "heartbeat": {"interval": "10s"}}))
               for tid in tids]
        for i in range(N_MANY):
            tid, fid = facs[i % len(facs)]
            tok = f"tok-{i:03d}-{uuid.uuid4().hex[:8]}"
            lock = os.path.join(base, "locks", fid)
            cmd = (f"mkdir {lock} 2>/dev/null || echo {tok} >> {overlap}; "
                   f"echo {tok} >> {ran}; sleep 0.05; rmdir {lock} 2>/dev/null; true")
            did = host_directive(w, fid, cmd, timeout_seconds=120)
            expected[did] = (fid, tok)
        t0 = time.monotonic()
        for nx in nxs:
            nx.start()

        def all_done():
            with open(ran) if os.path.exists(ran) else open(os.devnull) as f:
                n = len(f.read().split())
            return n >= N_MANY
        try:
            wait_until(all_done, 180, interval=0.5, what="100 commands to run")
        except H.Failure as e:
            n = len(open(ran).read().split()) if os.path.exists(ran) else 0
            fail(f"{e}; {n} ran; daemon 1: {nxs[0].describe()}\ndaemon 2: {nxs[1].describe()}")
        states = {}
        deadline = time.monotonic() + 60
        pending = set(expected)
        while pending and time.monotonic() < deadline:
            for did in list(pending):
                fid, _ = expected[did]
                d = w.api("GET", f"/facilities/{fid}/directives/{did}").body
                if d.get("state") in ("succeeded", "failed", "canceled", "timed_out"):
                    states[did] = d.get("state")
                    pending.discard(did)
            if pending:
                time.sleep(0.5)
        took = time.monotonic() - t0
        print(f"# {N_MANY} directives on 2 daemons: all terminal after {took:.1f}s")
        lines = open(ran).read().split()
        counts = {}
        for tok in lines:
            counts[tok] = counts.get(tok, 0) + 1
        toks = {tok for _, tok in expected.values()}
        missing = sorted(toks - set(counts))
        dup = sorted(t for t, c in counts.items() if c > 1)
        foreign = sorted(set(counts) - toks)
        check(not missing and not dup and not foreign,
              f"ran.log: missing {missing[:10]}, duplicated {dup[:10]}, unknown {foreign[:10]}")
        check(not pending, f"{len(pending)} directives not terminal after {took:.0f}s")
        bad = {did: s for did, s in states.items() if s != "succeeded"}
        check(not bad, f"directives not succeeded: {list(bad.items())[:10]}")
        ov = open(overlap).read().split() if os.path.exists(overlap) else []
        check(not ov, f"directives of one facility overlapped: {ov[:10]}")
        per = [len(nx.summaries()) for nx in nxs]
        eq(sum(per), N_MANY, f"summary lines of the two daemons ({per})")
        check(all(p > 0 for p in per), f"one daemon ran nothing: {per}")


# ---------------------------------------------------------------------------------------------
# 8. hostile repository


HOSTILE_KINDS = ("fsmonitor", "diffext", "textconv", "clean", "smudge", "process", "pager",
                 "hook-post-checkout", "hook-post-merge", "hook-post-index-change",
                 "hook-reference-transaction", "askpass")


def _hostile_setup(root):
    """Scripts outside the facility that drop PWNED.<kind> markers next to themselves when
    anything runs them on the host; in git's jail these host paths do not exist."""
    mdir = os.path.join(root, unique("pwn"))
    os.makedirs(os.path.join(mdir, "hooks"))

    def script(path, kind, body=""):
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\ntouch {mdir}/PWNED.{kind}\n{body}")
        os.chmod(path, 0o755)
    for kind in ("fsmonitor", "diffext", "pager", "process", "askpass"):
        script(os.path.join(mdir, f"{kind}.sh"), kind, "exit 0\n")
    script(os.path.join(mdir, "textconv.sh"), "textconv", 'cat "$1"\n')
    script(os.path.join(mdir, "clean.sh"), "clean", "cat\n")
    script(os.path.join(mdir, "smudge.sh"), "smudge", "cat\n")
    for hook in ("post-checkout", "post-merge", "post-index-change", "reference-transaction",
                 "pre-commit", "post-commit"):
        script(os.path.join(mdir, "hooks", hook), f"hook-{hook}", "exit 0\n")
    config = (f"[core]\n\tfsmonitor = {mdir}/fsmonitor.sh\n\thooksPath = {mdir}/hooks\n"
              f"\tpager = {mdir}/pager.sh\n\taskPass = {mdir}/askpass.sh\n"
              f"[diff]\n\texternal = {mdir}/diffext.sh\n"
              f"[diff \"evil\"]\n\ttextconv = {mdir}/textconv.sh\n"
              f"[filter \"evil\"]\n\tclean = {mdir}/clean.sh\n\tsmudge = {mdir}/smudge.sh\n"
              f"[pager]\n\tdiff = {mdir}/pager.sh\n")
    with open(os.path.join(mdir, "config-extra"), "w") as f:
        f.write(config)
    # the daemon's own HOME and XDG config carry the same config: a git that read them
    # would run the hooks (post-checkout) during the clone
    home = os.path.join(mdir, "home")
    os.makedirs(os.path.join(home, ".config", "git"))
    for p in (os.path.join(home, ".gitconfig"), os.path.join(home, ".config", "git", "config")):
        with open(p, "w") as f:
            f.write(config)
    return mdir, home


def _markers(mdir):
    return sorted(n for n in os.listdir(mdir) if n.startswith("PWNED."))


# spec nexus §12 #241
def test_malicious_repo_runs_nothing_on_host_during_clone_or_diff(ctx):
    """Hostile git configuration (core.fsmonitor, core.hooksPath, diff.external, textconv,
    clean/smudge filters via .gitattributes, pager, hooks) in the daemon's HOME/XDG config
    during the clone, then planted in the facility's .git/config and .git/hooks by a first
    directive before two diff collections: nothing runs on the host (DESIGN D15; spec nexus
    §5.12 ADVISED, Appendix B). A final control runs the host's git on the same facility and
    must trigger markers, proving the planted config is live."""
    w, tid = new_fixture(ctx)
    mdir, home = _hostile_setup(ctx.tmp)
    with contextlib.ExitStack() as st:
        repo = st.enter_context(GitHttpServer({"app.txt": "one\ntwo\n",
                                               ".gitattributes": "* filter=evil diff=evil\n"},
                                              root=ctx.tmp))
        fid = w.facility(tid, kind="repo", repo_url=repo.url)
        nx = st.enter_context(ctx.nexus(tid, env={"HOME": home,
                                                  "XDG_CONFIG_HOME": os.path.join(home, ".config"),
                                                  "GIT_CONFIG_GLOBAL": os.path.join(home, ".gitconfig")}))
        nx.start()
        plant = (f"test -d .git || exit 90; cat {mdir}/config-extra >> .git/config && "
                 f"cp {mdir}/hooks/* .git/hooks/ && chmod +x .git/hooks/* && "
                 f"echo planted-by-first >> app.txt")
        d1 = host_directive(w, fid, plant, timeout_seconds=60)
        r1 = wait_state(w, fid, d1, timeout=60, nx=nx)
        eq(r1.get("state"), "succeeded",
           f"planting directive (stderr {log_text(w, fid, d1, 'stderr')!r}; {nx.describe()})")
        after_first = _markers(mdir)
        d2 = host_directive(w, fid, "echo changed-by-second >> app.txt", timeout_seconds=60)
        r2 = wait_state(w, fid, d2, timeout=60, nx=nx)
        eq(r2.get("state"), "succeeded", f"second directive ({nx.describe()})")
        after_second = _markers(mdir)
        check(not after_first and not after_second,
              f"repository-controlled code ran on the host: markers after the clone and "
              f"first diff {after_first}, after the second diff {after_second}")
        r = w.api("GET", f"/facilities/{fid}/directives/{d2}/diff")
        diff = r.raw.decode("utf-8", "replace") if r.status == 200 else ""
        check(r.status == 200 and "+changed-by-second" in diff,
              f"the hostile config broke diff collection: HTTP {r.status} {diff[:300]!r}; "
              f"{nx.describe()}")
        # control: the host's git on the same facility does run the planted config
        fac = nx.facility_path(fid)
        git("-c", "safe.directory=*", "diff", "HEAD", cwd=fac, check_rc=False)
        live = _markers(mdir)
        check(live, "control failed: the host's git ran none of the planted config, so this "
                    "test proves nothing (check the hostile config)")
        # control: a clone by the host's git with the daemon's HOME runs the hooks/filters
        for n in live:
            os.unlink(os.path.join(mdir, n))
        git("clone", "-q", "--depth", "1", repo.url, os.path.join(mdir, "control-clone"),
            env={"HOME": home, "GIT_CONFIG_GLOBAL": os.path.join(home, ".gitconfig")},
            check_rc=False)
        live_clone = _markers(mdir)
        print(f"# hostile-config controls on the host: diff ran {live}, clone ran {live_clone}")
        check(live_clone, "control failed: a host clone with the daemon's HOME ran nothing, so "
                          "the clone half of this test proves nothing")


# ---------------------------------------------------------------------------------------------
# 9. bad config files


def _bad_config(ctx, name, body, want_in_msg, want_line=None):
    d = os.path.join(ctx.tmp, unique("badcfg"))
    os.makedirs(d)
    path = os.path.join(d, f"{name}.yaml")
    with open(path, "w") as f:
        f.write(body.replace("@WORK@", os.path.join(d, "work")))
    rc, out, err = run_nexusd_cmd(ctx.nx_binary, ["run", "-c", path], timeout=30)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    check(rc != 0, f"nexusd run with {name} exited 0")
    check(lines, f"nothing on stderr for {name} config (rc {rc})")
    msg = lines[0]
    check(path in msg, f"the message does not name the file {path}: {msg!r}")
    for s in want_in_msg:
        check(s in msg, f"the message does not mention {s!r}: {msg!r}")
    if want_line is not None:
        check(f"{path}:{want_line}" in msg, f"the message does not name line {want_line} as "
                                            f"{path}:{want_line}: {msg!r}")
    check(not os.path.exists(os.path.join(d, "work", ".nexus")),
          "a rejected config still created the WAL directory")
    # last, so that a failure here means every other property held
    eq(len(lines), 1, f"stderr lines for {name} config (rc {rc}): {lines}")


CFG_HEAD = ('server_url: "http://127.0.0.1:9"\n'
            'territory_id: "01234567-89ab-7def-8123-456789abcdef"\n'
            'work_dir: "@WORK@"\n'
            'supported_sandbox_profiles: [host]\n')


def test_bad_config_unknown_key_one_line(ctx):
    """An unknown key is an error naming file, line and key (config.h; spec §2 ADVISED)."""
    _bad_config(ctx, "unknown_key", CFG_HEAD + "poll:\n  wait_seconds: 2\n  bogus_knob: 1\n",
                ["bogus_knob"], want_line=7)


def test_bad_config_wrong_type_one_line(ctx):
    _bad_config(ctx, "wrong_type", CFG_HEAD + "poll:\n  max_directives_to_claim: lots\n",
                ["max_directives_to_claim"], want_line=6)


def test_bad_config_bad_duration_one_line(ctx):
    _bad_config(ctx, "bad_duration", CFG_HEAD + "heartbeat:\n  interval: \"10 parsecs\"\n",
                ["heartbeat.interval"], want_line=6)


# spec nexus §12 #7
def test_bad_config_claim_zero_one_line(ctx):
    """Vector 7: max_directives_to_claim 0 fails naming the key."""
    _bad_config(ctx, "claim_zero", CFG_HEAD + "poll:\n  max_directives_to_claim: 0\n",
                ["max_directives_to_claim"], want_line=6)


def test_bad_config_empty_profiles_one_line(ctx):
    body = CFG_HEAD.replace("supported_sandbox_profiles: [host]\n", "") + \
        "log:\n  chunk_bytes: 4096\nsupported_sandbox_profiles: []\n"
    _bad_config(ctx, "empty_profiles", body, ["supported_sandbox_profiles"], want_line=6)


# spec nexus §12 #5
def test_bad_config_malformed_yaml_one_line(ctx):
    """Vector 5: malformed YAML (a key indented out of its block) fails; the message names
    the file and the line."""
    _bad_config(ctx, "malformed", CFG_HEAD + "poll:\n  wait_seconds: 2\n key: [unclosed\n",
                [], want_line=7)


# ---------------------------------------------------------------------------------------------
# 10. doctor and version


def _doctor_config(ctx, server_url, tid):
    d = os.path.join(ctx.tmp, unique("doctor"))
    os.makedirs(d)
    path = os.path.join(d, "nexus.yaml")
    with open(path, "w") as f:
        f.write(to_yaml({"server_url": server_url, "territory_id": tid,
                         "work_dir": os.path.join(d, "work"),
                         "supported_sandbox_profiles": ["host"]}) + "\n")
    return path


# spec nexus §12 #227 (a failing check fails the summary)
def test_doctor_fails_when_control_plane_down(ctx):
    """Doctor with the server unreachable: non-zero exit and a failed `control plane` check
    (spec §10; ADVISED doctor exit status)."""
    path = _doctor_config(ctx, f"http://127.0.0.1:{free_port()}", str(uuid.uuid4()))
    rc, out, err = run_nexusd_cmd(ctx.nx_binary, ["doctor", "-c", path], timeout=60)
    check(rc != 0, f"doctor exited 0 with the control plane down:\n{out}")
    failed = [ln for ln in out.splitlines() if "\u2717" in ln]
    check(any("control plane" in ln for ln in failed),
          f"no failed `control plane` check in the report:\n{out}")


def test_doctor_passes_when_all_fine(ctx):
    w, tid = new_fixture(ctx)
    path = _doctor_config(ctx, ctx.server_url, tid)
    rc, out, err = run_nexusd_cmd(ctx.nx_binary, ["doctor", "-c", path], timeout=60)
    failed = [ln for ln in out.splitlines() if "\u2717" in ln]
    eq(rc, 0, f"doctor exit status (failed checks {failed}):\n{out}\n{err}")
    check(not failed, f"failed checks: {failed}")
    check("control plane" in out, f"no control plane check:\n{out}")


# spec nexus §12 #223 (REF differs: we print `nexusd <version> (commit=...)` to stdout, without date=)
def test_version_prints_to_stdout(ctx):
    """`nexusd version` prints `nexusd <version> (commit=...)` on stdout (spec §1.2 ADVISED)."""
    rc, out, err = run_nexusd_cmd(ctx.nx_binary, ["version"])
    eq(rc, 0, "exit status")
    lines = out.splitlines()
    eq(len(lines), 1, f"stdout lines: {out!r}")
    check(lines[0].startswith("nexusd ") and "commit=" in lines[0], f"version line {out!r}")
    eq(err.strip(), "", "stderr of version")


# ---------------------------------------------------------------------------------------------
# 11. graceful shutdown


# spec nexus §12 #246 (first SIGTERM path only)
def test_sigterm_cancels_running_directive_and_exits_0(ctx):
    """SIGTERM with a `sleep 30` directive running and shutdown_timeout 2s: nexusd exits 0
    within 15 s, the directive is reported canceled before it exits, and no process of it is
    left (spec nexus §1.5 ADVISED)."""
    w, tid = new_fixture(ctx)
    fid = w.facility(tid, kind="empty", repo_url=None)
    dur = sleeper("30")
    try:
        with ctx.nexus(tid, {"shutdown_timeout": "2s"}) as nx:
            nx.start()
            did = host_directive(w, fid, f"sleep {dur}", timeout_seconds=120)
            wait_until(lambda: exact_sleeps(dur), 30, interval=0.05,
                       what="the directive's sleep to run")
            wait_state(w, fid, did, states=("running",), timeout=10, nx=nx)
            t0 = time.monotonic()
            rc = nx.stop(timeout=30)
            took = time.monotonic() - t0
            check(rc is not None, f"nexusd did not exit within 30 s of SIGTERM: {nx.describe()}")
            check(took < 15, f"nexusd took {took:.1f}s to exit after SIGTERM")
            eq(rc, 0, f"exit status after SIGTERM ({nx.describe()})")
            d = dstate_now(w, fid, did)
            eq(d.get("state"), "canceled", f"directive state when nexusd has exited "
                                           f"({nx.describe()})")
            time.sleep(0.3)
            left = pids_with_marker(dur)
            check(not left, f"processes of the directive survive the daemon: {left}")
            eq(nx.wal_size(), 0, "WAL size after a graceful shutdown")
    finally:
        kill_marked(dur)


def dstate_now(w, fid, did):
    r = w.api("GET", f"/facilities/{fid}/directives/{did}")
    expect_status(r, 200, "show directive")
    return r.body


# ---------------------------------------------------------------------------------------------
# 12. observability


# spec nexus §12 #79, #80, #83 (REF differs: listener on loopback)
def test_obs_healthz_readyz_metrics(ctx):
    """Loopback listener: /healthz 200 `ok`, /readyz 200 once a poll succeeded, /metrics has
    nexusd_poll_total (spec nexus §9; vectors 79, 80, 83)."""
    w, tid = new_fixture(ctx)
    with ctx.nexus(tid, {"observability": {"enabled": True}}) as nx:
        nx.start()
        r = wait_until(lambda: (lambda x: x if x.status == 200 else None)(nx.obs_get("/readyz")),
                       20, interval=0.2, what=f"/readyz 200 ({nx.describe()})")
        h = nx.obs_get("/healthz")
        eq(h.status, 200, "/healthz status")
        eq(h.raw.strip(), b"ok", "/healthz body")
        m = nx.obs_get("/metrics")
        eq(m.status, 200, "/metrics status")
        text = m.raw.decode("utf-8", "replace")
        check("nexusd_poll_total" in text, f"/metrics lacks nexusd_poll_total:\n{text[:1500]}")
        check("nexusd_directives_in_flight" in text and "nexusd_poll_errors_total" in text,
              f"/metrics lacks the always-present families:\n{text[:1500]}")
        check(r.raw.strip() != b"", "/readyz body is empty")


# spec nexus §12 #81
def test_obs_readyz_503_when_control_plane_unreachable(ctx):
    """Never a successful poll (server_url on a closed port): /readyz 503, /healthz 200
    (vector 81)."""
    tid = str(uuid.uuid4())
    with ctx.nexus(tid, {"observability": {"enabled": True}},
                   server_url=f"http://127.0.0.1:{free_port()}") as nx:
        nx.start()
        wait_until(lambda: nx.obs_get("/healthz").status == 200, 20, interval=0.2,
                   what="/healthz to answer")
        time.sleep(1.5)   # at least one failed poll
        r = nx.obs_get("/readyz")
        eq(r.status, 503, f"/readyz without a successful poll ({r.raw!r})")
        m = nx.obs_get("/metrics").raw.decode("utf-8", "replace")
        check("nexusd_poll_errors_total" in m, "metrics lack nexusd_poll_errors_total")


# ---------------------------------------------------------------------------------------------
# enrollment


# spec nexus §12 #32, #213
def test_enroll_writes_credentials_used_by_run(ctx):
    """`nexusd enroll -c FILE --token T` stores the territory id in
    <work_dir>/.nexus/credentials.json (0600); `nexusd run` with no territory_id in the config
    uses it and runs a directive of that territory (spec nexus §3)."""
    w = ctx.world()
    tok = w.new_enroll_token()["enroll_token"]
    with ctx.nexus(None) as nx:
        rc, out, err = run_nexusd_cmd(ctx.nx_binary, ["enroll", "-c", nx.config_path,
                                                      "--token", tok], timeout=60)
        eq(rc, 0, f"enroll exit status (stderr {err!r})")
        body = json.loads(out.strip().splitlines()[-1])
        tid = body.get("territory_id")
        check(H.is_uuid(tid), f"enroll stdout has no territory_id: {out!r}")
        cred = os.path.join(nx.work_dir, ".nexus", "credentials.json")
        st = os.stat(cred)
        eq(st.st_mode & 0o777, 0o600, "credentials.json mode")
        eq(json.load(open(cred)).get("territory_id"), tid, "territory_id in credentials.json")
        fid = w.facility(tid, kind="empty", repo_url=None)
        nx.start()
        did = host_directive(w, fid, "echo enrolled-run", timeout_seconds=60)
        d = wait_state(w, fid, did, timeout=60, nx=nx)
        eq(d.get("state"), "succeeded", f"directive of the enrolled territory ({nx.describe()})")
        eq(log_text(w, fid, did, "stdout"), b"enrolled-run\n", "stdout log")


# ---------------------------------------------------------------------------------------------
# untrusted profile (issue #6: bwrap + seccomp + Landlock + cgroup + egress proxy)


SANDBOX_UID = 65100   # bwrap.sandbox_uid default: the host uid of the sandbox when nexusd is root


def _untrusted_nexus(ctx, tid, overrides=None):
    """A nexusd offering host and untrusted. The harness's temp dirs are 0700; the sandbox
    (host uid SANDBOX_UID) must be able to traverse to the facilities, as on a real
    deployment where work_dir sits under /var/lib."""
    os.chmod(ctx.tmp, 0o711)
    cfg = {"supported_sandbox_profiles": ["host", "untrusted"]}
    nx = ctx.nexus(tid, overrides=H_merge(cfg, overrides or {}))
    os.chmod(nx.dir, 0o711)
    return nx


def H_merge(a, b):
    out = dict(a)
    for k, v in b.items():
        out[k] = H_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def untrusted_directive(w, fid, command, **fields):
    fields.setdefault("sandbox_profile", "untrusted")
    return w.directive(fid, command, **fields)


def _untrusted_run(ctx, command, overrides=None, inspect=None, **fields):
    """Runs one untrusted directive on a fresh territory; returns (world, facility id,
    directive id, directive, stdout, stderr, facility path, nexus description). inspect(path)
    is called while the facility still exists."""
    w, tid = new_fixture(ctx)
    fid = w.facility(tid, kind="empty", repo_url=None)
    with _untrusted_nexus(ctx, tid, overrides) as nx:
        nx.start()
        fields.setdefault("timeout_seconds", 60)
        did = untrusted_directive(w, fid, command, **fields)
        d = wait_state(w, fid, did, timeout=90, nx=nx)
        out = log_text(w, fid, did, "stdout")
        err = log_text(w, fid, did, "stderr")
        if inspect:
            inspect(nx.facility_path(fid), d, err, nx.describe())
        return w, fid, did, d, out, err, nx.facility_path(fid), nx.describe()


# spec nexus §12 #139
def test_untrusted_echo_succeeds(ctx):
    """profile untrusted: `echo hello-from-bwrap` → succeeded, exit 0, the output uploaded;
    the started report names the bwrap driver (spec nexus §6.2; DESIGN D13)."""
    w, fid, did, d, out, err, fac, desc = _untrusted_run(ctx, "echo hello-from-bwrap; id -u")
    eq(d.get("state"), "succeeded", f"state (stderr {err!r}; {desc})")
    eq(d.get("exit_code"), 0, "exit code")
    eq(out, b"hello-from-bwrap\n1000\n", "stdout log (uid inside is 1000)")
    check(str(d.get("sandbox_version") or "").startswith("nexusd-bwrap/"),
          f"started did not name the bwrap driver: sandbox_version {d.get('sandbox_version')!r}")


# spec nexus §12 #140 (no ping in /usr/bin here: a direct TCP connect and a DNS lookup)
def test_untrusted_no_network_without_proxy_and_no_hang(ctx):
    """Direct TCP to a public address and a DNS lookup fail at once inside the sandbox (empty
    network namespace, Landlock connect rule); the command completes with its output."""
    cmd = ("python3 -c 'import socket; socket.create_connection((\"1.1.1.1\", 80), 3)' "
           "2>/dev/null; echo tcp=$?; getent hosts example.com; echo dns=$?; echo done")
    w, fid, did, d, out, err, fac, desc = _untrusted_run(ctx, cmd, timeout_seconds=30)
    eq(d.get("state"), "succeeded", f"state (stdout {out!r} stderr {err!r}; {desc})")
    check(b"tcp=1" in out and b"dns=2" in out and b"done" in out,
          f"network reachable or the command hung: {out!r}")


# spec nexus §12 #141
def test_untrusted_workspace_write_visible_on_host(ctx):
    """A file written to /workspace is in the host facility with identical content, owned by
    the sandbox's host uid (never root) (bwrap.h "Identity")."""
    def inspect(fac, d, err, desc):
        eq(d.get("state"), "succeeded", f"state (stderr {err!r}; {desc})")
        path = os.path.join(fac, "test.txt")
        with open(path, "rb") as f:
            eq(f.read(), b"sandbox wrote this", "content on the host")
        st = os.stat(path)
        check(st.st_uid != 0, "the sandbox wrote a root-owned file on the host")
        if os.geteuid() == 0:
            eq(st.st_uid, SANDBOX_UID, "owner of the file on the host")
    _untrusted_run(ctx, "printf 'sandbox wrote this' > /workspace/test.txt", inspect=inspect)


# spec nexus §12 #142
def test_untrusted_root_is_read_only(ctx):
    """`touch /testfile` fails (read-only root) and nothing appears on the host (the file name
    is unique to this run, so that no other process on the host can decide the check)."""
    name = "/" + unique("testfile")
    w, fid, did, d, out, err, fac, desc = _untrusted_run(ctx, f"touch {name}")
    eq(d.get("state"), "failed", f"state (stderr {err!r}; {desc})")
    check(b"Read-only file system" in err or b"Permission denied" in err,
          f"stderr does not say why: {err!r}")
    check(not os.path.exists(name), f"{name} exists on the host")


# spec nexus §12 #240
def test_untrusted_timeout_is_timed_out_124(ctx):
    """timeout_seconds 1 on `sleep 10` → timed_out with exit 124, well before 10 s."""
    t0 = time.monotonic()
    w, fid, did, d, out, err, fac, desc = _untrusted_run(ctx, "sleep 10", timeout_seconds=1)
    took = time.monotonic() - t0
    eq((d.get("state"), d.get("exit_code")), ("timed_out", 124), f"state/exit ({desc})")
    check(took < 9, f"the timeout did not stop the sandbox ({took:.1f}s)")


def test_untrusted_memory_hog_killed_and_reported(ctx):
    """limits.memory_mb 32 and `tail /dev/zero` (grows without bound): the cgroup OOM-kills
    it; the directive is failed and the stderr log says out of memory (issue #6 item 1)."""
    w, fid, did, d, out, err, fac, desc = _untrusted_run(ctx, "tail /dev/zero",
                                                          limits={"memory_mb": 32})
    eq(d.get("state"), "failed", f"state (stderr {err!r}; {desc})")
    check(b"out of memory" in err, f"no OOM reason in the stderr log: {err!r}")


def test_untrusted_fork_bomb_stopped_by_pids_limit(ctx):
    """bwrap.pids_limit 32 and a shell starting 100 background sleeps: forking fails past the
    limit, the shell gives up, the run ends failed (issue #6: pids limit)."""
    cmd = "i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done; echo all-started"
    w, fid, did, d, out, err, fac, desc = _untrusted_run(ctx, cmd,
                                                          overrides={"bwrap": {"pids_limit": 32}},
                                                          timeout_seconds=60)
    eq(d.get("state"), "failed", f"state (stdout {out!r} stderr {err!r}; {desc})")
    check(b"all-started" not in out, f"100 processes started under pids.max 32: {out!r}")
    check(b"fork" in err, f"stderr does not show the failed fork: {err!r}")


def test_untrusted_egress_denied_and_audited(ctx):
    """Net capability mode none: curl through the proxy is refused (403) and the decision is
    one audit record, readable through GET .../egress_events (D14)."""
    cmd = "curl -sS -o /dev/null -w 'code=%{http_code}\\n' https://example.com/; echo rc=$?"
    w, fid, did, d, out, err, fac, desc = _untrusted_run(
        ctx, cmd, capabilities={"net": {"mode": "none"}})
    eq(d.get("state"), "succeeded", f"state (stdout {out!r} stderr {err!r}; {desc})")
    check(b"rc=56" in out, f"curl was not refused by the proxy: {out!r} {err!r}")
    r = w.api("GET", f"/facilities/{fid}/directives/{did}/egress_events")
    expect_status(r, 200, "GET egress_events")
    evs = r.body.get("egress_events") or []
    dec = [e for e in evs if e.get("dest_host") == "example.com"]
    # The mothership (its policy merge) currently leases "net": {} for mode none; the proxy
    # reads a capability without a mode as unknown and refuses with INTERNAL_ERROR (fail
    # closed, spec nexus §7.6). Either reason is a refusal by policy, never a dial.
    check(dec and dec[0].get("decision") == "deny"
          and dec[0].get("reason_code") in ("NET_MODE_NONE", "INTERNAL_ERROR")
          and dec[0].get("dest_port") == 443, f"no deny record for example.com:443: {evs}")
    eq(len(dec), 1, f"one audit record per decision: {evs}")


def test_untrusted_clone_runs_inside_the_sandbox_through_the_proxy(ctx):
    """A repo facility: the clone is done by git INSIDE the sandbox, through the proxy (D15).
    The git server is on loopback, which the proxy never dials (private address), so the
    clone fails closed: the directive fails with git's status, the user command never runs,
    the audit shows the refused destination, and the repo server saw no request."""
    w, tid = new_fixture(ctx)
    with contextlib.ExitStack() as st:
        repo = st.enter_context(GitHttpServer({"README.md": "hello\n"}, root=ctx.tmp))
        fid = w.facility(tid, kind="repo", repo_url=repo.url)
        nx = st.enter_context(_untrusted_nexus(ctx, tid))
        nx.start()
        did = untrusted_directive(w, fid, "echo command-ran", timeout_seconds=60,
                                  capabilities={"net": {"mode": "unrestricted"}})
        d = wait_state(w, fid, did, timeout=90, nx=nx)
        out = log_text(w, fid, did, "stdout")
        err = log_text(w, fid, did, "stderr")
        eq(d.get("state"), "failed", f"state (stdout {out!r} stderr {err!r}; {nx.describe()})")
        check(b"[prepare]" in err and b"clon" in err, f"no in-sandbox clone in stderr: {err!r}")
        check(b"command-ran" not in out, "the user command ran after a failed clone")
        eq(repo.requests, [], "the loopback git server was reached from the sandbox")
        r = w.api("GET", f"/facilities/{fid}/directives/{did}/egress_events")
        expect_status(r, 200, "GET egress_events")
        evs = r.body.get("egress_events") or []
        check(any(e.get("decision") == "deny" and e.get("dest_port") == repo.port
                  for e in evs), f"no deny record for the git server: {evs}")


def test_untrusted_diff_of_host_repository(ctx):
    """A facility that already holds a git repository (prepared on the host, root-owned) is
    handed to the sandbox uid; the command changes a tracked file; the diff is collected (in
    the directive's own sandbox stack, no network, D15) and visible through the user API."""
    w, tid = new_fixture(ctx)
    with contextlib.ExitStack() as st:
        repo = st.enter_context(GitHttpServer({"app.txt": "alpha\nv1\n"}, root=ctx.tmp))
        fid = w.facility(tid, kind="repo", repo_url=repo.url)
        nx = st.enter_context(_untrusted_nexus(ctx, tid))
        fac = nx.facility_path(fid)
        os.makedirs(os.path.dirname(fac), exist_ok=True)
        git("clone", "-q", repo.url, fac)
        nx.start()
        did = untrusted_directive(w, fid, "sed -i 's/^v1$/v2-sandbox/' app.txt",
                                  timeout_seconds=60)
        d = wait_state(w, fid, did, timeout=90, nx=nx)
        err = log_text(w, fid, did, "stderr")
        eq(d.get("state"), "succeeded", f"state (stderr {err!r}; {nx.describe()})")
        r = w.api("GET", f"/facilities/{fid}/directives/{did}/diff")
        expect_status(r, 200, f"GET diff ({nx.describe()})")
        diff = r.raw.decode("utf-8", "replace")
        check("-v1" in diff and "+v2-sandbox" in diff, f"diff misses the change: {diff!r}")


def test_untrusted_unavailable_is_never_run_as_host(ctx):
    """bwrap missing on the territory: untrusted is not advertised (D12: configured ∩
    available), so the untrusted directive is never leased to it and never runs on the host,
    while a host directive created after it runs."""
    w, tid = new_fixture(ctx)
    fid = w.facility(tid, kind="empty", repo_url=None)
    marker = os.path.join(ctx.tmp, unique("ran-as-host"))
    with _untrusted_nexus(ctx, tid, {"bwrap": {"bwrap_path": "/nonexistent/bwrap"}}) as nx:
        nx.start()
        wait_until(lambda: "untrusted profile unavailable" in nx.stderr_text(), 30,
                   what="nexusd to log that untrusted is unavailable")
        bad = untrusted_directive(w, fid, f"touch {marker}", timeout_seconds=30)
        fid2 = w.facility(tid, kind="empty", repo_url=None)
        ok = host_directive(w, fid2, "echo host-ran", timeout_seconds=30)
        d = wait_state(w, fid2, ok, timeout=60, nx=nx)
        eq(d.get("state"), "succeeded", f"the host directive ({nx.describe()})")
        time.sleep(2)   # a few more polls
        b = w.api("GET", f"/facilities/{fid}/directives/{bad}").body
        check(b.get("state") not in ("leased", "running", "succeeded", "failed"),
              f"the untrusted directive was taken by a territory without bwrap: {b}")
        check(not os.path.exists(marker), "the untrusted command ran on the host")


if __name__ == "__main__":
    H.run_tap(globals(), setup=nx_setup, teardown=nx_teardown,
              teardown_name="mothership_exits_0_on_sigterm")
