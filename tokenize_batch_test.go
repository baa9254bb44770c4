package tokenvault

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenvault/tokenvault/internal/luhn"
)

// batchCards returns n distinct Luhn-valid 16-digit numbers under a Visa
// test prefix.
func batchCards(n int) []string {
	pans := make([]string, n)
	for i := range pans {
		body := fmt.Sprintf("4000%011d", i)
		pans[i] = body + string(luhn.CheckDigit(body))
	}
	return pans
}

// withoutBatch hides a store's CreateBatch, so that a vault over it takes
// the path for stores that do not implement BatchCreator.
type withoutBatch struct{ Store }

func TestTokenizeCardBatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, s Store, _ *testClock) {
		ctx := t.Context()
		pans := batchCards(2*batchChunkSize + 300)
		pans[7] = "4111111111111112"     // fails the Luhn check
		pans[1500] = "not a card number" // rejected by the parser
		pans[2100] = pans[2099]          // equal values get distinct random tokens

		results, err := v.TokenizeCardBatch(ctx, pans)
		if err != nil {
			t.Fatalf("TokenizeCardBatch err = %v, want nil", err)
		}
		if len(results) != len(pans) {
			t.Fatalf("TokenizeCardBatch returned %d results for %d numbers", len(results), len(pans))
		}

		seen := make(map[string]bool)
		for i, r := range results {
			if i == 7 || i == 1500 {
				if !errors.Is(r.Err, ErrInvalidCardNumber) || r.Token != "" {
					t.Errorf("result %d = %q, %v, want no token and ErrInvalidCardNumber", i, r.Token, r.Err)
				}
				if strings.Contains(r.Err.Error(), pans[i]) {
					t.Errorf("result %d error %q contains the input", i, r.Err)
				}
				continue
			}
			if r.Err != nil {
				t.Fatalf("result %d err = %v, want nil", i, r.Err)
			}
			if seen[r.Token] {
				t.Fatalf("result %d repeats token %s", i, r.Token)
			}
			seen[r.Token] = true
			got, err := v.Detokenize(ctx, r.Token)
			if err != nil || string(got) != pans[i] {
				t.Fatalf("Detokenize(result %d) = %d bytes, %v, want the number tokenized", i, len(got), err)
			}
			if len(r.Token) != 16 || r.Token[12:] != pans[i][12:] {
				t.Fatalf("result %d token %s is not card-shaped with the same last four digits", i, r.Token)
			}
		}

		events, err := s.Events(ctx, 0, len(pans)+10)
		if err != nil {
			t.Fatalf("Events err = %v", err)
		}
		if len(events) != len(seen) {
			t.Errorf("outbox has %d events, want one per token, %d", len(events), len(seen))
		}
		tokens, err := v.TokensForCard(ctx, pans[2099])
		if err != nil || len(tokens) != 2 {
			t.Errorf("TokensForCard(a number given twice) = %d tokens, %v, want 2", len(tokens), err)
		}
	})
}

func TestTokenizeBatchData(t *testing.T) {
	for _, batch := range []bool{true, false} {
		t.Run(fmt.Sprintf("BatchCreator=%t", batch), func(t *testing.T) {
			var s Store = NewMemoryStore()
			if !batch {
				s = withoutBatch{s}
			}
			v := newTestVault(t, s, newTestClock())
			data := [][]byte{[]byte("DE89370400440532013000"), nil, bytes.Repeat([]byte("x"), MaxDataSize+1), []byte("GB82WEST12345698765432")}

			results, err := v.TokenizeBatch(t.Context(), data, ExpiresAfter(24*time.Hour))
			if err != nil {
				t.Fatalf("TokenizeBatch err = %v, want nil", err)
			}
			for _, i := range []int{1, 2} {
				if !errors.Is(results[i].Err, ErrInvalidData) {
					t.Errorf("result %d err = %v, want ErrInvalidData", i, results[i].Err)
				}
			}
			for _, i := range []int{0, 3} {
				if results[i].Err != nil || !strings.HasPrefix(results[i].Token, opaquePrefix) {
					t.Fatalf("result %d = %q, %v, want an opaque token", i, results[i].Token, results[i].Err)
				}
				info, err := v.Inspect(t.Context(), results[i].Token)
				if err != nil || info.Expires.IsZero() {
					t.Errorf("Inspect(result %d) = %+v, %v, want an expiry", i, info, err)
				}
				got, err := v.Detokenize(t.Context(), results[i].Token)
				if err != nil || !bytes.Equal(got, data[i]) {
					t.Errorf("Detokenize(result %d) = %d bytes, %v, want the value tokenized", i, len(got), err)
				}
			}
		})
	}
}

