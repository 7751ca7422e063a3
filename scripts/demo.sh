#!/usr/bin/env bash
# scripts/demo.sh — `make demo`: the whole system on this machine, on 127.0.0.1 only.
#
#   1. builds optimised (`make`, a release build in $BUILD);
#   2. starts a mothership on SQLite in a fresh temporary directory;
#   3. bootstraps an account, a user, an API token and an enrollment token;
#   4. serves a tiny git repository with `git daemon` on 127.0.0.1 — the sample facility's
#      repo_url. nexusd clones a facility's repo_url into the empty facility before the first
#      directive (spec nexus §5.4; only http(s), ssh and git URLs, never file://) and collects a
#      diff only for a facility that has a repo_url (§5.12), so this is what makes the diff real;
#   5. enrolls a nexusd, starts it (profiles `untrusted` and `host`, observability on loopback);
#   6. creates a facility and a sample `host` directive through the user API — the command
#      validator holds it for approval and a second user approves it — waits for it, prints
#      its stdout, stderr, exit code and diff;
#   6b. runs a directive in the `untrusted` sandbox that tries to write the root, read the host's
#      /etc/shadow and reach the network directly and through the egress proxy, and prints the
#      proxy's decisions read back from the user API; then the URLs and curl lines to go further;
#   7. stays up until Ctrl-C, then stops both with one SIGTERM each and checks their exit codes.
#
# Environment:
#   DEMO_ONCE=1      no waiting: exit 0 only if the sample directive succeeded with a diff and
#                    both programs stopped cleanly (exit status 0), else 1
#   BUILD=DIR        build directory (default build; must be a release build)
#   DEMO_KEEP_TMP=1  keep the temporary directory (configs, data, logs) instead of removing it
#
# Every process started here runs in its own session (setsid), so a Ctrl-C on the terminal
# reaches only this script, which then stops them in order: nexusd treats a SECOND signal as
# "exit now", so it must get exactly one.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
DEMO_ONCE=${DEMO_ONCE:-0}
DEMO_KEEP_TMP=${DEMO_KEEP_TMP:-0}
HOST=127.0.0.1
T0=$(date +%s.%N)

say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'demo: %s\n' "$*" >&2; }
if [ ! -t 1 ]; then
        say() { printf '==> %s\n' "$*"; }
fi

# ------------------------------------------------------------------ state and clean-up

TMP=""
MS_PID="" NX_PID="" GITD_PID="" SLEEP_PID=""
RESULT=1            # 0 once the sample directive succeeded (with a diff)
SERVING=0           # 1 while waiting for Ctrl-C
INTERRUPTED=0

die() {
        warn "$*"
        exit 1
}

# Prints the last lines of a log, indented (used when something failed).
show_tail() {
        [ -s "$2" ] || return 0
        warn "last lines of the $1 log ($2):"
        tail -n 15 "$2" | sed 's/^/    /' >&2
}

# stop NAME PID TIMEOUT_S: one SIGTERM, wait up to TIMEOUT_S, SIGKILL after that. Prints the
# exit status; returns 0 only for a clean exit 0.
stop_proc() {
        local name=$1 pid=$2 timeout=$3 waited=0 code
        if [ -z "$pid" ]; then
                return 0
        fi
        if kill -0 "$pid" 2>/dev/null; then
                kill -TERM "$pid" 2>/dev/null || true
                while kill -0 "$pid" 2>/dev/null; do
                        if [ "$waited" -ge $((timeout * 10)) ]; then
                                warn "$name (pid $pid) still running ${timeout}s after SIGTERM: SIGKILL"
                                kill -KILL "$pid" 2>/dev/null || true
                                break
                        fi
                        sleep 0.1
                        waited=$((waited + 1))
                done
        else
                warn "$name (pid $pid) had already exited before the stop"
        fi
        code=0
        wait "$pid" 2>/dev/null || code=$?
        if [ "$code" -eq 0 ]; then
                note "$name stopped (exit 0, $(awk -v w="$waited" 'BEGIN{printf "%.1f", w/10}') s)"
                return 0
        fi
        warn "$name exited with status $code"
        return 1
}

