-- Loaded by the benchmark's wrk scripts (wrk takes one script; this part is the same for all).

-- BENCH_DELAY_MS paces each connection for the latency run at half the measured rate: a random
-- pause averaging that many ms before each request, so the connections do not fire in step.
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
if delay_ms > 0 then
  function init(args)
    math.randomseed(os.time() * 1000 + (tid or 0))
  end

  function delay()
    return math.random(0, 2 * delay_ms)
  end
end

-- wrk's table has no p95: the exact percentiles, in microseconds, for bench/run.py.
function done(summary, latency, requests)
  io.write(string.format("BENCH_PERCENTILES_US %d %d %d %d\n",
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
