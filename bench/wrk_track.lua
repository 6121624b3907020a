-- wrk script: each request posts a batch of 20 page views of a new visitor to the Track API.
local counter = 0
local thread_id = 0
local run = tonumber(os.getenv("BENCH_RUN") or "0")

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function request()
  counter = counter + 1
  local events = {}
  for i = 1, 20 do
    events[i] = string.format('{"type":"pageview","url":"https://www.example.com/page-%d?utm_source=bench","title":"Page %d"}', i, i)
  end
  local body = string.format('{"visitorId":"bench-%d-%d-%d","events":[%s],"context":{"js":true}}', run, tid, counter, table.concat(events, ","))
  return wrk.format("POST", nil, {
    ["Content-Type"] = "text/plain",
    ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
  }, body)
end

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
