-- POST /v1/auth/password of seeded users, in turn (one argon2id verification each).
--   wrk ... -s login.lua URL -- EMAILS_FILE PASSWORD
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

setup = common.setup
done = common.done

local reqs, n, i = {}, 0, 0

function init(args)
  local json = { ["Content-Type"] = "application/json" }
  for k, email in ipairs(common.lines(args[1])) do
    reqs[k] = wrk.format("POST", "/v1/auth/password", json,
      '{"email":"' .. email .. '","password":"' .. args[2] .. '"}')
  end
  n = #reqs
  i = (thread_id * 97) % n
end

function request()
  i = i % n + 1
  return reqs[i]
end
