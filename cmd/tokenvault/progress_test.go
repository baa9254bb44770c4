package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// fakeClock is a clock that tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// newTestProgress returns a progress reporter on a buffer, as on a wide
// terminal or not, with a clock the test moves.
func newTestProgress(terminal bool) (*progress, *bytes.Buffer, *fakeClock) {
	var out bytes.Buffer
	clock := &fakeClock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	return newProgressWith(&out, "import", "values", terminal, terminal, clock.now), &out, clock
}

func TestProgressLinesWhenNotATerminal(t *testing.T) {
	p, out, clock := newTestProgress(false)

	clock.t = clock.t.Add(5 * time.Second)
	p.update(5000, 0.1)
	if out.Len() != 0 {
		t.Errorf("a report came before the interval: %q", out.String())
	}

	clock.t = clock.t.Add(5 * time.Second)
	p.update(10000, 0.25)
	want := "tokenvault import: 10,000 values (25%), 1,000/s, about 30s left\n"
	if out.String() != want {
		t.Errorf("report after 10 s = %q, want %q", out.String(), want)
	}

	out.Reset()
	clock.t = clock.t.Add(30 * time.Second)
	p.update(40000, 1)
	p.finish()
	want = "tokenvault import: 40,000 values (100%), 1,000/s, about 0s left\n" +
		"tokenvault import: 40,000 values in 40s, 1,000/s\n"
	if out.String() != want {
		t.Errorf("last reports = %q, want %q", out.String(), want)
	}
}

func TestProgressBarOnATerminal(t *testing.T) {
	p, out, clock := newTestProgress(true)

	clock.t = clock.t.Add(2 * time.Second)
	p.update(500, 0.5)
	want := "\r[===============               ]  50% 500 values, 250/s, 2s left\x1b[K"
	if out.String() != want {
		t.Errorf("bar at half = %q, want %q", out.String(), want)
	}

	out.Reset()
	clock.t = clock.t.Add(100 * time.Millisecond)
	p.update(520, 0.52)
	if out.Len() != 0 {
		t.Errorf("the bar was redrawn before the interval: %q", out.String())
	}

	clock.t = clock.t.Add(1900 * time.Millisecond)
	p.finish()
	want = "\r\x1b[Ktokenvault import: 520 values in 4s, 130/s\n"
	if out.String() != want {
		t.Errorf("final report = %q, want the bar cleared and a summary line %q", out.String(), want)
	}
}

func TestProgressWithoutTotal(t *testing.T) {
	p, out, clock := newTestProgress(false)

	clock.t = clock.t.Add(lineInterval)
	p.update(1234567, -1)
	want := "tokenvault import: 1,234,567 values, 123,456/s\n"
	if out.String() != want {
		t.Errorf("report without a total = %q, want %q", out.String(), want)
	}
	if strings.Contains(out.String(), "left") {
		t.Errorf("report without a total estimates the time left: %q", out.String())
	}
}

func TestFormatElapsed(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{1499 * time.Millisecond, "1s"},
		{59 * time.Second, "59s"},
		{61 * time.Second, "1m01s"},
		{3*time.Hour + 2*time.Minute + 5*time.Second, "3h02m05s"},
	}
	for _, tt := range tests {
		if got := formatElapsed(tt.d); got != tt.want {
			t.Errorf("formatElapsed(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestGroupDigits(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0"},
		{999, "999"},
		{1000, "1,000"},
		{-1234567, "-1,234,567"},
	}
	for _, tt := range tests {
		if got := groupDigits(tt.n); got != tt.want {
			t.Errorf("groupDigits(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestProgressTimeLeftFollowsTheRecentRate(t *testing.T) {
	p, out, clock := newTestProgress(false)

	// 50% in the first 10 s, then 10% in each 10 s after: the average since
	// the start would promise 25 s for the last 30%, the recent rate 30 s.
	clock.t = clock.t.Add(10 * time.Second)
	p.update(5000, 0.5)
	clock.t = clock.t.Add(10 * time.Second)
	p.update(6000, 0.6)
	clock.t = clock.t.Add(10 * time.Second)
	p.update(7000, 0.7)

	reports := lines(out.String())
	if len(reports) != 3 {
		t.Fatalf("got %d reports, want 3: %q", len(reports), out.String())
	}
	want := "tokenvault import: 7,000 values (70%), 100/s, about 30s left"
	if reports[2] != want {
		t.Errorf("report after the slowdown = %q, want %q", reports[2], want)
	}
}

func TestProgressOnANarrowTerminal(t *testing.T) {
	var out bytes.Buffer
	clock := &fakeClock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	p := newProgressWith(&out, "import", "values", true, false, clock.now)

	clock.t = clock.t.Add(time.Second)
	p.update(100, 0.25)
	want := "\r100 values, 100/s, 3s left\x1b[K"
	if out.String() != want {
		t.Errorf("report on a narrow terminal = %q, want %q without a bar", out.String(), want)
	}
}

func TestProgressCountsOneValue(t *testing.T) {
	p, out, clock := newTestProgress(false)

	clock.t = clock.t.Add(time.Second)
	p.update(1, 1)
	p.finish()
	want := "tokenvault import: 1 value in 1s, 1/s\n"
	if out.String() != want {
		t.Errorf("summary of one value = %q, want %q", out.String(), want)
	}
}
