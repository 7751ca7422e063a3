#!/usr/bin/env python3
"""Attacks on the egress proxy from inside the sandbox (issue 6 "Tests: tests/security/":
proxy policy, and real clients through the proxy). The only way out of the sandbox is
127.0.0.1:9080 inside its network namespace, served by nexusd's proxy (D13, D14). Every case
talks to it from inside `nexusd sandbox exec` — raw bytes from attack.py, or curl and git — and
asserts the denial AND the audit record (decision, reason_code; spec nexus §7.10, §7.12).
Each denial case also runs an allowed control through the same proxy in the same sandbox, so
a proxy that refuses everything cannot pass.

Names (test hosts file, see sec_harness.py): allowed.test / allowed6.test are the test
servers (public-looking addresses on a private veth); evil-loopback.test, meta.test,
private.test, mapped.test, nat64.test, sixtofour.test resolve to denied addresses; evil.test
does not resolve at all. "CANARY" stands for a port on 127.0.0.1/::1 of the test netns where a
listener records any connection that gets through.

Spec: nexus §7.2–§7.8, §7.13 rows 23–33, §12 #187–204; DESIGN D14.
Usage: test_proxy_policy.py <nexusd> [<mothership>]   (TAP on stdout, exit 0)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sec_harness as S  # noqa: E402
from sec_harness import HELLO, V4_S, V6_S, check, eq, fail, short  # noqa: E402

BASE_ALLOW = ["allowed.test:443", "allowed.test:80", "allowed.test:7", "allowed6.test:443",
              "allowed6.test:7"]
ALLOW = {"mode": "allowlist", "allow": BASE_ALLOW}
UNRESTRICTED = {"mode": "unrestricted"}
DENIED_NAME_REASONS = ("DNS_DENIED",)
LITERAL_REASONS = ("NOT_IN_ALLOWLIST", "INVALID_DESTINATION", "DNS_DENIED")


def allow(*extra):
    return {"mode": "allowlist", "allow": BASE_ALLOW + list(extra)}


# ---------------------------------------------------------------------------------------------
# conversations


def connect(target, host=None, payload=None, wait=0.5, extra=""):
    head = (f"CONNECT {target} HTTP/1.1\r\n"
            f"Host: {target if host is None else host}\r\n{extra}\r\n")
    steps = [["send", head], ["recv", wait]]
    if payload is not None:
        steps += [["send", payload], ["recv", wait]]
    return steps


def get(url, host=None, wait=2.0):
    h = host if host is not None else url.split("/")[2]
    return [["send", f"GET {url} HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\n\r\n"],
            ["recv", wait]]


def _port(p):
    return int(p).to_bytes(2, "big").hex()


def socks(cmd=1, domain=None, v4=None, v6=None, port=7, methods="00", payload=None,
          atyp=None, wait=0.5):
    """SOCKS5: greeting with `methods` (hex), then one request (unless methods has no 00)."""
    greet = "05" + f"{len(bytes.fromhex(methods)):02x}" + methods
    steps = [["sendhex", greet], ["recv", wait]]
    if domain is not None:
        addr = "03" + f"{len(domain.encode()):02x}" + domain.encode().hex()
    elif v4 is not None:
        addr = "01" + bytes(int(x) for x in v4.split(".")).hex()
    elif v6 is not None:
        import ipaddress
        addr = "04" + ipaddress.IPv6Address(v6).packed.hex()
    else:
        addr = "01" + "00000000"
    if atyp is not None:
        addr = atyp + addr[2:]
    steps += [["sendhex", "05" + f"{cmd:02x}" + "00" + addr + _port(port)], ["recv", wait]]
    if payload is not None:
        steps += [["send", payload], ["recv", wait]]
    return steps


def run(ctx, convs, net, **kw):
    """All conversations in ONE sandbox (one proxy): returns (Result, [result per conv])."""
    cmd = "; ".join("python3 /workspace/attack.py raw " + S.PROXY + " " +
                    S._shq(json.dumps(steps)) for steps in convs)
    r = ctx.sandbox(cmd, net=net, **kw)
    eq(r.rc, 0, f"exit status; {r.describe()}")
    res = [r.json(i) for i in range(len(convs))]
    return r, res


def socks_reply(res):
    """(method byte, reply code) from a SOCKS conversation's received bytes."""
    b = res.get("recv", "").encode("latin-1")
    method = b[1] if len(b) >= 2 else None
    rep = b[3] if len(b) >= 4 else None
    return method, rep, b