func TestTokenizeBatchDeterministic(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, _ Store, _ *testClock) {
		ctx := t.Context()
		pans := batchCards(40)
		pans = append(pans, pans...)
		before, err := v.TokenizeCard(ctx, pans[3], Deterministic("orders"))
		if err != nil {
			t.Fatalf("TokenizeCard err = %v", err)
		}

		results, err := v.TokenizeCardBatch(ctx, pans, Deterministic("orders"))
		if err != nil {
			t.Fatalf("TokenizeCardBatch err = %v, want nil", err)
		}
		for i := range 40 {
			a, b := results[i], results[i+40]
			if a.Err != nil || b.Err != nil || a.Token != b.Token {
				t.Errorf("results %d and %d = (%q, %v) and (%q, %v), want one token for one value", i, i+40, a.Token, a.Err, b.Token, b.Err)
			}
		}
		if results[3].Token != before {
			t.Errorf("result 3 = %s, want the token made before the batch, %s", results[3].Token, before)
		}
	})
}

// countingStore counts the Create and CreateBatch calls that reach a
// memory store.
type countingStore struct {
	*MemoryStore
	creates, batches atomic.Int64
}

func (s *countingStore) Create(ctx context.Context, rec *Record) error {
	s.creates.Add(1)
	return s.MemoryStore.Create(ctx, rec)
}

func (s *countingStore) CreateBatch(ctx context.Context, recs []*Record) ([]error, error) {
	s.batches.Add(1)
	return s.MemoryStore.CreateBatch(ctx, recs)
}

// TestTokenizeBatchDeterministicCommitsTogether checks that a deterministic
// batch stores its new tokens in one CreateBatch call, and reaches Create
// only to replace an expired token.
func TestTokenizeBatchDeterministicCommitsTogether(t *testing.T) {
	store := &countingStore{MemoryStore: NewMemoryStore()}
	clock := newTestClock()
	v := newTestVault(t, store, clock)
	ctx := t.Context()
	pans := batchCards(3000)
	before, err := v.TokenizeCard(ctx, pans[3], Deterministic("orders"))
	if err != nil {
		t.Fatalf("TokenizeCard err = %v", err)
	}
	store.creates.Store(0)

	results, err := v.TokenizeCardBatch(ctx, append(pans, pans[:100]...), Deterministic("orders"))
	if err != nil {
		t.Fatalf("TokenizeCardBatch err = %v, want nil", err)
	}
	if results[3].Token != before {
		t.Errorf("result 3 = %s, want the token made before the batch, %s", results[3].Token, before)
	}
	for i := range 100 {
		if results[i].Token == "" || results[3000+i].Token != results[i].Token {
			t.Fatalf("results %d and %d = %q and %q, want one token for one value", i, 3000+i, results[i].Token, results[3000+i].Token)
		}
	}
	if n := store.batches.Load(); n != 1 {
		t.Errorf("the batch called CreateBatch %d times, want 1", n)
	}
	if n := store.creates.Load(); n != 0 {
		t.Errorf("the batch called Create %d times, want 0", n)
	}

	// Expired tokens are closed and replaced one value at a time.
	expiring, err := v.TokenizeCardBatch(ctx, pans[:10], Deterministic("short"), ExpiresAfter(time.Hour))
	if err != nil {
		t.Fatalf("TokenizeCardBatch with expiry err = %v", err)
	}
	clock.Advance(2 * time.Hour)
	replaced, err := v.TokenizeCardBatch(ctx, pans[:10], Deterministic("short"), ExpiresAfter(time.Hour))
	if err != nil {
		t.Fatalf("TokenizeCardBatch after the expiry err = %v", err)
	}
	for i := range 10 {
		if replaced[i].Token == "" || replaced[i].Token == expiring[i].Token {
			t.Errorf("result %d after the expiry = %q, want a new token", i, replaced[i].Token)
		}
		if _, err := v.Detokenize(ctx, expiring[i].Token); !errors.Is(err, ErrClosed) {
			t.Errorf("expired token %d: Detokenize err = %v, want ErrClosed", i, err)
		}
	}
	if n := store.creates.Load(); n != 10 {
		t.Errorf("replacing 10 expired tokens called Create %d times, want 10", n)
	}
}

