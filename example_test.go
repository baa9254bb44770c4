package tokenvault_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/tokenvault/tokenvault"
)

// openExampleVault opens a vault in a temporary directory. Real programs load
// their keys with tokenvault.KeyRingFromEnv or tokenvault.LoadKeyFile from a
// secret store; never hardcode keys, and never keep them beside the database.
func openExampleVault() (*tokenvault.Vault, func()) {
	dir, err := os.MkdirTemp("", "tokenvault-example")
	if err != nil {
		log.Fatal(err)
	}
	keys, err := tokenvault.GenerateKeyRing()
	if err != nil {
		log.Fatal(err)
	}
	v, err := tokenvault.Open(filepath.Join(dir, "vault.db"), keys)
	if err != nil {
		log.Fatal(err)
	}
	return v, func() { v.Close(); os.RemoveAll(dir) }
}

func Example() {
	v, cleanup := openExampleVault()
	defer cleanup()
	ctx := context.Background()

	token, err := v.TokenizeCard(ctx, "4111 1111 1111 1111")
	if err != nil {
		log.Fatal(err)
	}
	card, err := v.DetokenizeCard(ctx, token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(card) // a CardNumber prints masked; card.Digits() reveals it
	// Output: ************1111
}

func ExampleVault_TokenizeCard() {
	v, cleanup := openExampleVault()
	defer cleanup()
	ctx := context.Background()

	token, err := v.TokenizeCard(ctx, "5555-5555-5555-4444", tokenvault.WithFormat(tokenvault.FormatCardFirstSix))
	if err != nil {
		log.Fatal(err)
	}
	card, err := tokenvault.ParseCardNumber(token)
	fmt.Println("digits:", len(token))
	fmt.Println("first six and last four kept:", token[:6], token[12:])
	fmt.Println("passes the Luhn check:", err == nil && card.LuhnValid())
	// Output:
	// digits: 16
	// first six and last four kept: 555555 4444
	// passes the Luhn check: false
}

func ExampleVault_Tokenize() {
	v, cleanup := openExampleVault()
	defer cleanup()
	ctx := context.Background()

	token, err := v.Tokenize(ctx, []byte("DE89 3704 0044 0532 0130 00"), tokenvault.Deterministic("payouts"))
	if err != nil {
		log.Fatal(err)
	}
	again, _ := v.Tokenize(ctx, []byte("DE89 3704 0044 0532 0130 00"), tokenvault.Deterministic("payouts"))
	fmt.Println("opaque token prefix:", token[:4])
	fmt.Println("same token for the same value:", token == again)
	// Output:
	// opaque token prefix: tok_
	// same token for the same value: true
}

func ExampleVault_SuspendToken() {
	v, cleanup := openExampleVault()
	defer cleanup()
	ctx := context.Background()

	token, _ := v.TokenizeCard(ctx, "4242424242424242")
	if err := v.SuspendToken(ctx, token, tokenvault.WithReason("card reported lost"), tokenvault.WithActor("support-42")); err != nil {
		log.Fatal(err)
	}
	_, err := v.Detokenize(ctx, token)
	fmt.Println("suspended:", errors.Is(err, tokenvault.ErrSuspended))

	v.ActivateToken(ctx, token)
	v.CloseToken(ctx, token, tokenvault.WithReason("card replaced"))
	_, err = v.Detokenize(ctx, token)
	fmt.Println("closed:", errors.Is(err, tokenvault.ErrClosed))

	err = v.ActivateToken(ctx, token)
	fmt.Println("closed is final:", errors.Is(err, tokenvault.ErrClosed))
	// Output:
	// suspended: true
	// closed: true
	// closed is final: true
}

func ExampleVault_Inspect() {
	v, cleanup := openExampleVault()
	defer cleanup()
	ctx := context.Background()

	token, _ := v.TokenizeCard(ctx, "378282246310005")
	v.SuspendToken(ctx, token, tokenvault.WithReason("chargeback"))
	info, err := v.Inspect(ctx, token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.State, info.Brand, info.Last4)
	for _, change := range info.History {
		fmt.Printf("%s -> %s (%s)\n", change.From, change.To, change.Reason)
	}
	// Output:
	// suspended amex 0005
	// active -> suspended (chargeback)
}

func ExampleParseCardNumber() {
	card, err := tokenvault.ParseCardNumber("4012 8888 8888 1881")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(card, card.Brand())

	_, err = tokenvault.ParseCardNumber("4012 8888 8888 1882")
	fmt.Println(err)
	// Output:
	// ************1881 visa
	// tokenvault: invalid card number: fails the Luhn check (use AllowNonLuhn to accept it)
}

func ExampleVault_Rewrap() {
	dir, _ := os.MkdirTemp("", "tokenvault-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "vault.db")
	ctx := context.Background()

	oldKeys, _ := tokenvault.GenerateKeyRing()
	v, _ := tokenvault.Open(path, oldKeys)
	token, _ := v.Tokenize(ctx, []byte("account 12345678"))
	v.Close()

	// Rotate: a new primary key first, the old key after it until Rewrap
	// has moved every record.
	newKeys, _ := oldKeys.Rotate()
	v, _ = tokenvault.Open(path, newKeys)
	report, err := v.Rewrap(ctx, &tokenvault.RewrapOptions{RetireKeys: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("rewrapped:", report.Rewrapped, "left under the old key:", report.Remaining[oldKeys.Primary()])
	v.Close()

	onlyNew, _ := newKeys.Without(oldKeys.Primary())
	v, err = tokenvault.Open(path, onlyNew)
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	value, _ := v.Detokenize(ctx, token)
	fmt.Println(string(value))
	// Output:
	// rewrapped: 1 left under the old key: 0
	// account 12345678
}

func ExampleVault_TokenizeCardBatch() {
	v, cleanup := openExampleVault()
	defer cleanup()
	ctx := context.Background()

	pans := []string{"4111111111111111", "4111111111111112", "5555555555554444"}
	results, err := v.TokenizeCardBatch(ctx, pans)
	if err != nil {
		log.Fatal(err) // the whole call failed, such as a failed commit
	}
	var tokens []string
	for i, r := range results {
		if r.Err != nil {
			fmt.Printf("number %d: %v\n", i, r.Err) // errors never contain the number
			continue
		}
		tokens = append(tokens, r.Token)
	}

	values, err := v.DetokenizeBatch(ctx, append(tokens, "4111000000001111"))
	if err != nil {
		log.Fatal(err)
	}
	for i, r := range values {
		fmt.Printf("token %d: %v\n", i, r) // a result prints the value's length only
	}
	// Output:
	// number 1: tokenvault: invalid card number: fails the Luhn check (use AllowNonLuhn to accept it)
	// token 0: {value: 16 bytes}
	// token 1: {value: 16 bytes}
	// token 2: {error: tokenvault: token not found}
}
