package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// Intervals between progress reports: a bar on a terminal is redrawn often,
// while a log file gets a plain line now and then.
const (
	barInterval  = 200 * time.Millisecond
	lineInterval = 10 * time.Second
	barWidth     = 30
)

// progress reports the advance of a long command on standard error. When
// standard error is a terminal it redraws one line in place: a bar, the
// count, the rate and the time remaining. Otherwise, as in a log file or a
// pipe, it writes a plain line every lineInterval. It never shows a value.
type progress struct {
	w        io.Writer
	command  string // "import", "rewrap"
	unit     string // plural, such as "values"
	terminal bool
	interval time.Duration
	now      func() time.Time

	start time.Time
	last  time.Time // of the last report
	drawn bool      // a bar is on the terminal's current line
	count int64
	ratio float64 // of the work done, from 0 to 1; negative when unknown
}

// newProgress returns a progress reporter for command on w, which it treats
// as a terminal when w is an *os.File on one. The command's time starts now.
func newProgress(w io.Writer, command, unit string) *progress {
	terminal := false
	if f, ok := w.(*os.File); ok {
		terminal = term.IsTerminal(int(f.Fd()))
	}
	interval := lineInterval
	if terminal {
		interval = barInterval
	}
	p := &progress{w: w, command: command, unit: unit, terminal: terminal, interval: interval, now: time.Now, ratio: -1}
	p.start = p.now()
	p.last = p.start
	return p
}

// update records that count units are done, which is ratio of the work (from
// 0 to 1, or negative when the total is unknown), and reports it when the
// last report is older than the interval.
func (p *progress) update(count int64, ratio float64) {
	now := p.now()
	p.count, p.ratio = count, min(ratio, 1)

	if now.Sub(p.last) < p.interval {
		return
	}
	p.last = now
	p.report(now)
}

// finish writes the final report: the count and the average rate, on a line
// of its own.
func (p *progress) finish() {
	elapsed := p.now().Sub(p.start)

	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
	fmt.Fprintf(p.w, "tokenvault %s: %s %s in %s, %s/s\n",
		p.command, groupDigits(p.count), p.unit, formatElapsed(elapsed), groupDigits(int64(rate(p.count, elapsed))))
}

// report writes the current state: a redrawn bar or a plain line.
func (p *progress) report(now time.Time) {
	elapsed := now.Sub(p.start)
	perSecond := rate(p.count, elapsed)

	var b strings.Builder
	if p.terminal {
		b.WriteString("\r")
		if p.ratio >= 0 {
			filled := int(p.ratio * barWidth)
			fmt.Fprintf(&b, "[%s%s] %3d%% ", strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled), int(p.ratio*100))
		}
		fmt.Fprintf(&b, "%s %s, %s/s", groupDigits(p.count), p.unit, groupDigits(int64(perSecond)))
		if left, ok := p.remaining(elapsed); ok {
			fmt.Fprintf(&b, ", %s left", formatElapsed(left))
		}
		b.WriteString("\x1b[K")
		p.drawn = true
	} else {
		fmt.Fprintf(&b, "tokenvault %s: %s %s", p.command, groupDigits(p.count), p.unit)
		if p.ratio >= 0 {
			fmt.Fprintf(&b, " (%d%%)", int(p.ratio*100))
		}
		fmt.Fprintf(&b, ", %s/s", groupDigits(int64(perSecond)))
		if left, ok := p.remaining(elapsed); ok {
			fmt.Fprintf(&b, ", about %s left", formatElapsed(left))
		}
		b.WriteString("\n")
	}
	io.WriteString(p.w, b.String())
}

// remaining estimates the time left from the ratio done so far, assuming the
// rest goes at the same average rate.
func (p *progress) remaining(elapsed time.Duration) (time.Duration, bool) {
	if p.ratio <= 0 || elapsed <= 0 {
		return 0, false
	}
	return time.Duration(float64(elapsed) * (1 - p.ratio) / p.ratio), true
}

func rate(count int64, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(count) / elapsed.Seconds()
}

// formatElapsed writes d as 1h02m03s, 2m03s or 3s.
func formatElapsed(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s >= 3600:
		return fmt.Sprintf("%dh%02dm%02ds", s/3600, s/60%60, s%60)
	case s >= 60:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	default:
		return fmt.Sprintf("%ds", s)
	}
}

// groupDigits writes n with a comma between groups of three digits.
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