finish() {
        local rc=$? clean=0
        trap '' INT TERM        # the stop below is bounded; a second Ctrl-C must not cut it short
        set +e
        if [ -n "$SLEEP_PID" ]; then
                kill "$SLEEP_PID" 2>/dev/null
        fi
        if [ -n "$NX_PID$MS_PID$GITD_PID" ]; then
                echo
                say "Stopping (SIGTERM, then waiting for each to exit)"
        fi
        # nexusd first: it may still report to the mothership while it stops
        stop_proc nexusd "$NX_PID" 30 || clean=1
        if [ -n "$GITD_PID" ]; then
                kill -TERM "$GITD_PID" 2>/dev/null
                wait "$GITD_PID" 2>/dev/null
                note "git daemon stopped"
        fi
        stop_proc mothership "$MS_PID" 15 || clean=1
        if [ "$SERVING" = 1 ] && [ "$INTERRUPTED" = 1 ]; then
                rc=$RESULT      # Ctrl-C is how the interactive demo ends
        fi
        if [ "$rc" -eq 0 ] && [ "$clean" -ne 0 ]; then
                rc=1
        fi
        # logs help when something went wrong, not when a person pressed Ctrl-C
        if { [ "$clean" -ne 0 ] || { [ "$rc" -ne 0 ] && [ "$INTERRUPTED" = 0 ]; }; } &&
                [ -n "$TMP" ]; then
                show_tail nexusd "$TMP/nexusd.log"
                show_tail mothership "$TMP/mothership.log"
        fi
        if [ -n "$TMP" ]; then
                if [ "$DEMO_KEEP_TMP" = 1 ]; then
                        note "kept $TMP (DEMO_KEEP_TMP=1)"
                else
                        rm -rf "$TMP"
                fi
        fi
        if [ "$DEMO_ONCE" = 1 ] || [ "$rc" -ne 0 ]; then
                printf 'demo: %s after %.1f s\n' "$([ "$rc" -eq 0 ] && echo PASSED || echo FAILED)" \
                        "$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')"
        fi
        exit "$rc"
}

on_signal() {
        INTERRUPTED=1
        exit "$1"
}
trap finish EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

# ------------------------------------------------------------------ helpers

# json FILE PATH: prints the value at a dotted path of a JSON file ("" for null/absent).
json() {
        python3 - "$1" "$2" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else v)
EOF
}