def expect_tunnel_ok(res, payload, what):
    st = S.http_status(res.get("recv", ""))
    eq(st, 200, f"{what}: CONNECT status ({short(res)})")
    check(res.get("recv", "").endswith(payload), f"{what}: the payload did not come back "
                                                 f"through the tunnel: {short(res)}")


def expect_status_in(res, statuses, what):
    st = S.http_status(res.get("recv", ""))
    check(st in statuses, f"{what}: expected HTTP {statuses}, got {st}: {short(res)}")


def reasons(r, **match):
    return [x.get("reason_code") for x in r.records(**match)]


CONTROL = connect("allowed.test:7", payload="ping-control\n")


def check_control(r, res0):
    expect_tunnel_ok(res0, "ping-control\n", "control CONNECT allowed.test:7")
    S.expect_record(r, "control", decision="allow", dest_host="allowed.test", dest_port=7,
                    reason_code="OK")


# ---------------------------------------------------------------------------------------------
# policy


def test_connect_to_host_not_on_allowlist_denied(ctx):
    """CONNECT evil.test:443 and a look-alike suffix name → 403, audit deny NOT_IN_ALLOWLIST
    method CONNECT (§7.13 rows 24, 12; §12 #188); the control CONNECT to allowed.test:7 relays
    bytes both ways and is audited allow OK with resolved_ip."""
    r, res = run(ctx, [CONTROL, connect("evil.test:443"),
                       connect("allowed.test.evil.test:443")], ALLOW)
    check_control(r, res[0])
    rec = r.records(decision="allow", dest_host="allowed.test")[0]
    eq(rec.get("resolved_ip"), V4_S, f"resolved_ip of the allowed CONNECT ({rec})")
    eq(rec.get("method"), "CONNECT", f"method of the allowed record ({rec})")
    for i, host in ((1, "evil.test"), (2, "allowed.test.evil.test")):
        eq(S.http_status(res[i]["recv"]), 403, f"CONNECT {host}:443 status ({short(res[i])})")
        recs = S.expect_record(r, host, dest_host=host, dest_port=443, decision="deny")
        eq(recs[0].get("reason_code"), "NOT_IN_ALLOWLIST", f"reason for {host} ({recs})")
        eq(recs[0].get("method"), "CONNECT", f"method for {host} ({recs})")
        check("ts" in recs[0], f"audit record without ts: {recs[0]}")
    S.expect_no_allow(r, "denied hosts", host="evil.test")


def _denied_resolution_case(name, port):
    def case(ctx):
        p = ctx.canary.port if port == "CANARY" else port
        ctx.canary.reset()
        r, res = run(ctx, [CONTROL, connect(f"{name}:{p}", payload="x\n"),
                           socks(domain=name, port=p, payload="x\n")], allow(f"{name}:{p}"))
        check_control(r, res[0])
        st = S.http_status(res[1]["recv"])
        check(st in (403, 502) and st != 200, f"CONNECT {name}:{p} status {st}: {short(res[1])}")
        eq(st, 403, f"CONNECT {name}:{p} status (DNS_DENIED → 403, spec §7.3 step 3)")
        _, rep, raw = socks_reply(res[2])
        check(rep not in (None, 0), f"SOCKS5 CONNECT {name}:{p} reply {raw!r} (must be non-zero)")
        recs = S.expect_record(r, name, dest_host=name, decision="deny")
        check(len(recs) >= 2, f"{name}: expected a deny record for CONNECT and for SOCKS5, "
                              f"got {recs}")
        for rec in recs:
            eq(rec.get("reason_code"), "DNS_DENIED", f"{name} reason ({rec})")
        S.expect_no_allow(r, name, host=name)
        check(not ctx.canary.hits, f"{name}: the loopback canary was reached: {ctx.canary.hits}")
    case.__name__ = ("test_allowlisted_name_resolving_to_" +
                     {"evil-loopback.test": "loopback", "meta.test": "metadata_169_254_169_254",
                      "private.test": "private_10_0_0_1", "mapped.test": "v4mapped_loopback",
                      "nat64.test": "nat64_loopback", "sixtofour.test": "6to4_loopback"}[name] +
                     "_denied")
    case.__doc__ = (f"{name} is on the allowlist but resolves to {S.HOSTS[name]}: CONNECT → 403 "
                    f"and SOCKS5 → non-zero reply, both audited deny DNS_DENIED; nothing "
                    f"reaches the host-loopback canary (spec nexus §7.8, D14, Appendix B #7).")
    return case


