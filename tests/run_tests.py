#!/usr/bin/env python3
"""Runs every test registered in a meson build dir and counts individual cases.

Each test program speaks TAP (cmocka with CMOCKA_MESSAGE_OUTPUT=TAP, or our scripts). A case is
a pass, a fail, or a skip; a skip is never a pass and is listed with its reason. A program that
crashes or exits non-zero without reporting a failure counts as one more failure, and cases it
planned but never reported count as failures too. The last line is "N passed, N failed".
"""
import json
import os
import re
import subprocess
import sys
import time

def introspect_tests(build_dir):
    out = subprocess.run(["meson", "introspect", build_dir, "--tests"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)

TAP_RESULT = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?([^#]*)(?:#\s*(.*))?$")

def run_one(t, verbose):
    env = dict(os.environ)
    env.update(t.get("env") or {})
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:halt_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    timeout = t.get("timeout") or 600
    if timeout <= 0:
        timeout = 3600
    start = time.monotonic()
    try:
        p = subprocess.run(t["cmd"], cwd=t.get("workdir") or None, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        rc = p.returncode
    except OSError as e:
        out, err, rc = "", f"cannot run {t['cmd'][0]}: {e}", -1
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        err = (e.stderr or b"").decode("utf-8", "replace") + f"\n(timed out after {timeout}s)"
        rc = -9
    dur = time.monotonic() - start
    passed, failed, skipped = [], [], []
    reasons = {}
    plan = None
    last_failure = None
    detail = {}
    for line in out.splitlines():
        m = re.match(r"^1\.\.(\d+)", line)
        if m:
            plan = (plan or 0) + int(m.group(1))
            continue
        m = re.match(r"^# SKIP-REASON (\S+): (.*)$", line)
        if m:
            reasons[m.group(1)] = m.group(2)
            continue
        m = TAP_RESULT.match(line)
        if m:
            status, _, name, directive = m.groups()
            name = (name or "").strip() or f"case{len(passed)+len(failed)+len(skipped)+1}"
            if directive and directive.upper().startswith("SKIP"):
                # cmocka prints the test name after SKIP
                sname = directive[4:].strip() or name
                skipped.append(sname)
            elif status == "ok":
                passed.append(name)
            else:
                failed.append(name)
                last_failure = name
                detail[name] = []
            continue
        if last_failure and line.startswith("#"):
            detail[last_failure].append(line)
    reported = len(passed) + len(failed) + len(skipped)
    missing = (plan - reported) if plan is not None and plan > reported else 0
    for i in range(missing):
        failed.append(f"(planned case {reported + i + 1} never reported)")
    if rc != 0 and not failed:
        failed.append(f"(program exited with status {rc})")
    if plan is None and reported == 0 and rc == 0:
        failed.append("(program reported no TAP results)")
    return dict(name=t["name"], passed=passed, failed=failed, skipped=skipped,
                reasons=reasons, rc=rc, out=out, err=err, detail=detail, dur=dur)

def main():
    args = sys.argv[1:]
    verbose = "-v" in args
    args = [a for a in args if a != "-v"]
    if not args:
        print("usage: run_tests.py BUILD_DIR [-v] [SUITE_OR_NAME...]", file=sys.stderr)
        return 2
    build_dir, filters = args[0], args[1:]
    tests = introspect_tests(build_dir)
    if filters:
        tests = [t for t in tests
                 if t["name"] in filters or any(s.split(":")[-1] in filters for s in t["suite"])]
    # Unit tests first, then the slower suites, in registration order.
    order = {"lint": 0, "unit": 1, "integration": 2, "security": 3}
    tests.sort(key=lambda t: min(order.get(s.split(":")[-1], 9) for s in t["suite"] or [""]))
    npass = nfail = nskip = 0
    skips = []
    for t in tests:
        r = run_one(t, verbose)
        npass += len(r["passed"])
        nfail += len(r["failed"])
        nskip += len(r["skipped"])
        mark = "FAIL" if r["failed"] else "ok"
        print(f"[{mark:4}] {r['name']:<24} {len(r['passed']):4} passed "
              f"{len(r['failed']):3} failed {len(r['skipped']):3} skipped  ({r['dur']:.1f}s)",
              flush=True)
        for s in r["skipped"]:
            reason = r["reasons"].get(s, "no reason given")
            skips.append(f"{r['name']}/{s}: {reason}")
        if r["failed"]:
            for f in r["failed"]:
                print(f"    FAILED {f}")
                for d in r["detail"].get(f, [])[:20]:
                    print(f"      {d}")
            tail = (r["err"].strip().splitlines() or [])[-40:]
            if tail:
                print("    --- stderr (tail) ---")
                for line in tail:
                    print(f"    {line}")
        elif verbose and r["err"].strip():
            print(r["err"])
    if skips:
        print(f"\n{nskip} skipped (not counted as passes):")
        for s in skips:
            print(f"  SKIP {s}")
    print()
    print(f"{npass} passed, {nfail} failed")
    return 1 if nfail or npass == 0 else 0

if __name__ == "__main__":
    sys.exit(main())
