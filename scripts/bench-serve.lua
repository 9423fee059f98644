-- wrk script of scripts/bench-serve.sh. Set by the environment:
--   BENCH_MODE   page | status | verify
--   BENCH_IDS    file of licence identifiers, one a line (page, status)
--   BENCH_TOKEN  department bearer token (status)
--   BENCH_REASON percent-encoded 事由 for X-Reason (status)
--   BENCH_FILE   the signed PDF to post (verify)
-- Requests are formatted once per thread (wrk shares the two cores with the server, so the
-- script must cost it little), cycling through the identifiers from a different start in each
-- thread. `done` prints one RESULT line that the shell script reads.

local mode = os.getenv("BENCH_MODE")
local requests = {}
local next_request = 1
local thread_number = 0

function setup(thread)
  thread_number = thread_number + 1
  thread:set("offset", thread_number * 7919)
end

function init(args)
  if mode == "verify" then
    local f = assert(io.open(os.getenv("BENCH_FILE"), "rb"))
    local body = f:read("*a")
    f:close()
    requests[1] = wrk.format("POST", "/api/v1/verify", { ["Content-Type"] = "application/pdf" }, body)
    return
  end
  local headers = {}
  local prefix = "/v/"
  if mode == "status" then
    prefix = "/api/v1/licences/"
    headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
    headers["X-Reason"] = os.getenv("BENCH_REASON")
  end
  for id in io.lines(os.getenv("BENCH_IDS")) do
    requests[#requests + 1] = wrk.format("GET", prefix .. id, headers)
  end
  next_request = (offset or 0) % #requests + 1
end

function request()
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.2f rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f " ..
    "connect=%d read=%d write=%d timeout=%d non2xx=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.connect, e.read, e.write, e.timeout, e.status))
end
