package httpapi_test

import (
	"math"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/tokenvault/tokenvault/apikey"
	"github.com/tokenvault/tokenvault/httpapi"
)

// TestLargestBodyLimit checks that a limit as large as int64 allows reads
// instead of overflowing.
func TestLargestBodyLimit(t *testing.T) {
	f := newFixture(t, func(c *httpapi.Config) { c.MaxBodyBytes = math.MaxInt64 })

	if r := f.post("/tokenize", apikey.RoleTokenize, `{"data":"hello"}`); r.status != http.StatusOK {
		t.Errorf("POST /tokenize with MaxBodyBytes math.MaxInt64 = %d %q, want 200", r.status, r.body)
	}
}

// TestContentLengthAllocatesLittle checks that a request that announces a
// huge body but sends two bytes allocates about what it sends.
func TestContentLengthAllocatesLittle(t *testing.T) {
	f := newFixture(t, func(c *httpapi.Config) { c.MaxBodyBytes = math.MaxInt64 })
	const announced = 1 << 30

	req := httptestRequestWithoutLength(t, "{}")
	req.ContentLength = announced
	req.Header.Set("Authorization", "Bearer "+f.secrets[apikey.RoleTokenize])
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	w := newRecorder()
	f.handler.ServeHTTP(w, req)
	runtime.ReadMemStats(&after)

	if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<10 {
		t.Errorf("a request announcing %d bytes and sending 2 allocated %d bytes, want under 256 KiB", announced, grew)
	}
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "missing_field") {
		t.Errorf("a 2-byte body announced as %d bytes = %d %q, want 400 missing_field", announced, w.Code, w.Body.String())
	}
}

// TestBatchLimitOfOne checks the message of a batch limit of one item.
func TestBatchLimitOfOne(t *testing.T) {
	f := newFixture(t, func(c *httpapi.Config) { c.MaxBatchItems = 1 })

	r := f.post("/tokenize/batch", apikey.RoleTokenize, `{"items":[{"data":"a"},{"data":"b"}]}`)
	want := "Batch has more than 1 item: send one item per batch"
	if e := r.errorBody(t); r.status != http.StatusRequestEntityTooLarge || e.Code != "too_many_items" || e.Error != want {
		t.Errorf("batch of 2 items with a limit of 1 = %d %q, want 413 too_many_items %q", r.status, r.body, want)
	}
}