// TestTokenizeBatchDeterministicShortExpiry runs two deterministic batches of
// a few repeated values at once, with an expiry shorter than a commit, on a
// real clock, and checks that every value gets a token. Each batch closes
// the other's expired tokens, which must not keep them from settling.
func TestTokenizeBatchDeterministicShortExpiry(t *testing.T) {
	keys, err := GenerateKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	v, err := Open(filepath.Join(t.TempDir(), "vault.db"), keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })

	values := batchCards(3)
	pans := make([]string, 3000)
	for i := range pans {
		pans[i] = values[i%len(values)]
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for range 5 {
				results, err := v.TokenizeCardBatch(t.Context(), pans, Deterministic(""), ExpiresAfter(time.Millisecond))
				if err != nil {
					t.Errorf("TokenizeCardBatch err = %v, want nil", err)
					return
				}
				for i, r := range results {
					if r.Token == "" {
						t.Errorf("result %d = %v, want a token", i, r.Err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestTokenizeBatchCollisions(t *testing.T) {
	// A 15-digit number in FormatCardFirstSix keeps five random digits, so
	// a thousand tokens of one number draw some tokens twice, within the
	// batch and against earlier batches.
	forEachStore(t, func(t *testing.T, v *Vault, _ Store, _ *testClock) {
		pans := make([]string, 1000)
		for i := range pans {
			pans[i] = "378282246310005"
		}

		seen := make(map[string]bool)
		for round := range 3 {
			results, err := v.TokenizeCardBatch(t.Context(), pans, WithFormat(FormatCardFirstSix))
			if err != nil {
				t.Fatalf("round %d: TokenizeCardBatch err = %v, want nil", round, err)
			}
			for i, r := range results {
				if r.Err != nil {
					t.Fatalf("round %d: result %d err = %v, want nil", round, i, r.Err)
				}
				if seen[r.Token] {
					t.Fatalf("round %d: result %d repeats token %s", round, i, r.Token)
				}
				seen[r.Token] = true
			}
		}
	})
}

func TestTokenizeBatchRejectsOptions(t *testing.T) {
	v := newTestVault(t, NewMemoryStore(), newTestClock())
	// Each call has 3 values, so every case must return 3 results.
	cases := []struct {
		name string
		call func() ([]TokenizeResult, error)
	}{
		{"unknown format", func() ([]TokenizeResult, error) {
			return v.TokenizeCardBatch(t.Context(), batchCards(3), WithFormat(Format(9)))
		}},
		{"card format for data", func() ([]TokenizeResult, error) {
			return v.TokenizeBatch(t.Context(), [][]byte{[]byte("a"), []byte("b"), []byte("c")}, WithFormat(FormatCard))
		}},
		{"expiry in the past", func() ([]TokenizeResult, error) {
			return v.TokenizeCardBatch(t.Context(), batchCards(3), ExpiresAt(newTestClock().Now().Add(-time.Hour)))
		}},
	}
	for _, c := range cases {
		results, err := c.call()
		if !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: err = %v, want ErrInvalidOption", c.name, err)
		}
		if len(results) != 3 {
			t.Errorf("%s: %d results for 3 values", c.name, len(results))
		}
		for i, r := range results {
			if r.Token != "" || !errors.Is(r.Err, ErrInvalidOption) {
				t.Errorf("%s: result %d = %q, %v, want no token and ErrInvalidOption", c.name, i, r.Token, r.Err)
			}
		}
	}
	if tokens, _ := v.TokensForCard(t.Context(), batchCards(1)[0]); len(tokens) != 0 {
		t.Errorf("rejected batches stored %d tokens, want 0", len(tokens))
	}
}

// failingBatch is a store whose CreateBatch fails from call fail on, after
// passing the earlier calls to a real store.
type failingBatch struct {
	*MemoryStore
	calls, fail int
}

var errInjected = errors.New("injected commit failure")

func (s *failingBatch) CreateBatch(ctx context.Context, recs []*Record) ([]error, error) {
	s.calls++
	if s.calls >= s.fail {
		return nil, errInjected
	}
	return s.MemoryStore.CreateBatch(ctx, recs)
}

func TestTokenizeBatchStoreFailure(t *testing.T) {
	s := &failingBatch{MemoryStore: NewMemoryStore(), fail: 2}
	v := newTestVault(t, s, newTestClock())
	pans := batchCards(3 * batchChunkSize)

	results, err := v.TokenizeCardBatch(t.Context(), pans)
	if !errors.Is(err, errInjected) {
		t.Fatalf("TokenizeCardBatch err = %v, want the store's error", err)
	}
	for i, r := range results {
		if i < batchChunkSize {
			got, err := v.Detokenize(t.Context(), r.Token)
			if r.Err != nil || err != nil || string(got) != pans[i] {
				t.Fatalf("result %d of the committed chunk = %q, %v; Detokenize err = %v, want its token", i, r.Token, r.Err, err)
			}
			continue
		}
		if r.Token != "" || !errors.Is(r.Err, errInjected) {
			t.Fatalf("result %d after the failure = %q, %v, want no token and the store's error", i, r.Token, r.Err)
		}
	}
}

func TestTokenizeBatchCanceled(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, _ Store, _ *testClock) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()

		results, err := v.TokenizeCardBatch(ctx, batchCards(10))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("TokenizeCardBatch with a canceled context err = %v, want context.Canceled", err)
		}
		for i, r := range results {
			if r.Token != "" || !errors.Is(r.Err, context.Canceled) {
				t.Errorf("result %d = %q, %v, want no token and context.Canceled", i, r.Token, r.Err)
			}
		}
	})
}

