-- GET /health; only the report is scripted (no request() function, so wrk stays static).
local report = dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

setup = report.setup
done = report.done
