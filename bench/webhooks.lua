-- Replays pre-signed Stripe webhooks, each request a different event. bench/webhooks.py writes
-- one file per wrk thread ($BENCH_DATA.<thread>), one "<Stripe-Signature>\t<body>" a line;
-- every request is formatted once at init, so request() only hands out the next one.
local report = dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

setup = report.setup
done = report.done

function init(_args)
   reqs = {}
   local file = assert(io.open(os.getenv("BENCH_DATA") .. "." .. tid, "r"))
   for line in file:lines() do
      local tab = line:find("\t", 1, true)
      reqs[#reqs + 1] = wrk.format("POST", "/webhooks/stripe", {
         ["Content-Type"] = "application/json",
         ["Stripe-Signature"] = line:sub(1, tab - 1),
      }, line:sub(tab + 1))
   end
   file:close()
   sent = 0
   wrapped = 0
end

function request()
   sent = sent + 1
   if sent > #reqs then
      -- Out of distinct events: a repeat would be a duplicate delivery. bench/webhooks.py fails the
      -- round when this happens, so this only keeps wrk alive until the end.
      wrapped = 1
      return reqs[((sent - 1) % #reqs) + 1]
   end
   return reqs[sent]
end
