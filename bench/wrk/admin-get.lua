-- GET the next path from a file, with the admin key (the admin user list).
--   wrk ... -s admin-get.lua URL -- ADMIN_KEY PATHS_FILE
-- PATHS_FILE holds one path with its query per line (e.g. /v1/admin/users?limit=50, or
-- one line per cursor or email); every thread walks the whole list from its own offset.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

setup = common.setup
done = common.done

local reqs, n, i = {}, 0, 0

function init(args)
  local headers = { ["Authorization"] = "Bearer " .. args[1] }
  for k, path in ipairs(common.lines(args[2])) do
    reqs[k] = wrk.format("GET", path, headers)
  end
  n = #reqs
  i = (thread_id * 997) % n
end

function request()
  i = i % n + 1
  return reqs[i]
end