for _n, _p in (("evil-loopback.test", "CANARY"), ("meta.test", 80), ("private.test", 80),
               ("mapped.test", "CANARY"), ("nat64.test", 443), ("sixtofour.test", 443)):
    _c = _denied_resolution_case(_n, _p)
    globals()[_c.__name__] = _c
del _c, _n, _p

LITERALS = ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "127.1", "017700000001",
            "127.0.0.1.", "0x7F.1"]


def _literal_case(mode):
    def case(ctx):
        p = ctx.canary.port
        ctx.canary.reset()
        net = ALLOW if mode == "allowlist" else UNRESTRICTED
        convs = [CONTROL] + [connect(f"{lit}:{p}", payload="x\n") for lit in LITERALS] + \
                [socks(domain=lit, port=p, payload="x\n") for lit in LITERALS[:3]]
        r, res = run(ctx, convs, net)
        check_control(r, res[0])
        for lit, x in zip(LITERALS, res[1:1 + len(LITERALS)]):
            st = S.http_status(x["recv"])
            check(st in (400, 403), f"CONNECT {lit}:{p} ({mode}) → {st}: {short(x)}")
        for lit, x in zip(LITERALS[:3], res[1 + len(LITERALS):]):
            _, rep, raw = socks_reply(x)
            check(rep not in (None, 0), f"SOCKS5 domain {lit!r} ({mode}) reply {raw!r}")
        denies = [x for x in r.audit if x.get("decision") == "deny" and x.get("dest_port") in
                  (p, 0)]
        check(len(denies) >= len(LITERALS) + 3,
              f"{mode}: expected {len(LITERALS) + 3} deny records, got {len(denies)}: "
              f"{short(r.audit, 2000)}")
        for d in denies:
            check(d.get("reason_code") in LITERAL_REASONS, f"{mode}: reason of {d}")
        if mode == "allowlist":
            for d in denies:
                check(d.get("reason_code") != "DNS_DENIED" or d.get("dest_port") == 0,
                      f"an IP literal was resolved instead of refused by the allowlist: {d}")
        allowed = [x for x in r.audit if x.get("decision") == "allow" and x.get("dest_port") == p]
        check(not allowed, f"{mode}: a loopback literal was ALLOWED: {allowed}")
        check(not ctx.canary.hits, f"{mode}: the loopback canary was reached: {ctx.canary.hits}")
    case.__name__ = f"test_ipv4_literal_forms_denied_in_{mode}_mode"
    case.__doc__ = (f"127.0.0.1 written as decimal, octal, hex, short and trailing-dot forms "
                    f"({', '.join(LITERALS)}) through CONNECT and SOCKS5 domain requests in "
                    f"{mode} mode: all denied and audited (allowlist: NOT_IN_ALLOWLIST — a "
                    f"literal never matches; unrestricted: the classifier after "
                    f"canonicalisation), the canary is never reached (§7.7 step 3, D14).")
    return case


for _m in ("allowlist", "unrestricted"):
    _c = _literal_case(_m)
    globals()[_c.__name__] = _c
del _c, _m


def test_ipv6_zone_ids_denied(ctx):
    """[fe80::1%25lo], [fe80::1%lo], [::1%lo] via CONNECT and "fe80::1%lo" as a SOCKS5 domain,
    in unrestricted mode: all refused, audited deny INVALID_DESTINATION (D14)."""
    p = ctx.canary.port
    ctx.canary.reset()
    targets = [f"[fe80::1%25lo]:{p}", f"[fe80::1%lo]:{p}", f"[::1%lo]:{p}"]
    r, res = run(ctx, [CONTROL] + [connect(t) for t in targets] +
                 [socks(domain="fe80::1%lo", port=p)], UNRESTRICTED)
    check_control(r, res[0])
    for t, x in zip(targets, res[1:4]):
        st = S.http_status(x["recv"])
        check(st in (400, 403), f"CONNECT {t} → {st}: {short(x)}")
    _, rep, raw = socks_reply(res[4])
    check(rep not in (None, 0), f"SOCKS5 domain fe80::1%lo reply {raw!r}")
    denies = [x for x in r.audit if x.get("decision") == "deny"]
    check(len(denies) >= 4, f"expected 4 deny records, got {short(r.audit, 1500)}")
    for d in denies:
        eq(d.get("reason_code"), "INVALID_DESTINATION", f"reason for a zone id ({d})")
    check(not ctx.canary.hits, f"the canary was reached: {ctx.canary.hits}")


