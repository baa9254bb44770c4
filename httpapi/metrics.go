package httpapi

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts requests and their durations by route and outcome code.
// Both labels come from fixed tables, so the number of series is bounded by
// routes times codes whatever clients send.
type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	auditFailures prometheus.Counter

	// series caches the children of the vectors, created on first use, so
	// that a request does not hash its labels.
	series [numRoutes][numCodes]atomic.Pointer[seriesPair]
}

type seriesPair struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// durationBuckets span 100 µs to 2.5 s. A detokenization takes a few
// microseconds in the vault, and a tokenization on bbolt waits for a disk
// sync: about 0.4 ms per commit in docs/benchmarks.md, far more on a slow
// disk.
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// newMetrics registers the metrics on registry. When another handler has
// registered them already, the handlers share them.
func newMetrics(registry *prometheus.Registry) (*metrics, error) {
	labels := []string{"route", "code"}
	requests, err := register(registry, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenvault_http_requests_total",
		Help: "HTTP requests served, by route pattern and outcome code (ok or the error code).",
	}, labels))
	if err != nil {
		return nil, err
	}
	duration, err := register(registry, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tokenvault_http_request_duration_seconds",
		Help:    "Time to serve an HTTP request, by route pattern and outcome code (ok or the error code).",
		Buckets: durationBuckets,
	}, labels))
	if err != nil {
		return nil, err
	}
	auditFailures, err := register(registry, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tokenvault_audit_write_failures_total",
		Help: "Audit records that could not be written; each failed its request.",
	}))
	if err != nil {
		return nil, err
	}
	return &metrics{requests: requests, duration: duration, auditFailures: auditFailures}, nil
}

// register registers c, or returns the collector that is already
// registered under its name.
func register[C prometheus.Collector](registry *prometheus.Registry, c C) (C, error) {
	err := registry.Register(c)
	var exists prometheus.AlreadyRegisteredError
	if errors.As(err, &exists) {
		if existing, ok := exists.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		var zero C
		return zero, err
	}
	return c, nil
}

// observe counts one request.
func (m *metrics) observe(rt route, c code, d time.Duration) {
	cell := &m.series[rt][c]
	pair := cell.Load()
	if pair == nil {
		labels := [2]string{rt.String(), c.String()}
		pair = &seriesPair{
			requests: m.requests.WithLabelValues(labels[:]...),
			duration: m.duration.WithLabelValues(labels[:]...),
		}
		// Losing this race is harmless: WithLabelValues returns the same
		// child to both.
		cell.Store(pair)
	}
	pair.requests.Inc()
	pair.duration.Observe(d.Seconds())
}
