-- POST /api/checkout, each request for a project no other request names:
-- <$BENCH_PREFIX><thread>-<n>.
local report = dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

setup = report.setup
done = report.done

local prefix = os.getenv("BENCH_PREFIX")
local headers = { ["Content-Type"] = "application/json" }

function init(_args)
   sent = 0
   wrapped = 0
end

function request()
   sent = sent + 1
   local body = '{"project_id":"' .. prefix .. tid .. "-" .. sent .. '"}'
   return wrk.format("POST", "/api/checkout", headers, body)
end
