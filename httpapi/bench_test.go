package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/apikey"
	"github.com/tokenvault/tokenvault/httpapi"
	"github.com/tokenvault/tokenvault/tokenvaulttest"
)

// The benchmarks run requests through ServeHTTP without a network, over an
// in-memory vault unless their comment names another store, so that they
// measure the handler and the vault but not the disk or net/http's
// connection handling. BenchmarkTokenize and BenchmarkDetokenize have a
// "vault" sub-benchmark that makes the same Vault call directly: the
// difference is the handler's cost. Run them with
//
//	go test -run XXX -bench . -benchmem ./httpapi/

// benchRequest is a reusable request and response writer, so that the
// benchmark loop allocates nothing itself.
type benchRequest struct {
	req  *http.Request
	body benchBody
	data []byte
	w    discardWriter
}

type benchBody struct{ bytes.Reader }

func (*benchBody) Close() error { return nil }

type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func newBenchRequest(b *testing.B, path, secret, body string) *benchRequest {
	b.Helper()
	br := &benchRequest{data: []byte(body), w: discardWriter{header: http.Header{}}}
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1"+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Body = &br.body
	req.ContentLength = int64(len(body))
	br.req = req
	return br
}

// serve sends the request once and fails the benchmark unless it got 200.
func (br *benchRequest) serve(b *testing.B, h http.Handler) {
	br.body.Reset(br.data)
	clear(br.w.header)
	br.w.status = 0
	h.ServeHTTP(&br.w, br.req)
	if br.w.status != http.StatusOK {
		b.Fatalf("status %d", br.w.status)
	}
}

type benchFixture struct {
	vault   *tokenvault.Vault
	handler *httpapi.Handler
	secret  string
}

func newBenchFixture(b *testing.B) *benchFixture {
	b.Helper()
	return newBenchFixtureOver(b, tokenvaulttest.New(b))
}

// newBenchFixtureOver returns a fixture whose handler serves v.
func newBenchFixtureOver(b *testing.B, v *tokenvault.Vault) *benchFixture {
	b.Helper()
	keys, err := apikey.Open(filepath.Join(b.TempDir(), "api.keys"))
	if err != nil {
		b.Fatal(err)
	}
	secret, _, err := keys.Create("bench", []apikey.Role{apikey.RoleAdmin})
	if err != nil {
		b.Fatal(err)
	}
	h, err := httpapi.New(httpapi.Config{
		Vault:    v,
		Keys:     keys,
		Audit:    slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Registry: prometheus.NewRegistry(),
	})
	if err != nil {
		b.Fatal(err)
	}
	return &benchFixture{vault: v, handler: h, secret: secret}
}

func BenchmarkTokenize(b *testing.B) {
	f := newBenchFixture(b)
	ctx := context.Background()

	b.Run("handler", func(b *testing.B) {
		br := newBenchRequest(b, "/tokenize", f.secret, `{"data":"4111111111111111"}`)
		b.ReportAllocs()
		for b.Loop() {
			br.serve(b, f.handler)
		}
	})
	b.Run("handler-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			br := newBenchRequest(b, "/tokenize", f.secret, `{"data":"4111111111111111"}`)
			for pb.Next() {
				br.serve(b, f.handler)
			}
		})
	})
	b.Run("vault", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.vault.Tokenize(ctx, []byte("4111111111111111")); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDetokenize(b *testing.B) {
	f := newBenchFixture(b)
	ctx := context.Background()
	token, err := f.vault.Tokenize(ctx, []byte("4111111111111111"))
	if err != nil {
		b.Fatal(err)
	}
	body := `{"token":"` + token + `"}`

	b.Run("handler", func(b *testing.B) {
		br := newBenchRequest(b, "/detokenize", f.secret, body)
		b.ReportAllocs()
		for b.Loop() {
			br.serve(b, f.handler)
		}
	})
	b.Run("handler-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			br := newBenchRequest(b, "/detokenize", f.secret, body)
			for pb.Next() {
				br.serve(b, f.handler)
			}
		})
	})
	b.Run("vault", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.vault.Detokenize(ctx, token); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTokenizeBatch sends POST /tokenize/batch with 1,000 generated
// card numbers to a vault over a bbolt file, because a batch's cost is mostly
// its store commits. It reports items/s.
func BenchmarkTokenizeBatch(b *testing.B) {
	keys, err := tokenvault.GenerateKeyRing()
	if err != nil {
		b.Fatal(err)
	}
	v, err := tokenvault.Open(filepath.Join(b.TempDir(), "bench.db"), keys)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.Close() })
	f := newBenchFixtureOver(b, v)

	const items = 1000
	for _, valueType := range []string{"card", "data"} {
		b.Run(valueType, func(b *testing.B) {
			gen := tokenvaulttest.NewCardGenerator(1)
			var body strings.Builder
			body.WriteString(`{"items":[`)
			for i := range items {
				if i > 0 {
					body.WriteByte(',')
				}
				fmt.Fprintf(&body, `{"data":%q,"type":%q}`, gen.Next(), valueType)
			}
			body.WriteString("]}")

			br := newBenchRequest(b, "/tokenize/batch", f.secret, body.String())
			for b.Loop() {
				br.serve(b, f.handler)
			}
			b.ReportMetric(float64(b.N*items)/b.Elapsed().Seconds(), "items/s")
		})
	}
}
