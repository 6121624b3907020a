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
  local body = string.format(
    '{"name":"Bench Person %d-%d","email":"bench-%d-%d-%d@example.com","phone":"+1 %d%07d","company":"Benchco %d","job_title":"Buyer","utm_source":"bench"}',
    tid, counter, run, tid, counter, 201 + run * 2 + tid, counter, counter % 300)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
