-- bench/polls_post.lua — wrk script for bench/polls: an empty poll (spec mothership §3.2.3)
-- from one enrolled territory, identified by the X-Nexus-Territory-Id header (the server runs
-- with --territory-auth header). bench/polls passes the territory id in BENCH_TERRITORY_ID.
--
-- Everything is set at the top level, not in init(): wrk's own init() builds the one request
-- every connection repeats, and defining init() here would replace it.

local territory = os.getenv("BENCH_TERRITORY_ID")
if territory == nil or territory == "" then
        error("BENCH_TERRITORY_ID is not set (run this through bench/polls)")
end

wrk.method = "POST"
wrk.body = '{"supported_sandbox_profiles":["untrusted"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Nexus-Territory-Id"] = territory
