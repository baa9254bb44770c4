#!/usr/bin/env bash
# Measure POST /tokenize and POST /detokenize over HTTP with wrk, for
# `tokenvault serve` and for the reference Python service, side by side.
#
# Usage: ./scripts/bench-http.sh [DURATION]
#
# DURATION is the length of each wrk run, such as 15s (the default). Each run
# is wrk -t2 -c64, which $WRK_THREADS and $WRK_CONNECTIONS change.
#
# The script installs what it needs and lacks with apt-get: wrk, and for the
# reference service python3-flask, python3-flask-sqlalchemy and
# python3-cryptography. It runs the reference service from $REFERENCE_DIR
# (default: shared/peers/seed_reference beside the repository) with
# /usr/bin/python3, and skips it with a message if that directory does not
# exist.
#
# tokenvault runs as in production: every tokenization is synced to disk
# before the response, authentication is on (with a key that the script
# creates), and the audit log goes to a file. Both servers keep their data in
# a temporary directory, removed at exit with everything the script started.
#
# The floor is scripts/httpfloor, a net/http server that responds to every
# request with a fixed token and does nothing else. The script measures it
# first, with the tokenize script.
#
# tokenvault's POST /tokenize runs twice: with the old service's request
# ({"data": N}, an opaque token) and with "type": "card" (a card-shaped
# token). Each run sends distinct generated card numbers (scripts/wrk/).
#
# Before the detokenize runs, the script tokenizes 1,000 card numbers on each
# server, and wrk cycles through those tokens.
set -euo pipefail

fail() {
	echo "bench-http: $*" >&2
	exit 1
}

