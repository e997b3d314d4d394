-- POST /api/checkout, each request for a project no other request names.
local report = dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

setup = report.setup
done = report.done

local headers = { ["Content-Type"] = "application/json" }

function request()
   local body = '{"project_id":"' .. report.next_project() .. '"}'
   return wrk.format("POST", "/api/checkout", headers, body)
end