func TestTokenizeBatchClosedVault(t *testing.T) {
	v := newTestVault(t, NewMemoryStore(), newTestClock())
	v.Close()

	results, err := v.TokenizeCardBatch(t.Context(), batchCards(2))
	if !errors.Is(err, ErrVaultClosed) {
		t.Errorf("TokenizeCardBatch after Close err = %v, want ErrVaultClosed", err)
	}
	if len(results) != 2 || !errors.Is(results[1].Err, ErrVaultClosed) {
		t.Errorf("TokenizeCardBatch after Close results = %v, want 2 that hold ErrVaultClosed", results)
	}
	values, err := v.DetokenizeBatch(t.Context(), []string{"tok_x"})
	if !errors.Is(err, ErrVaultClosed) {
		t.Errorf("DetokenizeBatch after Close err = %v, want ErrVaultClosed", err)
	}
	if len(values) != 1 || !errors.Is(values[0].Err, ErrVaultClosed) {
		t.Errorf("DetokenizeBatch after Close results = %v, want 1 that holds ErrVaultClosed", values)
	}
}

func TestDetokenizeBatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, v *Vault, _ Store, _ *testClock) {
		ctx := t.Context()
		pans := batchCards(600)
		tokenized, err := v.TokenizeCardBatch(ctx, pans)
		if err != nil {
			t.Fatalf("TokenizeCardBatch err = %v", err)
		}
		tokens := make([]string, len(tokenized))
		for i, r := range tokenized {
			tokens[i] = r.Token
		}
		if err := v.SuspendToken(ctx, tokens[1]); err != nil {
			t.Fatalf("SuspendToken err = %v", err)
		}
		if err := v.CloseToken(ctx, tokens[2]); err != nil {
			t.Fatalf("CloseToken err = %v", err)
		}
		tokens[3] = "9999999999999999"
		tokens[4] = "not a token"

		results, err := v.DetokenizeBatch(ctx, tokens)
		if err != nil {
			t.Fatalf("DetokenizeBatch err = %v, want nil", err)
		}
		wants := map[int]error{1: ErrSuspended, 2: ErrClosed, 3: ErrNotFound, 4: ErrNotFound}
		for i, r := range results {
			if want, ok := wants[i]; ok {
				if !errors.Is(r.Err, want) || r.Value != nil {
					t.Errorf("result %d = %v, want %v", i, r, want)
				}
				continue
			}
			if r.Err != nil || string(r.Value) != pans[i] {
				t.Fatalf("result %d = %v, want the number tokenized", i, r)
			}
		}
	})
}

