-- Shared by the bench's wrk scripts: done() prints one line that bench/wrk.py parses.
-- Each script keeps its per-thread state in globals; `sent` is read back from every thread.
local report = {}
local threads = {}

function report.setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

-- A project no other request names, <$BENCH_PREFIX><thread>-<n>, counting the request in
-- `sent` (the scripts that POST a checkout, to the service or straight to the stand-in).
local prefix = os.getenv("BENCH_PREFIX") or ""

function report.next_project()
   sent = (sent or 0) + 1
   return prefix .. tid .. "-" .. sent
end

function report.done(summary, latency, _requests)
   local sent, wrapped = {}, 0
   for _, thread in ipairs(threads) do
      table.insert(sent, tostring(thread:get("sent") or 0))
      wrapped = wrapped + (thread:get("wrapped") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,'
         .. '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,'
         .. '"p99_us":%d,"max_us":%d,"mean_us":%.1f,"sent":[%s],"wrapped":%d}\n',
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean, table.concat(sent, ","), wrapped))
end

return report
