-- POST /v1/token/validate (JSON body) of the next access token; no credentials needed.
--   wrk ... -s validate.lua URL -- TOKENS_FILE
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

setup = common.setup
done = common.done

local reqs, n, i = {}, 0, 0

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  for k, token in ipairs(common.lines(args[1])) do
    reqs[k] = wrk.format("POST", "/v1/token/validate", headers, '{"token":"' .. token .. '"}')
  end
  n = #reqs
  i = (thread_id * 997) % n
end

function request()
  i = i % n + 1
  return reqs[i]
end
