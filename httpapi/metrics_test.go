package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/tokenvault/tokenvault/apikey"
)

// series returns the label pairs and values of a metric family, such as
// {"route=/tokenize,code=ok": 3}; for histograms, the value is the count.
func (f *fixture) series(name string) map[string]float64 {
	f.t.Helper()
	families, err := f.registry.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]float64{}
	for _, family := range families {
		if family.GetName() != name {
			continue
		}
		for _, m := range family.GetMetric() {
			out[labelString(m)] = metricValue(m)
		}
	}
	return out
}

func labelString(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

func metricValue(m *dto.Metric) float64 {
	if h := m.GetHistogram(); h != nil {
		return float64(h.GetSampleCount())
	}
	return m.GetCounter().GetValue()
}

func TestMetricsCountByRouteAndCode(t *testing.T) {
	f := newFixture(t)
	for range 3 {
		f.tokenize("counted value", nil)
	}
	f.post("/tokenize", apikey.RoleTokenize, `{"data":""}`)
	f.post("/detokenize", apikey.RoleDetokenize, `{"token":"tok_nope"}`)
	f.do(request{path: "/detokenize", body: `{"token":"x"}`})

	want := map[string]float64{
		"code=ok,route=/tokenize":                3,
		"code=invalid_data,route=/tokenize":      1,
		"code=token_not_found,route=/detokenize": 1,
		"code=unauthorized,route=/detokenize":    1,
	}
	for _, name := range []string{"tokenvault_http_requests_total", "tokenvault_http_request_duration_seconds"} {
		got := f.series(name)
		for labels, n := range want {
			if got[labels] != n {
				t.Errorf("%s{%s} = %v, want %v", name, labels, got[labels], n)
			}
		}
	}
}

func TestMetricsRouteLabelsBounded(t *testing.T) {
	f := newFixture(t)

	for i := range 50 {
		f.do(request{method: http.MethodGet, path: fmt.Sprintf("/tokens/tok_%036d", i), role: apikey.RoleAdmin})
		f.do(request{method: http.MethodGet, path: fmt.Sprintf("/tokens/%d", 4111111111111111+i), role: apikey.RoleAdmin})
		f.do(request{method: http.MethodGet, path: fmt.Sprintf("/probe/%d", i), role: apikey.RoleAdmin})
		f.do(request{method: http.MethodPost, path: fmt.Sprintf("/tokenize?x=%d", i), role: apikey.RoleTokenize, body: `{"data":"q"}`})
	}

	got := f.series("tokenvault_http_requests_total")
	want := map[string]float64{
		"code=token_not_found,route=/tokens/{token}": 100,
		"code=not_found,route=unmatched":             50,
		"code=ok,route=/tokenize":                    50,
	}
	if len(got) != len(want) {
		t.Errorf("requests_total has %d series, want %d: %v", len(got), len(want), got)
	}
	for labels, n := range want {
		if got[labels] != n {
			t.Errorf("requests_total{%s} = %v, want %v", labels, got[labels], n)
		}
	}

	// The paths' card-shaped numbers, not a bare "4111", which a sample
	// value such as a heap size can contain by chance.
	r := f.do(request{method: http.MethodGet, path: "/metrics"})
	if strings.Contains(r.body, "41111111111111") || strings.Contains(r.body, "probe") {
		t.Errorf("GET /metrics shows a request path")
	}
}

func TestMetricsBatchCountsOnce(t *testing.T) {
	f := newFixture(t)

	f.post("/tokenize/batch", apikey.RoleTokenize, `{"items":[{"data":"a"},{"data":""},{"data":"b"}]}`)
	got := f.series("tokenvault_http_requests_total")
	if got["code=ok,route=/tokenize/batch"] != 1 || len(got) != 1 {
		t.Errorf("requests_total after one batch = %v, want one ok request", got)
	}
}
