-- Shared by the benchmark scripts (loaded with dofile from the script's own folder):
-- thread numbering, token files, and the one parseable result line.
local common = {}

local threads = {}

-- wrk calls setup() in the main Lua state once per thread, before that thread's init().
function common.setup(thread)
  thread:set("thread_id", #threads)
  threads[#threads + 1] = thread
end

function common.threads()
  return threads
end

-- The non-empty lines of a file; with (part, parts) only every parts-th line from part
-- on (0-based), so threads can split one list between them without sharing a line.
function common.lines(path, part, parts)
  local f = assert(io.open(path, "r"), "cannot open " .. tostring(path))
  local out, i = {}, 0
  for line in f:lines() do
    if line ~= "" then
      if parts == nil or i % parts == part then
        out[#out + 1] = line
      end
      i = i + 1
    end
  end
  f:close()
  assert(#out > 0, "no lines in " .. path)
  return out
end

-- done() runs once in the main state. Latencies are in microseconds.
function common.done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_s=%.3f rps=%.1f p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f mean_us=%.0f non2xx=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    e.status, e.connect, e.read, e.write, e.timeout))
end

return common
