-- POST /v1/checkout/sessions straight to the Stripe stand-in, the request the service sends
-- for a checkout (same parameters, a new project and Idempotency-Key each time): what the
-- stand-in can answer by itself at this concurrency, the practical ceiling of the checkout.
local report = dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

setup = report.setup
done = report.done

local auth = "Bearer " .. os.getenv("BENCH_STRIPE_KEY")
local price = os.getenv("BENCH_PRICE_ID")
local expires_at = tostring(os.time() + 3600)

local function encode(value)
   return (value:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function request()
   local project = report.next_project()
   local body = "mode=payment&line_items[0][price]=" .. price .. "&line_items[0][quantity]=1"
      .. "&success_url=" .. encode("https://bench.example/paid?session={CHECKOUT_SESSION_ID}")
      .. "&cancel_url=" .. encode("https://bench.example/cancelled")
      .. "&client_reference_id=" .. project
      .. "&metadata[project_id]=" .. project
      .. "&payment_intent_data[metadata][project_id]=" .. project
      .. "&expires_at=" .. expires_at
   local headers = {
      ["Authorization"] = auth,
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Idempotency-Key"] = "bench-" .. project,
   }
   return wrk.format("POST", "/v1/checkout/sessions", headers, body)
end
