-- wrk script: POST /tokenize with generated card numbers.
--
-- Each thread generates BENCH_VALUES (default 20000) distinct card numbers
-- that pass the Luhn check, over Visa, Mastercard, American Express and
-- Discover prefixes, and sends them in turn. The server so indexes values
-- it has not seen before, as it would in production. The numbers are
-- random, not known accounts.
--
-- The environment variable BENCH_TYPE selects the body: "card" sends
-- {"data": N, "type": "card"}, for a card-shaped token. Anything else sends
-- {"data": N}, the old service's request, which the reference service
-- takes. BENCH_AUTHORIZATION, if set, is sent as the Authorization header,
-- such as "Bearer tvk_...".
--
-- done() prints one line that scripts/bench-http.sh parses:
-- RESULT requests=N rps=N p50_ms=N p99_ms=N non2xx=N socket_errors=N

-- Issuer prefixes and the length of the numbers that start with them.
local prefixes = {
	{ "4", 16 }, { "51", 16 }, { "53", 16 }, { "55", 16 }, { "2221", 16 },
	{ "34", 15 }, { "37", 15 }, { "6011", 16 },
}

local headers = { ["Content-Type"] = "application/json" }
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization and authorization ~= "" then
	headers["Authorization"] = authorization
end

local requests = {}
local next_request = 0

-- luhn_digit returns the check digit that makes digits (a string) followed by
-- it pass the Luhn check.
local function luhn_digit(digits)
	local sum = 0
	local double = true
	for i = #digits, 1, -1 do
		local d = string.byte(digits, i) - 48
		if double then
			d = d * 2
			if d > 9 then
				d = d - 9
			end
		end
		sum = sum + d
		double = not double
	end
	return (10 - sum % 10) % 10
end

-- card_number returns a random number with a random prefix from prefixes.
local function card_number()
	local p = prefixes[math.random(#prefixes)]
	local digits = { p[1] }
	for _ = #p[1] + 1, p[2] - 1 do
		digits[#digits + 1] = tostring(math.random(0, 9))
	end
	local body = table.concat(digits)
	return body .. luhn_digit(body)
end

function setup(thread)
	thread:set("seed", tostring(math.random(1, 2147483647)))
end

function init(args)
	math.randomseed(tonumber(seed))
	local count = tonumber(os.getenv("BENCH_VALUES") or "") or 20000
	local card = os.getenv("BENCH_TYPE") == "card"
	local seen = {}
	while #requests < count do
		local number = card_number()
		if not seen[number] then
			seen[number] = true
			local body
			if card then
				body = '{"data":"' .. number .. '","type":"card"}'
			else
				body = '{"data":"' .. number .. '"}'
			end
			requests[#requests + 1] = wrk.format("POST", "/tokenize", headers, body)
		end
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
