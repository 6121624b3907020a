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

-- The pacing of the latency runs and the exact percentiles: shared with the other load scripts.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_common.lua")