# Two free TCP ports on 127.0.0.1 (the kernel picks them; a tiny window remains until our
# programs bind them, which is fine for a demo).
free_ports() {
        python3 - <<'EOF'
import socket
socks = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# api METHOD PATH OUTFILE [BODYFILE]: calls the user API with the demo's token. Returns 0 on
# 2xx; otherwise prints the answer and returns 1.
api() {
        local method=$1 path=$2 out=$3 body=${4:-} code
        local args=(-sS -o "$out" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $API_TOKEN")
        if [ -n "$body" ]; then
                args+=(-H 'Content-Type: application/json' --data-binary "@$body")
        fi
        code=$(curl "${args[@]}" "$MS_URL$path") || { warn "$method $path: curl failed"; return 1; }
        if [ "${code:0:1}" != 2 ]; then
                warn "$method $path answered $code: $(head -c 500 "$out")"
                return 1
        fi
}

# Dies when one of the programs started here is gone (while waiting for WHAT).
check_alive() {
        local p
        for p in "$MS_PID:mothership" "$NX_PID:nexusd" "$GITD_PID:git daemon"; do
                if [ -n "${p%%:*}" ] && ! kill -0 "${p%%:*}" 2>/dev/null; then
                        echo
                        die "${p#*:} exited while waiting for: $1"
                fi
        done
}

# wait_for WHAT SECONDS COMMAND...: runs COMMAND every 0.2 s until it succeeds, printing a dot
# each second; fails after SECONDS or when a watched process died.
wait_for() {
        local what=$1 deadline=$((SECONDS + $2)) dot=$SECONDS
        shift 2
        printf '    %s ' "$what"
        while ! "$@" 2>/dev/null; do
                check_alive "$what"
                if [ "$SECONDS" -ge "$deadline" ]; then
                        echo
                        die "gave up waiting for: $what"
                fi
                if [ "$SECONDS" -gt "$dot" ]; then
                        printf '.'
                        dot=$SECONDS
                fi
                sleep 0.2
        done
        echo " ok"
}

# ------------------------------------------------------------------ 1. build

for tool in curl git python3; do
        command -v "$tool" >/dev/null || die "$tool is missing (make deps installs it)"
done
GIT_DAEMON=$(git --exec-path)/git-daemon
[ -x "$GIT_DAEMON" ] || die "git daemon not found at $GIT_DAEMON"

say "Building optimised ($BUILD)"
make --no-print-directory BUILD="$BUILD"
buildtype=$(python3 -c 'import json, sys
opts = json.load(open(sys.argv[1]))
print(next((o["value"] for o in opts if o["name"] == "buildtype"), "?"))' \
        "$BUILD/meson-info/intro-buildoptions.json")
if [ "$buildtype" != release ]; then
        die "$BUILD is a '$buildtype' build; the demo runs a release one (rm -rf $BUILD, or BUILD=another-dir)"
fi
MS_BIN=$PWD/$BUILD/src/mothership/mothership
NX_BIN=$PWD/$BUILD/src/nexus/nexusd
note "$("$MS_BIN" version); $("$NX_BIN" version)"

TMP=$(mktemp -d /tmp/conduits-demo.XXXXXX)
# the untrusted sandbox runs as an unprivileged uid that must reach the facility below work_dir
chmod 0711 "$TMP"

# ------------------------------------------------------------------ 2. mothership

say "Starting the mothership (SQLite in $TMP/ms)"
setsid "$MS_BIN" serve --listen "$HOST:0" --data-dir "$TMP/ms" --territory-auth header \
        >"$TMP/mothership.out" 2>"$TMP/mothership.log" </dev/null &
MS_PID=$!
wait_for "waiting for it to listen" 15 grep -q '"listening"' "$TMP/mothership.out"
MS_ADDR=$(python3 -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["listening"])' \
        "$TMP/mothership.out")
MS_URL=http://$MS_ADDR
note "listening on $MS_URL (pid $MS_PID; territory auth: header — development mode)"

# ------------------------------------------------------------------ 3. bootstrap

say "Bootstrapping an account, a user, an API token and an enrollment token"
"$MS_BIN" admin --data-dir "$TMP/ms" bootstrap --account-name demo --user-name demo \
        >"$TMP/bootstrap.json"
API_TOKEN=$(json "$TMP/bootstrap.json" api_token)
ENROLL_TOKEN=$(json "$TMP/bootstrap.json" enroll_token)
note "account $(json "$TMP/bootstrap.json" account_id), user $(json "$TMP/bootstrap.json" user_id)"

# ------------------------------------------------------------------ 4. a git repository

read -r OBS_PORT GIT_PORT < <(free_ports)
say "Serving a sample git repository on git://$HOST:$GIT_PORT/demo.git"
mkdir -p "$TMP/git/src"
(
        cd "$TMP/git/src"
        g() { git -c user.name=demo -c user.email=demo@localhost -c init.defaultBranch=main "$@"; }
        g init -q
        printf '# Demo repository\n\nCloned by nexusd into the facility.\n' >README.md
        printf 'print("hello")\n' >hello.py
        g add README.md hello.py
        g commit -q -m "initial commit"
        cd ..
        git clone -q --bare src demo.git
)
setsid "$GIT_DAEMON" --listen="$HOST" --port="$GIT_PORT" --base-path="$TMP/git" --export-all \
        --reuseaddr --verbose "$TMP/git" >"$TMP/git-daemon.log" 2>&1 </dev/null &
GITD_PID=$!
wait_for "waiting for git daemon" 10 grep -q 'Ready to rumble' "$TMP/git-daemon.log"

# ------------------------------------------------------------------ 5. nexusd

say "Enrolling nexusd"
cat >"$TMP/nexusd.yaml" <<EOF
# nexusd configuration written by scripts/demo.sh
server_url: "$MS_URL"
name: "demo-territory"
labels:
  purpose: demo
work_dir: "$TMP/work"
# untrusted (the default: bwrap + seccomp + Landlock + egress proxy) and host, which runs
# commands unisolated and must therefore be listed explicitly (DESIGN D12)
supported_sandbox_profiles: [untrusted, host]
poll:
  wait_seconds: 20          # long-poll: a new directive is picked up at once
heartbeat:
  interval: "5s"
shutdown_timeout: "10s"
observability:
  enabled: true
  listen_addr: "$HOST:$OBS_PORT"
EOF
"$NX_BIN" enroll -c "$TMP/nexusd.yaml" --token "$ENROLL_TOKEN" >"$TMP/enroll.json" \
        2>"$TMP/enroll.log" || { cat "$TMP/enroll.log" >&2; die "enrollment failed"; }
TERRITORY_ID=$(json "$TMP/work/.nexus/credentials.json" territory_id)
note "territory $TERRITORY_ID (credentials in $TMP/work/.nexus/credentials.json)"

say "Starting nexusd (observability on http://$HOST:$OBS_PORT)"
setsid "$NX_BIN" run -c "$TMP/nexusd.yaml" >"$TMP/nexusd.out" 2>"$TMP/nexusd.log" </dev/null &
NX_PID=$!
obs_up() { curl -sf -o /dev/null "http://$HOST:$OBS_PORT/healthz"; }
heartbeat_seen() {
        "$MS_BIN" admin --data-dir "$TMP/ms" territory show "$TERRITORY_ID" >"$TMP/territory.json" &&
                [ -n "$(json "$TMP/territory.json" last_heartbeat_at)" ]
}
wait_for "waiting for its health endpoint" 15 obs_up
wait_for "waiting for its first territory heartbeat" 15 heartbeat_seen
note "nexusd pid $NX_PID, territory $(json "$TMP/territory.json" status)," \
        "profiles: $(json "$TMP/territory.json" capacity.supported_profiles)"

# ------------------------------------------------------------------ 6. facility + directive

say "Creating a facility on the territory (repo_url git://$HOST:$GIT_PORT/demo.git)"
python3 - "$TERRITORY_ID" "git://$HOST:$GIT_PORT/demo.git" >"$TMP/facility.req" <<'EOF'
import json, sys
print(json.dumps({"territory_id": sys.argv[1], "repo_url": sys.argv[2]}))
EOF
api POST /mothership/api/v1/facilities "$TMP/facility.json" "$TMP/facility.req" ||
        die "could not create the facility"
FID=$(json "$TMP/facility.json" facility.id)
note "facility $FID"

# The variables and $(...) in it are for the directive's shell, not for this one.
# shellcheck disable=SC2016
SAMPLE_COMMAND='echo "Hello from nexusd! directive $CYBROS_DIRECTIVE_ID on $(hostname)"
date -u +"It is %Y-%m-%d %H:%M:%S UTC."
echo "Working directory: $(pwd)"
ls
printf "\nEdited by the demo directive.\n" >> README.md
printf "print(\"hello, world\")\n" > hello.py
echo "notes written by the directive" > NOTES.txt
git add --intent-to-add NOTES.txt
echo "this line goes to stderr" >&2
exit 0'
say "Queuing the sample directive (profile host)"
printf '%s\n' "$SAMPLE_COMMAND" | sed 's/^/    | /'
python3 - "$SAMPLE_COMMAND" >"$TMP/directive.req" <<'EOF'
import json, sys
print(json.dumps({"command": sys.argv[1], "sandbox_profile": "host", "timeout_seconds": 60}))
EOF
api POST "/mothership/api/v1/facilities/$FID/directives" "$TMP/directive.json" \
        "$TMP/directive.req" || die "could not create the directive"
DID=$(json "$TMP/directive.json" directive_id)
DPATH=/mothership/api/v1/facilities/$FID/directives/$DID
note "directive $DID"
if [ "$(json "$TMP/directive.json" state)" = awaiting_approval ]; then
        # spec mothership §6.8: on the host profile, redirections and $(...) need approval, and
        # nobody approves their own directive (§6.10): a second user of the account does.
        note "held for approval: $(json "$TMP/directive.json" approval_reasons)"
        "$MS_BIN" admin --data-dir "$TMP/ms" user create \
                --account "$(json "$TMP/bootstrap.json" account_id)" --name reviewer \
                >"$TMP/reviewer.json" || die "could not create a reviewer"
        "$MS_BIN" admin --data-dir "$TMP/ms" token create \
                --user "$(json "$TMP/reviewer.json" user_id)" >"$TMP/reviewer-token.json" ||
                die "could not create the reviewer's token"
        printf '{"reason":"demo: the sample command only touches the workspace"}' \
                >"$TMP/approve.req"
        OWN_TOKEN=$API_TOKEN
        API_TOKEN=$(json "$TMP/reviewer-token.json" api_token)
        api POST "$DPATH/approve" "$TMP/approve.json" "$TMP/approve.req" ||
                die "the reviewer could not approve the directive"
        API_TOKEN=$OWN_TOKEN
        say "Approved by a second user (reviewer $(json "$TMP/reviewer.json" user_id))"
fi

# Waits for the directive at $1 to end; leaves its JSON in $TMP/show.json and its state in $state.
wait_done() {
        printf '    waiting for it to finish: queued'
        state=queued
        local deadline=$((SECONDS + 90)) dot=$SECONDS now
        while :; do
                api GET "$1" "$TMP/show.json" || die "could not read the directive"
                now=$(json "$TMP/show.json" state)
                if [ "$now" != "$state" ]; then
                        printf ' → %s' "$now"
                        state=$now
                fi
                case $state in
                succeeded | failed | canceled | timed_out) break ;;
                esac
                check_alive "the directive"
                if [ "$SECONDS" -ge "$deadline" ]; then
                        echo
                        die "the directive did not finish within 90 s (state $state)"
                fi
                if [ "$SECONDS" -gt "$dot" ]; then
                        printf '.'
                        dot=$SECONDS
                fi
                sleep 0.2
        done
        echo
}
wait_done "$DPATH"
EXIT_CODE=$(json "$TMP/show.json" exit_code)

api GET "$DPATH/log?stream=stdout" "$TMP/stdout.txt" || die "could not read stdout"
api GET "$DPATH/log?stream=stderr" "$TMP/stderr.txt" || die "could not read stderr"
have_diff=0
if api GET "$DPATH/diff" "$TMP/diff.patch" 2>/dev/null; then
        have_diff=1
fi

section() { printf -- '--- %s %s\n' "$1" "$(printf '%*s' $((60 - ${#1})) '' | tr ' ' -)"; }
say "Result: $state, exit code $EXIT_CODE"
section stdout
cat "$TMP/stdout.txt"
section stderr
cat "$TMP/stderr.txt"
section "diff (git diff HEAD, collected by nexusd in a jail)"
if [ "$have_diff" = 1 ]; then
        cat "$TMP/diff.patch"
else
        echo "(no diff)"
fi
section end

if [ "$state" = succeeded ] && [ "$EXIT_CODE" = 0 ] && [ "$have_diff" = 1 ]; then
        RESULT=0
else
        warn "the sample directive did not succeed with a diff (state $state, exit code $EXIT_CODE)"
fi

# ------------------------------------------------------------------ 6b. the untrusted sandbox

# The default profile: bubblewrap namespaces + seccomp + Landlock + cgroup limits, no network
# except nexusd's allowlisting egress proxy. The command tries to leave and is stopped; the
# proxy's decisions are read back through the user API.
# shellcheck disable=SC2016
SANDBOX_COMMAND='echo "inside: $(id -un) uid=$(id -u), cwd $(pwd)"
touch /etc/escape 2>/dev/null && echo "root is WRITABLE" || echo "root is read-only"
cat /etc/shadow >/dev/null 2>&1 && echo "host /etc/shadow READABLE" || echo "no host /etc/shadow"
curl -sS -m 5 -o /dev/null https://example.com/ 2>&1 | sed "s/^/curl: /" || true
python3 -c "import socket; socket.create_connection((\"1.1.1.1\", 443), 2)" 2>/dev/null && echo "direct TCP WORKS" || echo "direct TCP refused"
echo "sandbox was here" > SANDBOX.txt'
say "Queuing a directive with profile untrusted (net allowlist: only api.github.com:443)"
printf '%s\n' "$SANDBOX_COMMAND" | sed 's/^/    | /'
python3 - "$SANDBOX_COMMAND" >"$TMP/directive2.req" <<'EOF'
import json, sys
print(json.dumps({"command": sys.argv[1], "sandbox_profile": "untrusted", "timeout_seconds": 60,
                  "requested_capabilities": {"net": {"mode": "allowlist",
                                                     "allow": ["api.github.com:443"]}}}))
EOF
api POST "/mothership/api/v1/facilities/$FID/directives" "$TMP/directive2.json" \
        "$TMP/directive2.req" || die "could not create the untrusted directive"
DID2=$(json "$TMP/directive2.json" directive_id)
DPATH2=/mothership/api/v1/facilities/$FID/directives/$DID2
note "directive $DID2 ($(json "$TMP/directive2.json" state))"
wait_done "$DPATH2"
EXIT_CODE2=$(json "$TMP/show.json" exit_code)
api GET "$DPATH2/log?stream=stdout" "$TMP/stdout2.txt" || die "could not read stdout"
api GET "$DPATH2/egress_events" "$TMP/egress.json" || die "could not read the egress events"
say "Result: $state, exit code $EXIT_CODE2"
section stdout
cat "$TMP/stdout2.txt"
section "egress decisions (GET …/egress_events)"
python3 - "$TMP/egress.json" <<'EOF'
import json, sys
for e in json.load(open(sys.argv[1]))["egress_events"]:
    if "decision" in e:
        print(f"{e['decision']:5} {e.get('method', ''):7} {e['dest_host']}:{e['dest_port']}"
              f"  {e['reason_code']}")
EOF
section end
if [ "$state" != succeeded ] || ! grep -q "root is read-only" "$TMP/stdout2.txt" ||
        ! grep -q "direct TCP refused" "$TMP/stdout2.txt" ||
        ! grep -q '"NOT_IN_ALLOWLIST"' "$TMP/egress.json"; then
        warn "the untrusted directive did not show the sandbox at work (state $state)"
        RESULT=1
fi

# ------------------------------------------------------------------ 7. where to look

status_of() { curl -s -o /dev/null -w '%{http_code}' "$1" || true; }
say "Endpoints (everything on $HOST)"
note "mothership            $MS_URL"
note "  user API            $MS_URL/mothership/api/v1   (Authorization: Bearer $API_TOKEN)"
note "  metrics             $MS_URL/metrics"
note "  readiness           $MS_URL/readyz   → $(status_of "$MS_URL/readyz")"
note "nexusd observability  http://$HOST:$OBS_PORT"
note "  metrics             http://$HOST:$OBS_PORT/metrics"
note "  readiness           http://$HOST:$OBS_PORT/readyz   → $(status_of "http://$HOST:$OBS_PORT/readyz")"
note "logs (JSON lines)     $TMP/mothership.log  $TMP/nexusd.log"
note "workspace             $TMP/work/$FID"
echo
note "Run another directive in the same facility:"
echo "    curl -sS -X POST '$MS_URL/mothership/api/v1/facilities/$FID/directives' \\"
echo "      -H 'Authorization: Bearer $API_TOKEN' -H 'Content-Type: application/json' \\"
echo "      -d '{\"command\":\"git log --oneline -5\"}'      # profile untrusted (the default)"
note "then read it (DID = the directive_id it printed):"
echo "    curl -sS -H 'Authorization: Bearer $API_TOKEN' '$MS_URL/mothership/api/v1/facilities/$FID/directives/DID'"
echo "    curl -sS -H 'Authorization: Bearer $API_TOKEN' '$MS_URL/mothership/api/v1/facilities/$FID/directives/DID/log?stream=stdout'"
echo "    curl -sS -H 'Authorization: Bearer $API_TOKEN' '$MS_URL/mothership/api/v1/facilities/$FID/directives/DID/diff'"
echo "    curl -sS -H 'Authorization: Bearer $API_TOKEN' '$MS_URL/mothership/api/v1/facilities/$FID/directives/DID/egress_events'"

if [ "$DEMO_ONCE" = 1 ]; then
        exit "$RESULT"
fi

echo
say "Up. Press Ctrl-C to stop both."
SERVING=1
while :; do
        sleep 1 &
        SLEEP_PID=$!
        wait "$SLEEP_PID" || true
        for p in "$MS_PID:mothership" "$NX_PID:nexusd"; do
                if ! kill -0 "${p%%:*}" 2>/dev/null; then
                        warn "${p#*:} exited on its own"
                        RESULT=1
                        exit 1
                fi
        done
done
