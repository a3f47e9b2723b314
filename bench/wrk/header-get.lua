-- GET a path, each request carrying the next credential from a file in one header.
--   wrk ... -s header-get.lua URL -- FILE HEADER [PREFIX] [PATH]
-- sessiond / ceiling: FILE of access tokens, HEADER Authorization, PREFIX "Bearer ".
-- tower-sessions-ref: FILE of "id=..." lines, HEADER Cookie, PREFIX "".
-- Every thread walks the whole list from its own offset, so all credentials are in play.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

setup = common.setup
done = common.done

local reqs, n, i = {}, 0, 0

function init(args)
  local header, prefix, path = args[2], args[3] or "", args[4] or "/v1/session"
  for k, cred in ipairs(common.lines(args[1])) do
    reqs[k] = wrk.format("GET", path, { [header] = prefix .. cred })
  end
  n = #reqs
  i = (thread_id * 997) % n
end

function request()
  i = i % n + 1
  return reqs[i]
end
