-- wrk script: each request posts a new lead (a unique email per thread and request).
local counter = 0
local thread_id = 0
-- BENCH_RUN numbers each wrk run, so emails and phones never repeat across runs (no dedup merges).
local run = tonumber(os.getenv("BENCH_RUN") or "0")

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function request()
  counter = counter + 1
  -- A valid US number (area code by thread, exchange 200-999 by run and counter), as people type it:
  -- an invalid exchange costs phone parsing three times as much (every NANP region is tried).
  -- Two exchanges a run (20,000 requests a thread): 400 runs on one database before a phone
  -- repeats, and a repeated phone would merge into the earlier lead instead of creating one.
  local exchange = 200 + (run * 2 + math.floor(counter / 10000)) % 800
  local body = string.format(
    '{"name":"Bench Person %d-%d","email":"bench-%d-%d-%d@example.com","phone":"+1 (%d) %03d-%04d","company":"Benchco %d","job_title":"Buyer","utm_source":"bench"}',
    tid, counter, run, tid, counter, 311 + tid, exchange, counter % 10000, counter % 300)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

-- The pacing of the latency runs and the exact percentiles: shared with the other load scripts.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_common.lua")
