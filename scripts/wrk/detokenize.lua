-- wrk script: POST /detokenize, cycling through the tokens in a file.
--
-- The environment variable BENCH_TOKENS is the path of a file with one token
-- per line, made beforehand by tokenizing; BENCH_AUTHORIZATION, if set, is
-- sent as the Authorization header. Each thread starts at a different token.
--
-- done() prints one line that scripts/bench-http.sh parses:
-- RESULT requests=N rps=N p50_ms=N p99_ms=N non2xx=N socket_errors=N

local headers = { ["Content-Type"] = "application/json" }
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization and authorization ~= "" then
	headers["Authorization"] = authorization
end

local requests = {}
local next_request = 0

function setup(thread)
	thread:set("offset", tostring(math.random(1, 1000000)))
end

function init(args)
	local path = os.getenv("BENCH_TOKENS")
	if not path or path == "" then
		error("BENCH_TOKENS is not set: set it to a file with one token per line")
	end
	for token in io.lines(path) do
		if token ~= "" then
			local body = '{"token":"' .. token .. '"}'
			requests[#requests + 1] = wrk.format("POST", "/detokenize", headers, body)
		end
	end
	if #requests == 0 then
		error("BENCH_TOKENS file " .. path .. " has no tokens")
	end
	next_request = tonumber(offset or "0") % #requests
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
