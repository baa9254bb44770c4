#!/usr/bin/env bash
# Walk through tokenvault on a CSV file of card numbers: tokenize every
# number, detokenize the tokens back and compare, then suspend, activate,
# close and inspect a token.
#
# Usage: ./scripts/walkthrough.sh [CSV]
#
# CSV defaults to testdata/test-pans.csv and must have the header
# brand,pan,length,luhn_valid. The script needs only Go. It builds the command
# into a temporary directory and keeps the vault in a new temporary directory,
# removed at exit, or in $TOKENVAULT_WALKTHROUGH_DIR, which it keeps.
#
# It never prints a card number: only counts, masked numbers such as
# ************1111, and tokens. It exits with status 1 if any number does not
# come back equal or a step does not behave as shown.
set -euo pipefail

fail() {
	echo "walkthrough: $*" >&2
	exit 1
}

step() {
	printf '\n== %s\n' "$*"
}

# Resolve the CSV path against the caller's directory before moving to the
# repository root.
csv="${1:-testdata/test-pans.csv}"
if [[ $# -gt 1 ]]; then
	fail "usage: $0 [CSV]"
fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -eq 0 ]]; then
	csv="$repo/$csv"
elif [[ "$csv" != /* ]]; then
	csv="$PWD/$csv"
fi
[[ -r "$csv" ]] || fail "cannot read the CSV file $csv"
command -v go >/dev/null || fail "go is not on PATH: install Go from https://go.dev/dl/ and run this script again"

# Files in scratch contain card numbers in plain text, so only this user may read
# them, and they are removed at exit.
umask 077
scratch="$(mktemp -d "${TMPDIR:-/tmp}/tokenvault-walkthrough.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

if [[ -n "${TOKENVAULT_WALKTHROUGH_DIR:-}" ]]; then
	vault_dir="$TOKENVAULT_WALKTHROUGH_DIR"
	mkdir -p "$vault_dir"
	vault_dir="$(cd "$vault_dir" && pwd)"
	if [[ -e "$vault_dir/tokenvault.db" ]]; then
		fail "$vault_dir already contains tokenvault.db from an earlier run: remove it or choose an empty directory"
	fi
else
	vault_dir="$scratch/vault"
	mkdir "$vault_dir"
fi

# Keys and database come from the walkthrough's directory only, never from
# the caller's environment.
unset TOKENVAULT_KEYS TOKENVAULT_INDEX_KEY TOKENVAULT_DB

step "Build the command"
(cd "$repo" && go build -o "$scratch/tokenvault" ./cmd/tokenvault)
tv() { "$scratch/tokenvault" "$@"; }
echo "built tokenvault with $(go version | cut -d' ' -f3)"

step "Read the card numbers"
# Split the CSV into numbers that pass the Luhn check and numbers that do not,
# each with its brand. Separators in a number are removed so that it compares
# equal to the digits that detokenize returns.
awk -F, -v luhn="$scratch/luhn" -v nonluhn="$scratch/nonluhn" '
	{ sub(/\r$/, "") }
	NR == 1 {
		# Allow a byte order mark before the header, which is one character
		# or three bytes depending on the awk and the locale.
		header = "brand,pan,length,luhn_valid"
		at = index($0, header)
		if (at == 0 || at > 4 || substr($0, at) != header) {
			print "walkthrough: line 1 of the CSV is not the header brand,pan,length,luhn_valid" > "/dev/stderr"
			exit 1
		}
		next
	}
	$0 == "" { next }
	{
		if (NF != 4) {
			printf "walkthrough: CSV line %d has %d columns, expected 4\n", NR, NF > "/dev/stderr"
			exit 1
		}
		pan = $2
		gsub(/[ -]/, "", pan)
		if (pan !~ /^[0-9]+$/ || length(pan) != $3 + 0) {
			printf "walkthrough: CSV line %d: the pan column is not %s digits\n", NR, $3 > "/dev/stderr"
			exit 1
		}
		valid = tolower($4)
		if (valid == "true") {
			out = luhn
		} else if (valid == "false") {
			out = nonluhn
		} else {
			printf "walkthrough: CSV line %d: luhn_valid is neither true nor false\n", NR > "/dev/stderr"
			exit 1
		}
		print pan > (out ".pans")
		print $1 > (out ".brands")
	}
' "$csv" || exit 1
touch "$scratch/luhn.pans" "$scratch/luhn.brands" "$scratch/nonluhn.pans" "$scratch/nonluhn.brands"

luhn_count=$(wc -l <"$scratch/luhn.pans" | tr -d ' ')
nonluhn_count=$(wc -l <"$scratch/nonluhn.pans" | tr -d ' ')
total=$((luhn_count + nonluhn_count))
[[ $total -gt 0 ]] || fail "the CSV file has no card numbers"
echo "$total card numbers: $luhn_count pass the Luhn check, $nonluhn_count do not"

# masked_table prints brand, masked number and token for the first N lines of
# a brands file, a numbers file and a tokens file.
masked_table() {
	local n=$1 brands=$2 pans=$3 tokens=$4
	paste "$brands" "$pans" "$tokens" | head -n "$n" | awk -F'\t' '{
		stars = ""
		for (i = 1; i <= length($2) - 4; i++) stars = stars "*"
		printf "  %-12s %-20s -> %s\n", $1, stars substr($2, length($2) - 3), $3
	}'
}

cd "$vault_dir"

step "Tokenize the $luhn_count numbers that pass the Luhn check"
echo "\$ tokenvault tokenize < numbers > tokens"
if ! tv tokenize <"$scratch/luhn.pans" >luhn.tokens; then
	fail "tokenize failed for the lines listed above"
fi
[[ $(wc -l <luhn.tokens) -eq $luhn_count ]] || fail "tokenize printed $(wc -l <luhn.tokens) tokens for $luhn_count numbers"
echo "$luhn_count tokens, for example:"
masked_table 4 "$scratch/luhn.brands" "$scratch/luhn.pans" luhn.tokens

if [[ $nonluhn_count -gt 0 ]]; then
	step "Tokenize the $nonluhn_count numbers that fail the Luhn check"
	echo "\$ tokenvault tokenize < numbers   # rejected without --allow-non-luhn:"
	if tv tokenize <"$scratch/nonluhn.pans" >/dev/null 2>"$scratch/rejected.err"; then
		fail "tokenize accepted numbers that fail the Luhn check without --allow-non-luhn"
	fi
	sed 's/^/  /' "$scratch/rejected.err"
	echo "\$ tokenvault tokenize --allow-non-luhn < numbers > tokens"
	if ! tv tokenize --allow-non-luhn <"$scratch/nonluhn.pans" >nonluhn.tokens; then
		fail "tokenize --allow-non-luhn failed for the lines listed above"
	fi
	masked_table "$nonluhn_count" "$scratch/nonluhn.brands" "$scratch/nonluhn.pans" nonluhn.tokens
else
	: >nonluhn.tokens
fi

step "Detokenize all $total tokens and compare with the input"
cat luhn.tokens nonluhn.tokens >all.tokens
cat "$scratch/luhn.pans" "$scratch/nonluhn.pans" >"$scratch/all.pans"
echo "\$ tokenvault detokenize < tokens > numbers   # compared here, not printed"
if ! tv detokenize <all.tokens >"$scratch/detokenized.pans"; then
	fail "detokenize failed for the lines listed above"
fi
matched=$(paste "$scratch/all.pans" "$scratch/detokenized.pans" | awk -F'\t' '$1 == $2 { n++ } END { print n + 0 }')
same_as_number=$(paste "$scratch/all.pans" all.tokens | awk -F'\t' '$1 == $2 { n++ } END { print n + 0 }')
echo "$matched of $total values equal the input, in the same order"
echo "$same_as_number of $total tokens equal their card number"
[[ $same_as_number -eq 0 ]] || fail "$same_as_number tokens equal their card number"

step "Suspend, activate and close one token"
token=$(head -n 1 luhn.tokens)
first_masked=$(masked_table 1 "$scratch/luhn.brands" "$scratch/luhn.pans" luhn.tokens | awk '{ print $2 }')
first_pan=$(head -n 1 "$scratch/luhn.pans")
echo "token $token is the token of $first_masked"

# expect_detokenize_fails runs detokenize on the token, which must fail with
# a message containing $1, and shows that message.
expect_detokenize_fails() {
	if echo "$token" | tv detokenize >/dev/null 2>"$scratch/detokenize.err"; then
		fail "detokenize succeeded for a token that is $1"
	fi
	grep -q "token is $1" "$scratch/detokenize.err" || fail "detokenize did not report that the token is $1"
	echo "  detokenize fails: $(head -n 1 "$scratch/detokenize.err")"
}

# expect_detokenize_works runs detokenize on the token, whose value must be
# the first card number.
expect_detokenize_works() {
	echo "$token" | tv detokenize >"$scratch/one.pan" || fail "detokenize failed for an active token"
	[[ "$(cat "$scratch/one.pan")" == "$first_pan" ]] || fail "detokenize returned another value"
	echo "  detokenize works: the value equals $first_masked"
}

echo "\$ tokenvault suspend --reason 'card reported lost' --actor walkthrough $token"
tv suspend --reason "card reported lost" --actor walkthrough "$token"
expect_detokenize_fails suspended

echo "\$ tokenvault activate --reason 'card found' --actor walkthrough $token"
tv activate --reason "card found" --actor walkthrough "$token"
expect_detokenize_works

echo "\$ tokenvault close --reason 'account closed' --actor walkthrough $token"
tv close --reason "account closed" --actor walkthrough "$token"
expect_detokenize_fails closed

if tv activate "$token" 2>"$scratch/activate.err"; then
	fail "activate succeeded for a closed token"
fi
echo "  activate fails: $(head -n 1 "$scratch/activate.err")"

step "Inspect the closed token: state, metadata and history, never the value"
echo "\$ tokenvault inspect $token"
tv inspect "$token" | tee "$scratch/inspect.json"
if grep -q "$first_pan" "$scratch/inspect.json"; then
	fail "inspect printed the card number"
fi

step "Summary"
echo "$matched of $total card numbers tokenized and detokenized back"
echo "suspended, activated and closed tokens behaved as expected"
if [[ -n "${TOKENVAULT_WALKTHROUGH_DIR:-}" ]]; then
	echo "the vault stays in $vault_dir (tokenvault.db, with its key beside it in tokenvault.key)"
fi
[[ $matched -eq $total ]] || fail "$((total - matched)) of $total card numbers did not come back equal"
