-- POST /v1/introspect (RFC 7662, JSON body) of the next access token, with the admin key.
--   wrk ... -s introspect.lua URL -- TOKENS_FILE ADMIN_KEY
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

setup = common.setup
done = common.done

local reqs, n, i = {}, 0, 0

function init(args)
  local headers = { ["Authorization"] = "Bearer " .. args[2], ["Content-Type"] = "application/json" }
  for k, token in ipairs(common.lines(args[1])) do
    reqs[k] = wrk.format("POST", "/v1/introspect", headers, '{"token":"' .. token .. '"}')
  end
  n = #reqs
  i = (thread_id * 997) % n
end

function request()
  i = i % n + 1
  return reqs[i]
end
