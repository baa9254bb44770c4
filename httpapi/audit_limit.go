package httpapi

import (
	"sync"
	"time"
)

// Audit records of requests rejected before authentication succeeded (401,
// 403, and notifications whose signature was not verified) are limited to
// rejectionRate per second with bursts of rejectionBurst, because anyone can
// send such requests and each would otherwise cost a line in the audit log.
// The next record written says how many were dropped before it.
const (
	rejectionRate  = 20
	rejectionBurst = 100
)

// rateLimiter is a token bucket that counts what it drops.
type rateLimiter struct {
	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int
}

// allow reports whether an event at now may be recorded and, if so, how many
// were dropped since the last one allowed.
func (l *rateLimiter) allow(now time.Time) (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()

	if l.last.IsZero() {
		l.tokens = rejectionBurst
	} else {
		l.tokens = min(rejectionBurst, l.tokens+now.Sub(l.last).Seconds()*rejectionRate)
	}
	l.last = now

	if l.tokens < 1 {
		l.suppressed++
		return 0, false
	}
	l.tokens--
	suppressed, l.suppressed = l.suppressed, 0
	return suppressed, true
}
