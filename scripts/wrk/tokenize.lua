-- wrk script: POST /tokenize with published test card numbers, in turn.
--
-- The environment variable BENCH_AUTHORIZATION, if set, is sent as the
-- Authorization header, such as "Bearer tvk_...". The body also carries
-- "type": "card", which tokenvault reads and the reference service ignores.
--
-- done() prints one line that scripts/bench-http.sh parses:
-- RESULT requests=N rps=N p50_ms=N p99_ms=N non2xx=N socket_errors=N

local cards = { "4111111111111111", "5555555555554444", "378282246310005", "6011111111111117" }

local headers = { ["Content-Type"] = "application/json" }
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization and authorization ~= "" then
	headers["Authorization"] = authorization
end

-- Each thread formats its requests once, so that the client spends its time
-- sending them.
local requests = {}
local next_request = 0

function init(args)
	for i, card in ipairs(cards) do
		local body = '{"data":"' .. card .. '","type":"card"}'
		requests[i] = wrk.format("POST", "/tokenize", headers, body)
	end
end

function request()
	next_request = next_request % #requests + 1
	return requests[next_request]
end

function done(summary, latency, _)
	local seconds = summary.duration / 1e6
	local errors = summary.errors
	io.write(string.format("RESULT requests=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f non2xx=%d socket_errors=%d\n",
		summary.requests, summary.requests / seconds,
		latency:percentile(50) / 1000, latency:percentile(99) / 1000,
		errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end