def test_ports_0_65536_and_unlisted_22_denied(ctx):
    """CONNECT allowed.test:0 and :65536 → 400 INVALID_DESTINATION (§7.13 row 33);
    allowed.test:22 (not granted; an echo server listens there) → 403 NOT_IN_ALLOWLIST (or
    PORT_NOT_ALLOWED) and the server sees nothing; SOCKS5 port 0 → non-zero reply."""
    mark = ctx.events_mark()
    r, res = run(ctx, [CONTROL, connect("allowed.test:0"), connect("allowed.test:65536"),
                       connect("allowed.test:22", payload="x\n"),
                       socks(domain="allowed.test", port=0), socks(domain="allowed.test", port=22)],
                 ALLOW)
    check_control(r, res[0])
    for i, port in ((1, 0), (2, 65536)):
        eq(S.http_status(res[i]["recv"]), 400, f"CONNECT allowed.test:{port} ({short(res[i])})")
    eq(S.http_status(res[3]["recv"]), 403, f"CONNECT allowed.test:22 ({short(res[3])})")
    for i in (4, 5):
        _, rep, raw = socks_reply(res[i])
        check(rep not in (None, 0), f"SOCKS5 conversation {i} reply {raw!r}")
    inval = [x for x in r.audit if x.get("decision") == "deny" and
             x.get("reason_code") == "INVALID_DESTINATION"]
    check(len(inval) >= 2, f"ports 0/65536: expected 2 INVALID_DESTINATION records: "
                           f"{short(r.audit, 1500)}")
    p22 = r.records(decision="deny", dest_port=22)
    check(len(p22) >= 2, f"port 22: expected CONNECT + SOCKS5 deny records: {short(r.audit)}")
    for d in p22:
        check(d.get("reason_code") in ("NOT_IN_ALLOWLIST", "PORT_NOT_ALLOWED"), f"port 22: {d}")
    got = [e for e in ctx.events_since(mark) if e.get("port") == 22]
    check(not got, f"the port-22 server saw connections: {got}")


def test_chained_connect_inside_tunnel_is_not_interpreted(ctx):
    """A second CONNECT (to evil.test) pipelined after the first head, or sent inside the
    established tunnel, is plain payload for the upstream (the echo server returns it), never
    a second proxy decision: exactly one audit record (allowed.test:7) per conversation."""
    inner = "CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n"
    piped = [["send", "CONNECT allowed.test:7 HTTP/1.1\r\nHost: allowed.test:7\r\n\r\n" + inner],
             ["recv", 1.5]]
    r, res = run(ctx, [connect("allowed.test:7", payload=inner), piped], ALLOW)
    for i, x in enumerate(res):
        eq(S.http_status(x["recv"]), 200, f"conversation {i} CONNECT status ({short(x)})")
        check(x["recv"].endswith(inner), f"conversation {i}: the inner CONNECT did not reach "
                                         f"the upstream as bytes: {short(x)}")
    eq(len(r.audit), 2, f"audit records (one per outer CONNECT): {short(r.audit, 1500)}")
    check(not r.records(dest_host="evil.test"), f"the inner CONNECT was interpreted: {r.audit}")


def test_connect_to_the_proxy_itself_denied(ctx):
    """Relaying through the proxy to itself (127.0.0.1:9080, localhost:9080, [::1]:9080, and an
    absolute-form GET of http://127.0.0.1:9080/) is refused even in unrestricted mode."""
    r, res = run(ctx, [CONTROL, connect("127.0.0.1:9080"), connect("localhost:9080"),
                       connect("[::1]:9080"), get("http://127.0.0.1:9080/")], UNRESTRICTED)
    check_control(r, res[0])
    for i in range(1, 5):
        st = S.http_status(res[i]["recv"])
        check(st in (400, 403), f"relay {i} → {st}: {short(res[i])}")
    denies = [x for x in r.audit if x.get("decision") == "deny" and x.get("dest_port") == 9080]
    check(len(denies) >= 4, f"expected 4 deny records for port 9080: {short(r.audit, 1500)}")
    for d in denies:
        check(d.get("reason_code") in ("DNS_DENIED", "INVALID_DESTINATION"), f"reason: {d}")


