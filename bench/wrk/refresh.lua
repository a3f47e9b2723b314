-- POST /v1/token/refresh, every request presenting a refresh token never presented before.
--   wrk ... -s refresh.lua URL -- REFRESH_TOKENS_FILE THREADS
-- The threads split the seeded list (no token is shared between threads). Each thread
-- uses its seeded tokens first, in order, and queues every successor a 200 answer
-- hands back behind them, as a client would keep the rotated token; a successor is
-- presented once, later. So no refresh token is ever presented twice, and the run
-- cannot run dry however fast the server is.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

setup = common.setup

local queue, head, tail = {}, 1, 0
-- Globals, read by done() through thread:get(): seeded tokens, tokens presented so far.
seeded, presented = 0, 0
local json = { ["Content-Type"] = "application/json" }

function init(args)
  queue = common.lines(args[1], thread_id, tonumber(args[2]))
  tail = #queue
  seeded = tail
end

function request()
  local token = "exhausted"
  if head <= tail then
    token = queue[head]
    queue[head] = nil
    head = head + 1
  end
  presented = head - 1
  return wrk.format("POST", "/v1/token/refresh", json, '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  if status == 200 then
    local successor = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if successor then
      tail = tail + 1
      queue[tail] = successor
    end
  end
end

function done(summary, latency, requests)
  common.done(summary, latency, requests)
  local presented, seeded_total, from_seed = 0, 0, 0
  for _, t in ipairs(common.threads()) do
    local p, s = t:get("presented") or 0, t:get("seeded") or 0
    presented = presented + p
    seeded_total = seeded_total + s
    from_seed = from_seed + math.min(p, s)
  end
  io.write(string.format("BENCH_NOTE seeded tokens presented %d of %d; successors presented %d\n",
    from_seed, seeded_total, presented - from_seed))
end
