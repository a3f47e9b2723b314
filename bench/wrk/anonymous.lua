-- POST /v1/sessions/anonymous: every request creates a session (a write, a signature).
--   wrk ... -s anonymous.lua URL
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

setup = common.setup
done = common.done

local req

function init(args)
  req = wrk.format("POST", "/v1/sessions/anonymous",
    { ["Content-Type"] = "application/json" }, '{"device":{"label":"wrk"}}')
end

function request()
  return req
end
