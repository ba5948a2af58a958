-- wrk script of bench/serve.py: POST one fixed JSON body, print the result as one JSON line.
--
--   BENCH_BODY   path of the body file (read once per wrk thread)
--   BENCH_PATH   request path, e.g. /api/v1/models/bench/forest/predict or /invocations
--   BENCH_TOKEN  bearer token (optional: the MLflow server takes none)
--
-- done() prints {"requests", "seconds", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms",
-- "errors": {...}} on a line of its own that starts with BENCH_RESULT; bench/serve.py reads it.

local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
local body = file:read("*a")
file:close()

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH")
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local function ms(us)
  return us / 1000.0
end

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "seconds": %.3f, "rps": %.2f, "p50_ms": %.3f, "p90_ms": %.3f, '
      .. '"p99_ms": %.3f, "max_ms": %.3f, "mean_ms": %.3f, "errors": {"connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, seconds, summary.requests / seconds,
    ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)),
    ms(latency.max), ms(latency.mean),
    e.connect, e.read, e.write, e.status, e.timeout
  ))
end