func TestDetokenizeBatchCanceled(t *testing.T) {
	v := newTestVault(t, NewMemoryStore(), newTestClock())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	results, err := v.DetokenizeBatch(ctx, []string{"tok_a", "tok_b"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("DetokenizeBatch with a canceled context err = %v, want context.Canceled", err)
	}
	for i, r := range results {
		if !errors.Is(r.Err, context.Canceled) {
			t.Errorf("result %d err = %v, want context.Canceled", i, r.Err)
		}
	}
}

func TestDetokenizeResultRedacts(t *testing.T) {
	pan := batchCards(1)[0]
	r := DetokenizeResult{Value: []byte(pan)}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("result", "r", r)
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", r),
		"%+v":  fmt.Sprintf("%+v", r),
		"%#v":  fmt.Sprintf("%#v", r),
		"%s":   fmt.Sprintf("%s", r),
		"%x":   fmt.Sprintf("%x", r),
		"%v[]": fmt.Sprintf("%v", []DetokenizeResult{r}),
		"slog": logged.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, pan) || strings.Contains(out, fmt.Sprintf("%x", pan)) {
			t.Errorf("%s of a DetokenizeResult prints the value: %s", name, out)
		}
		if !strings.Contains(out, "16 bytes") {
			t.Errorf("%s of a DetokenizeResult = %s, want its length", name, out)
		}
	}
}

// closingStore closes its store after its first after Create calls, as a
// store that fails part way through a batch does.
type closingStore struct {
	Store
	mu    sync.Mutex
	after int
}

func (s *closingStore) Create(ctx context.Context, rec *Record) error {
	// One Create at a time, so that exactly after of them succeed.
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.Store.Create(ctx, rec)
	if s.after--; s.after == 0 {
		s.Store.Close()
	}
	return err
}

func TestTokenizeBatchEachStoreFailure(t *testing.T) {
	for _, deterministic := range []bool{false, true} {
		t.Run(fmt.Sprintf("Deterministic=%t", deterministic), func(t *testing.T) {
			s := &closingStore{Store: NewMemoryStore(), after: 100}
			v := newTestVault(t, s, newTestClock())
			var opts []TokenizeOption
			if deterministic {
				opts = append(opts, Deterministic("x"))
			}

			results, err := v.TokenizeCardBatch(t.Context(), batchCards(5000), opts...)
			if !errors.Is(err, ErrStoreClosed) {
				t.Fatalf("TokenizeCardBatch over a store closed part way err = %v, want ErrStoreClosed", err)
			}
			tokens, failed := 0, 0
			for i, r := range results {
				switch {
				case r.Token != "" && r.Err == nil:
					tokens++
				case r.Token == "" && errors.Is(r.Err, ErrStoreClosed):
					failed++
				default:
					t.Fatalf("result %d = %q, %v, want a token or ErrStoreClosed", i, r.Token, r.Err)
				}
			}
			if tokens != 100 {
				t.Errorf("%d results have a token, want the 100 stored before the store closed", tokens)
			}
			// The workers stop at the first failure, so at most one call per
			// worker reaches the closed store.
			if s.after < -batchWorkers {
				t.Errorf("the batch called Create %d times on the closed store, want at most %d", -s.after, batchWorkers)
			}
		})
	}
}

func TestTokenizeBatchVaultClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	keys, err := GenerateKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	v, err := Open(path, keys)
	if err != nil {
		t.Fatal(err)
	}
	pans := batchCards(200_000)

	type outcome struct {
		results []TokenizeResult
		err     error
	}
	done := make(chan outcome)
	go func() {
		results, err := v.TokenizeCardBatch(context.Background(), pans)
		done <- outcome{results, err}
	}()
	for {
		// Close once the first chunk is stored.
		if tokens, _ := v.TokensForCard(context.Background(), pans[0]); len(tokens) > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := v.Close(); err != nil {
		t.Fatalf("Close err = %v", err)
	}
	got := <-done

	if !errors.Is(got.err, ErrVaultClosed) {
		t.Fatalf("TokenizeCardBatch closed part way err = %v, want ErrVaultClosed", got.err)
	}
	v, err = Open(path, keys)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	stored := 0
	for i, r := range got.results {
		if r.Err != nil {
			if !errors.Is(r.Err, ErrVaultClosed) {
				t.Fatalf("result %d err = %v, want ErrVaultClosed", i, r.Err)
			}
			continue
		}
		stored++
		if value, err := v.Detokenize(context.Background(), r.Token); err != nil || string(value) != pans[i] {
			t.Fatalf("Detokenize(result %d) after reopening = %d bytes, %v, want the number", i, len(value), err)
		}
	}
	if stored == 0 || stored == len(pans) {
		t.Errorf("%d of %d values stored, want the batch stopped part way", stored, len(pans))
	}
}

func TestDetokenizeResultEncoders(t *testing.T) {
	pan := batchCards(1)[0]
	results := []DetokenizeResult{{Value: []byte(pan)}}
	encoded, err := json.Marshal(struct{ Results []DetokenizeResult }{results})
	if err != nil {
		t.Fatalf("json.Marshal err = %v", err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("results", "results", results)

	for name, out := range map[string]string{"json.Marshal": string(encoded), "slog JSON": logged.String()} {
		if strings.Contains(out, pan) || strings.Contains(out, base64.StdEncoding.EncodeToString([]byte(pan))) {
			t.Errorf("%s of a slice of results writes the value: %s", name, out)
		}
		if !strings.Contains(out, "16 bytes") {
			t.Errorf("%s of a slice of results = %s, want the value's length", name, out)
		}
	}
}

// panickyStore is a memory store whose Create and Get panic, as a store with
// a bug would. It does not implement BatchCreator.
type panickyStore struct{ Store }

func (panickyStore) Create(context.Context, *Record) error { panic("store bug in Create") }

func (panickyStore) Get(context.Context, string) (*Record, error) { panic("store bug in Get") }

// recovered calls fn and returns the value of its panic, or nil.
func recovered(fn func()) (value any) {
	defer func() { value = recover() }()
	fn()
	return nil
}

// TestBatchPanicReachesCaller checks that a panic on one of the goroutines
// of a batch call is raised again in the caller's goroutine, where the
// caller can recover it, instead of ending the process.
func TestBatchPanicReachesCaller(t *testing.T) {
	v := newTestVault(t, panickyStore{NewMemoryStore()}, newTestClock())
	ctx := t.Context()
	data := [][]byte{[]byte("value one"), []byte("value two"), []byte("value three")}
	tokens := []string{newOpaqueToken(time.Now()), newOpaqueToken(time.Now())}

	calls := []struct {
		name string
		call func()
		want any
	}{
		{"TokenizeBatch", func() { v.TokenizeBatch(ctx, data) }, "store bug in Create"},
		{"TokenizeBatch deterministic", func() { v.TokenizeBatch(ctx, data, Deterministic("")) }, "store bug in Create"},
		{"DetokenizeBatch", func() { v.DetokenizeBatch(ctx, tokens) }, "store bug in Get"},
	}
	for _, c := range calls {
		if got := recovered(c.call); got != c.want {
			t.Errorf("%s: recovered %v, want %q", c.name, got, c.want)
		}
	}

	// The items of a batch are validated and encrypted on goroutines of
	// their own, for a store that implements BatchCreator.
	mem := newTestVault(t, NewMemoryStore(), newTestClock())
	cfg, err := newDataConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	got := recovered(func() {
		mem.tokenizeBatch(ctx, 100, cfg, func(i int) ([]byte, Metadata, error) {
			if i == 42 {
				panic("item bug")
			}
			return data[0], Metadata{Kind: KindData}, nil
		})
	})
	if got != "item bug" {
		t.Errorf("tokenizeBatch with a panicking item: recovered %v, want %q", got, "item bug")
	}
}