duration="${1:-15s}"
[[ $# -le 1 ]] || fail "usage: $0 [DURATION]"
[[ "$duration" =~ ^[0-9]+[smh]?$ ]] || fail "invalid DURATION $duration: expected a wrk duration such as 15s"
threads="${WRK_THREADS:-2}"
connections="${WRK_CONNECTIONS:-64}"
prepared_tokens=1000

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reference_dir="${REFERENCE_DIR:-$repo/../shared/peers/seed_reference}"
python=/usr/bin/python3
command -v go >/dev/null || fail "go is not on PATH: install Go from https://go.dev/dl/ and run this script again"
command -v curl >/dev/null || fail "curl is not on PATH: install it (apt-get install curl) and run this script again"

# The temporary directory contains an API key secret and key files.
umask 077
tmp="$(mktemp -d)"
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# install_missing installs the Debian packages among its arguments that are
# not installed.
install_missing() {
	local missing=()
	for pkg in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$pkg")
		fi
	done
	[[ ${#missing[@]} -eq 0 ]] && return 0

	echo "== installing ${missing[*]}"
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null || fail "${missing[*]} not installed, and installing needs root or sudo"
		sudo=(sudo)
	fi
	command -v apt-get >/dev/null || fail "${missing[*]} not installed, and apt-get is not available: install them by hand"
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

run_reference=1
if [[ ! -d "$reference_dir" ]]; then
	echo "bench-http: reference service directory $reference_dir does not exist; skipping the reference (set REFERENCE_DIR to run it)"
	run_reference=0
fi
packages=()
command -v wrk >/dev/null || packages+=(wrk)
if [[ $run_reference -eq 1 ]]; then
	packages+=(python3-flask python3-flask-sqlalchemy python3-cryptography)
fi
install_missing "${packages[@]}"
command -v wrk >/dev/null || fail "wrk is still not on PATH after installing"

echo "== building tokenvault and the floor server"
(cd "$repo" && go build -o "$tmp/tokenvault" ./cmd/tokenvault && go build -o "$tmp/httpfloor" ./scripts/httpfloor)

# free_port prints a TCP port that is free on 127.0.0.1 now. It picks one
# below the kernel's range of ephemeral ports, because wrk's connections and
# their TIME_WAIT sockets hold ports of that range without listening on them.
free_port() {
	local port low=32768
	if [[ -r /proc/sys/net/ipv4/ip_local_port_range ]]; then
		read -r low _ </proc/sys/net/ipv4/ip_local_port_range
	fi
	((low > 21024)) || fail "the ephemeral port range starts at $low, which leaves no port for the reference service between 20000 and it"
	for _ in $(seq 100); do
		port=$((20000 + RANDOM % (low - 20000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	fail "found no free port on 127.0.0.1"
}

# wait_http waits until URL responds to an HTTP request, for at most 30 s,
# and fails if the process PID exits first.
wait_http() {
	local url="$1" pid="$2" log="$3"
	for _ in $(seq 300); do
		if curl -s -o /dev/null "$url"; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || fail "the server exited before it responded; its log $log:
$(tail -n 20 "$log")"
		sleep 0.1
	done
	fail "no answer from $url after 30 s"
}

# prepare_tokens tokenizes $prepared_tokens card numbers at BASE_URL over one
# keep-alive connection and writes the tokens to FILE, one per line.
# AUTHORIZATION is the Authorization header value, or "".
prepare_tokens() {
	local base_url="$1" authorization="$2" file="$3"
	local config="$tmp/prepare.curl"
	: >"$config"
	if [[ -n "$authorization" ]]; then
		printf 'header = "Authorization: %s"\n' "$authorization" >>"$config"
	fi
	for _ in $(seq "$prepared_tokens"); do
		printf 'url = "%s/tokenize"\n' "$base_url" >>"$config"
	done
	curl -sS -K "$config" -H 'Content-Type: application/json' \
		-d '{"data":"4111111111111111","type":"card"}' -w '\n' |
		sed -n 's/.*"token": *"\([^"]*\)".*/\1/p' >"$file"
	rm -f "$config"
	local count
	count=$(wc -l <"$file")
	[[ $count -eq $prepared_tokens ]] || fail "tokenized $count of $prepared_tokens card numbers at $base_url"
}

# cpu_ticks prints the user and system CPU time of process PID, in clock
# ticks.
cpu_ticks() {
	awk '{print $14 + $15}' "/proc/$1/stat"
}

# bench runs wrk with SCRIPT against BASE_URL, where process PID serves, and
# appends a row to the table. AUTHORIZATION is the Authorization header
# value, or "". TYPE, for tokenize.lua, is "card" for card-shaped tokens or
# "" for the old service's request.
results=()
bench() {
	local target="$1" endpoint="$2" base_url="$3" script="$4" authorization="$5" pid="$6" type="${7:-}"
	echo "== $target $endpoint: wrk -t$threads -c$connections -d$duration (load average before:$(cut -d' ' -f1-3 /proc/loadavg | sed 's/^/ /'))"
	local output ticks_before ticks_after start end
	ticks_before=$(cpu_ticks "$pid")
	start=$(date +%s.%N)
	output=$(BENCH_AUTHORIZATION="$authorization" BENCH_TOKENS="$tmp/tokens-$target" BENCH_TYPE="$type" \
		wrk -t"$threads" -c"$connections" -d"$duration" -s "$repo/scripts/wrk/$script" "$base_url")
	end=$(date +%s.%N)
	ticks_after=$(cpu_ticks "$pid")
	echo "$output" | grep -v '^RESULT' | sed 's/^/   /'
	local line cores
	line=$(echo "$output" | grep '^RESULT') || fail "wrk printed no RESULT line for $target $endpoint"
	# The server's CPU use in cores: CPU seconds over wall-clock seconds.
	cores=$(awk -v t=$((ticks_after - ticks_before)) -v hz="$(getconf CLK_TCK)" -v s="$start" -v e="$end" \
		'BEGIN {printf "%.2f", t / hz / (e - s)}')
	results+=("$target $endpoint ${line#RESULT } server_cores=$cores")
}

# --- floor
echo "== starting the floor server"
"$tmp/httpfloor" >"$tmp/floor.out" 2>&1 &
floor_pid=$!
pids+=("$floor_pid")
floor_address=""
for _ in $(seq 300); do
	floor_address=$(head -n 1 "$tmp/floor.out")
	[[ -n "$floor_address" ]] && break
	kill -0 "$floor_pid" 2>/dev/null || fail "the floor server exited: $(cat "$tmp/floor.out")"
	sleep 0.1
done
[[ -n "$floor_address" ]] || fail "the floor server printed no address after 30 s"
bench floor tokenize "http://$floor_address" tokenize.lua "" "$floor_pid"
kill "$floor_pid"

# --- tokenvault
echo "== starting tokenvault serve"
keys="$tmp/bench.apikeys"
secret=$("$tmp/tokenvault" apikey create --api-keys "$keys" --name bench --role tokenize,detokenize |
	grep -o 'tvk_[0-9a-f]*_[A-Za-z0-9_-]*') || fail "tokenvault apikey create printed no secret"
"$tmp/tokenvault" serve --addr 127.0.0.1:0 --db "$tmp/bench.db" --api-keys "$keys" \
	--audit-log "$tmp/audit.log" 2>"$tmp/serve.log" &
serve_pid=$!
pids+=("$serve_pid")
address=""
for _ in $(seq 300); do
	address=$(sed -n 's/.*"msg":"listening".*"address":"\([^"]*\)".*/\1/p' "$tmp/serve.log")
	[[ -n "$address" ]] && break
	kill -0 "$serve_pid" 2>/dev/null || fail "tokenvault serve exited; its log:
$(tail -n 20 "$tmp/serve.log")"
	sleep 0.1
done
[[ -n "$address" ]] || fail "tokenvault serve logged no listening address after 30 s"
tokenvault_url="http://$address"
prepare_tokens "$tokenvault_url" "Bearer $secret" "$tmp/tokens-tokenvault"
bench tokenvault tokenize "$tokenvault_url" tokenize.lua "Bearer $secret" "$serve_pid"
bench tokenvault tokenize-card "$tokenvault_url" tokenize.lua "Bearer $secret" "$serve_pid" card
bench tokenvault detokenize "$tokenvault_url" detokenize.lua "Bearer $secret" "$serve_pid"
kill -TERM "$serve_pid"
wait "$serve_pid" || fail "tokenvault serve exited with status $? after SIGTERM; its log: $tmp/serve.log"

# --- reference
if [[ $run_reference -eq 1 ]]; then
	echo "== starting the reference service"
	port=$(free_port)
	(cd "$reference_dir" && exec "$python" tokenization_service.py --port "$port" --db "$tmp/reference.db") \
		>"$tmp/reference.log" 2>&1 &
	reference_pid=$!
	pids+=("$reference_pid")
	reference_url="http://127.0.0.1:$port"
	wait_http "$reference_url/" "$reference_pid" "$tmp/reference.log"
	prepare_tokens "$reference_url" "" "$tmp/tokens-reference"
	bench reference tokenize "$reference_url" tokenize.lua "" "$reference_pid"
	bench reference detokenize "$reference_url" detokenize.lua "" "$reference_pid"
fi

# --- table
echo
echo "wrk -t$threads -c$connections -d$duration, $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(date -u +%Y-%m-%d)"
printf '%-11s %-13s %12s %8s %8s %8s %14s %13s\n' target endpoint "requests/s" "p50 ms" "p99 ms" non-2xx "socket errors" "server cores"
status=0
failed_rows=()
for row in "${results[@]}"; do
	read -r target endpoint fields <<<"$row"
	declare -A f=()
	for kv in $fields; do
		f[${kv%%=*}]=${kv#*=}
	done
	printf '%-11s %-13s %12s %8s %8s %8s %14s %13s\n' "$target" "$endpoint" "${f[rps]}" "${f[p50_ms]}" "${f[p99_ms]}" "${f[non2xx]}" "${f[socket_errors]}" "${f[server_cores]}"
	if [[ ${f[non2xx]} -ne 0 || ${f[socket_errors]} -ne 0 ]]; then
		failed_rows+=("$target $endpoint")
		# The reference service's failures under this load are part of its
		# result; tokenvault's are a defect.
		[[ $target == tokenvault ]] && status=1
	fi
	unset f
done
if [[ ${#failed_rows[@]} -gt 0 ]]; then
	echo "bench-http: requests failed in: ${failed_rows[*]}. Socket errors include wrk's 2 s timeout. Requests/s counts failed requests too." >&2
fi
exit "$status"