def test_host_header_differing_from_connect_target_denied(ctx):
    """CONNECT allowed.test:7 with Host: evil.test:7 → refused (400), audited deny
    INVALID_DESTINATION, and the upstream is never contacted; the same CONNECT with a matching
    Host header works (control)."""
    mark = ctx.events_mark()
    r, res = run(ctx, [connect("allowed.test:7", host="evil.test:7", payload="x\n")], ALLOW)
    st = S.http_status(res[0]["recv"])
    check(st in (400, 403), f"mismatching Host → {st}: {short(res[0])}")
    recs = [x for x in r.audit if x.get("decision") == "deny"]
    check(recs and recs[0].get("reason_code") == "INVALID_DESTINATION",
          f"audit for the Host mismatch: {r.audit}")
    S.expect_no_allow(r, "Host mismatch")
    got = [e for e in ctx.events_since(mark) if e.get("port") == 7]
    check(not got, f"the upstream was contacted despite the mismatch: {got}")
    r2, res2 = run(ctx, [connect("allowed.test:7", host="allowed.test:7", payload="y\n")], ALLOW)
    expect_tunnel_ok(res2[0], "y\n", "control with a matching Host")


def test_socks5_auth_methods_refused(ctx):
    """Greetings offering only username/password (02) or GSSAPI (01) get 05 FF and the
    connection closes; a greeting offering 02 and 00 gets 05 00 (control). Spec §7.5 step 1."""
    r, res = run(ctx, [[["sendhex", "050102"], ["recv", 1.0], ["sendhex", "0501000301"],
                        ["recv", 1.0]],
                       [["sendhex", "050101"], ["recv", 1.0]],
                       socks(domain="allowed.test", port=7, methods="0200", payload="ok\n")],
                 ALLOW)
    for i in (0, 1):
        b = res[i]["recv"].encode("latin-1")
        eq(b[:2], b"\x05\xff", f"greeting {i} reply")
        check(res[i].get("closed"), f"greeting {i}: connection not closed after 05 FF: {res[i]}")
    method, rep, raw = socks_reply(res[2])
    eq((method, rep), (0, 0), f"no-auth offered with user/pass: reply {raw!r}")
    check(raw.endswith(b"ok\n"), f"the SOCKS5 tunnel did not relay: {raw!r}")
    S.expect_record(r, "SOCKS5 control", decision="allow", dest_host="allowed.test",
                    method="SOCKS5", reason_code="OK")
    eq(len(r.records(decision="allow")), 1, f"only the control may be allowed: {r.audit}")
    for d in r.records(decision="deny"):
        eq(d.get("method"), "SOCKS5", f"a refused greeting's record ({d})")


def test_socks5_udp_associate_and_bind_refused(ctx):
    """UDP ASSOCIATE (03) and BIND (02) → reply 0x07 (command not supported), audited deny
    INVALID_DESTINATION method SOCKS5 (§7.5 step 2, §7.13 row 31)."""
    r, res = run(ctx, [socks(cmd=3, v4="0.0.0.0", port=0),
                       socks(cmd=2, domain="allowed.test", port=7),
                       socks(cmd=1, domain="allowed.test", port=7, payload="ok\n")], ALLOW)
    for i, what in ((0, "UDP ASSOCIATE"), (1, "BIND")):
        _, rep, raw = socks_reply(res[i])
        eq(rep, 7, f"{what} reply code ({raw!r})")
    _, rep, raw = socks_reply(res[2])
    eq(rep, 0, f"control SOCKS5 CONNECT reply ({raw!r})")
    denies = r.records(decision="deny", method="SOCKS5")
    check(len(denies) >= 2, f"expected 2 SOCKS5 deny records: {r.audit}")
    for d in denies:
        eq(d.get("reason_code"), "INVALID_DESTINATION", f"reason ({d})")


def test_socks5_ip_literals_and_bad_atyp_denied(ctx):
    """SOCKS5 CONNECT with ATYP IPv4 11.22.33.2:7 and IPv6 [test server]:7 in allowlist mode:
    a literal never matches → 0x02 NOT_IN_ALLOWLIST; ATYP 0x05 → 0x08; the server sees none of
    them; the domain form of the same target works (control)."""
    mark = ctx.events_mark()
    r, res = run(ctx, [socks(v4=V4_S, port=7, payload="x\n"), socks(v6=V6_S, port=7, payload="x\n"),
                       socks(v4=V4_S, port=7, atyp="05"),
                       socks(domain="allowed.test", port=7, payload="ok\n")], ALLOW)
    for i in (0, 1):
        _, rep, raw = socks_reply(res[i])
        eq(rep, 2, f"ATYP literal {i} reply ({raw!r})")
    _, rep, raw = socks_reply(res[2])
    eq(rep, 8, f"unknown ATYP reply ({raw!r})")
    _, rep, raw = socks_reply(res[3])
    eq(rep, 0, f"control domain CONNECT reply ({raw!r})")
    lits = [x for x in r.audit if x.get("decision") == "deny" and x.get("dest_port") == 7]
    check(len(lits) >= 2, f"expected deny records for both literals: {r.audit}")
    for d in lits[:2]:
        check(d.get("reason_code") in ("NOT_IN_ALLOWLIST", "INVALID_DESTINATION"), f"{d}")
    got = [e for e in ctx.events_since(mark) if e.get("port") == 7]
    eq(len(got), 1, f"server connections on port 7 (only the control): {got}")


def test_oversized_head_rejected(ctx):
    """A CONNECT head with 64 KiB of headers → 431 (or 400), audited deny INVALID_DESTINATION,
    upstream never contacted; a 1 MiB header stream without end is cut off (connection closed);
    the proxy still serves the control afterwards."""
    mark = ctx.events_mark()
    big = "X-Pad: " + "a" * 1000 + "\r\n"
    r, res = run(ctx, [[["send", "CONNECT allowed.test:7 HTTP/1.1\r\nHost: allowed.test:7\r\n"],
                        ["sendrep", big, 64], ["send", "\r\nx\n"], ["recv", 2.0]],
                       [["send", "CONNECT allowed.test:7 HTTP/1.1\r\n"], ["sendrep", big, 1024],
                        ["recv", 2.0]],
                       CONTROL], ALLOW)
    st = S.http_status(res[0]["recv"])
    # 431/400, or a reset that swallowed the answer (the proxy closed with unread bytes)
    check(st in (431, 400) or (st is None and (res[0].get("closed") or res[0].get("error"))),
          f"64 KiB head → {st}: {short(res[0])}")
    check(res[1].get("closed") or res[1].get("error"), f"1 MiB head: not closed {short(res[1])}")
    check(S.http_status(res[1]["recv"]) in (None, 400, 431), f"1 MiB head: {short(res[1])}")
    check_control(r, res[2])
    denies = [x for x in r.audit if x.get("decision") == "deny"]
    check(denies and all(d.get("reason_code") == "INVALID_DESTINATION" for d in denies),
          f"audit for oversized heads: {r.audit}")
    got = [e for e in ctx.events_since(mark) if e.get("port") == 7]
    eq(len(got), 1, f"server connections on port 7 (only the control): {got}")


def test_slowloris_head_cut_off(ctx):
    """A CONNECT head dribbled one byte every 0.5 s is cut off by the head-read deadline (10 s,
    not an idle timer reset by each byte): closed well before 30 s, nothing allowed; the
    proxy serves the control afterwards."""
    slow = [["slow", "CONNECT allowed.test:7 HTTP/1.1\r\nX-Slow: " + "a" * 200, 0.5, 30]]
    r, res = run(ctx, [slow, CONTROL], ALLOW, timeout=120)
    check(res[0].get("closed"), f"slowloris connection still open after 30 s: {short(res[0])}")
    check(res[0].get("slow_seconds", 99) < 25, f"closed only after {res[0].get('slow_seconds')} s")
    check_control(r, res[1])
    eq(len(r.records(decision="allow")), 1, f"only the control may be allowed: {r.audit}")


def test_absolute_form_http_policy(ctx):
    """Plain-HTTP proxying (§7.4): GET http://allowed.test/hello.txt → 200 with the body
    (audited allow OK method HTTP); http://evil.test/ → 403 NOT_IN_ALLOWLIST;
    http://evil-loopback.test:CANARY/ (allowlisted) → 403 DNS_DENIED, canary untouched;
    origin-form GET / → 400 (not a proxy request)."""
    p = ctx.canary.port
    ctx.canary.reset()
    r, res = run(ctx, [get("http://allowed.test/hello.txt"), get("http://evil.test/"),
                       get(f"http://evil-loopback.test:{p}/"),
                       [["send", "GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n"], ["recv", 2.0]]],
                 allow(f"evil-loopback.test:{p}"))
    eq(S.http_status(res[0]["recv"]), 200, f"allowed GET ({short(res[0])})")
    check(res[0]["recv"].endswith(HELLO), f"allowed GET body: {short(res[0])}")
    eq(S.http_status(res[1]["recv"]), 403, f"GET evil.test ({short(res[1])})")
    eq(S.http_status(res[2]["recv"]), 403, f"GET evil-loopback.test ({short(res[2])})")
    eq(S.http_status(res[3]["recv"]), 400, f"origin-form GET ({short(res[3])})")
    S.expect_record(r, "allowed GET", decision="allow", dest_host="allowed.test", dest_port=80,
                    method="HTTP", reason_code="OK")
    S.expect_record(r, "evil.test", decision="deny", dest_host="evil.test",
                    reason_code="NOT_IN_ALLOWLIST")
    S.expect_record(r, "evil-loopback.test", decision="deny", dest_host="evil-loopback.test",
                    reason_code="DNS_DENIED")
    check(not ctx.canary.hits, f"the canary was reached: {ctx.canary.hits}")


def test_mode_none_denies_everything(ctx):
    """net {"mode":"none"}: CONNECT, absolute-form GET and SOCKS5 to allowed.test are all
    refused with NET_MODE_NONE (§7.13 rows 14, 23, 25, 28)."""
    mark = ctx.events_mark()
    r, res = run(ctx, [connect("allowed.test:7", payload="x\n"),
                       get("http://allowed.test/hello.txt"),
                       socks(domain="allowed.test", port=7, payload="x\n")], {"mode": "none"})
    eq(S.http_status(res[0]["recv"]), 403, f"CONNECT ({short(res[0])})")
    eq(S.http_status(res[1]["recv"]), 403, f"GET ({short(res[1])})")
    _, rep, raw = socks_reply(res[2])
    check(rep not in (None, 0), f"SOCKS5 reply {raw!r}")
    eq(len(r.audit), 3, f"audit records: {r.audit}")
    for d in r.audit:
        eq((d.get("decision"), d.get("reason_code")), ("deny", "NET_MODE_NONE"), f"record {d}")
    got = [e for e in ctx.events_since(mark) if e.get("kind") in ("tcp", "http")]
    check(not got, f"servers were contacted in mode none: {got}")


def test_default_net_is_none(ctx):
    """Without --net (a directive with no net capability) nothing gets out: CONNECT → 403
    NET_MODE_NONE (§7.13 row 13)."""
    r = ctx.sandbox("python3 /workspace/attack.py raw " + S.PROXY + " " +
                    S._shq(json.dumps(connect("allowed.test:7", payload="x\n"))))
    eq(r.rc, 0, f"exit status; {r.describe()}")
    eq(S.http_status(r.json()["recv"]), 403, f"CONNECT with the default net ({short(r.json())})")
    S.expect_record(r, "default net", decision="deny", reason_code="NET_MODE_NONE")


def test_unrestricted_still_denies_private_destinations(ctx):
    """Unrestricted mode allows public destinations (11.22.33.2:7 literal, control) but still
    refuses 127.0.0.1, 10.0.0.1, 169.254.169.254 and meta.test (§7.8, §7.13 row 26)."""
    p = ctx.canary.port
    ctx.canary.reset()
    r, res = run(ctx, [connect(f"{V4_S}:7", payload="lit\n"), connect(f"127.0.0.1:{p}"),
                       connect("10.0.0.1:80"), connect("169.254.169.254:80"),
                       connect("meta.test:80"), get(f"http://127.0.0.1:{p}/")], UNRESTRICTED)
    expect_tunnel_ok(res[0], "lit\n", "unrestricted CONNECT to the public literal")
    for i in range(1, 6):
        eq(S.http_status(res[i]["recv"]), 403, f"private destination {i} ({short(res[i])})")
    denies = r.records(decision="deny")
    eq(len(denies), 5, f"deny records: {short(r.audit, 1500)}")
    for d in denies:
        eq(d.get("reason_code"), "DNS_DENIED", f"reason ({d})")
    check(not ctx.canary.hits, f"the canary was reached: {ctx.canary.hits}")


# ---------------------------------------------------------------------------------------------
# real clients


def _curl(args):
    return "curl -sS --max-time 20 --cacert /workspace/ca.pem " + args


def test_curl_https_proxy_reaches_allowed_server(ctx):
    """curl with the sandbox's https_proxy fetches https://allowed.test/hello.txt (TLS verified
    against the test CA); audited allow OK, method CONNECT, resolved_ip 11.22.33.2; the server
    logged the request."""
    mark = ctx.events_mark()
    r = ctx.sandbox(_curl("https://allowed.test/hello.txt"), net=ALLOW)
    eq(r.rc, 0, f"curl exit status; {r.describe()}")
    eq(r.out, HELLO, f"body; {r.describe()}")
    rec = S.expect_record(r, "curl https", decision="allow", dest_host="allowed.test",
                          dest_port=443, reason_code="OK")[0]
    eq(rec.get("method"), "CONNECT", f"method ({rec})")
    eq(rec.get("resolved_ip"), V4_S, f"resolved_ip ({rec})")
    got = [e for e in ctx.events_since(mark) if e.get("port") == 443 and
           e.get("path") == "/hello.txt"]
    eq(len(got), 1, f"server-side requests: {got}")


def test_curl_socks5_hostname_reaches_allowed_server(ctx):
    """curl --socks5-hostname 127.0.0.1:9080 (the name goes to the proxy, which resolves it)
    fetches https://allowed.test/hello.txt; audited allow OK method SOCKS5."""
    r = ctx.sandbox(_curl("--socks5-hostname " + S.PROXY + " https://allowed.test/hello.txt"),
                    net=ALLOW)
    eq(r.rc, 0, f"curl exit status; {r.describe()}")
    eq(r.out, HELLO, f"body; {r.describe()}")
    S.expect_record(r, "curl socks5", decision="allow", dest_host="allowed.test",
                    dest_port=443, method="SOCKS5", reason_code="OK")


def test_curl_plain_http_and_ipv6_destination(ctx):
    """curl http://allowed.test/hello.txt goes through absolute-form proxying (method HTTP);
    https://allowed6.test/hello.txt reaches the IPv6-only name (resolved_ip is the v6
    address)."""
    r = ctx.sandbox("curl -sS --max-time 20 http://allowed.test/hello.txt && " +
                    _curl("https://allowed6.test/hello.txt"), net=ALLOW)
    eq(r.rc, 0, f"curl exit status; {r.describe()}")
    eq(r.out, HELLO + HELLO, f"bodies; {r.describe()}")
    S.expect_record(r, "plain http", decision="allow", dest_host="allowed.test", dest_port=80,
                    method="HTTP")
    rec = S.expect_record(r, "v6", decision="allow", dest_host="allowed6.test",
                          dest_port=443)[0]
    eq(rec.get("resolved_ip"), V6_S, f"resolved_ip of allowed6.test ({rec})")


def test_curl_to_denied_destinations_fails(ctx):
    """curl to https://evil.test/ and to the allowlisted https://evil-loopback.test:CANARY/
    fails through the proxy (audited NOT_IN_ALLOWLIST / DNS_DENIED); curl ignoring the proxy
    (--noproxy '*') cannot connect at all."""
    p = ctx.canary.port
    ctx.canary.reset()
    r = ctx.sandbox(_curl("https://evil.test/; echo rc1=$?; ") +
                    _curl(f"https://evil-loopback.test:{p}/; echo rc2=$?; ") +
                    _curl(f"--noproxy '*' http://{V4_S}/hello.txt; echo rc3=$?"),
                    net=allow(f"evil-loopback.test:{p}"))
    for k in ("rc1", "rc2", "rc3"):
        check(f"{k}=0" not in r.out and f"{k}=" in r.out, f"curl {k} succeeded; {r.describe()}")
    check(HELLO not in r.out, f"a denied request got the body; {r.describe()}")
    S.expect_record(r, "evil.test", decision="deny", dest_host="evil.test",
                    reason_code="NOT_IN_ALLOWLIST")
    S.expect_record(r, "evil-loopback.test", decision="deny", dest_host="evil-loopback.test",
                    reason_code="DNS_DENIED")
    check(not ctx.canary.hits, f"the canary was reached: {ctx.canary.hits}")


def test_git_clone_over_https_through_proxy(ctx):
    """`git clone https://allowed.test/repo.git` inside the sandbox (git honours https_proxy;
    GIT_SSL_CAINFO = the test CA) gets the files into /workspace, visible on the host; the
    proxy audited allow OK for allowed.test:443; a clone of https://evil.test/ fails."""
    r = ctx.sandbox("export GIT_SSL_CAINFO=/workspace/ca.pem HOME=/tmp; "
                    "git clone -q https://allowed.test/repo.git /workspace/clone && "
                    "cat /workspace/clone/README.md; "
                    "git clone -q https://evil.test/repo.git /workspace/evil; echo evil=$?",
                    net=ALLOW, timeout=120)
    check("hello from the test repo" in r.out, f"clone content; {r.describe()}")
    with open(os.path.join(r.ws, "clone", "src", "app.txt")) as f:
        eq(f.read(), "alpha\nv1\nomega\n", "cloned file seen from the host")
    check("evil=0" not in r.out, f"clone of evil.test succeeded; {r.describe()}")
    S.expect_record(r, "git clone", decision="allow", dest_host="allowed.test", dest_port=443,
                    reason_code="OK")
    S.expect_record(r, "evil clone", decision="deny", dest_host="evil.test",
                    reason_code="NOT_IN_ALLOWLIST")


if __name__ == "__main__":
    sys.exit(S.main(globals(), "test_proxy_policy.py <nexusd> [<mothership>]"))
