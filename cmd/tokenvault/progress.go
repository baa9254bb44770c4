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

// rateWindow is how far back the rate and the time left look. Writes slow
// down as a database grows, so an average since the start would promise too
// early an end.
const rateWindow = 10 * time.Second

// minBarColumns is the narrowest terminal that gets a bar. A narrower one
// gets the counts alone, which fit on one line.
const minBarColumns = 80

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

	bar   bool // draw a bar: a terminal of at least minBarColumns
	start time.Time
	last  time.Time // of the last report
	drawn bool      // a report is on the terminal's current line
	count int64
	ratio float64 // of the work done, from 0 to 1; negative when unknown

	// recent is the state at each report of the last rateWindow, oldest
	// first, and at the start.
	recent []snapshot
}

// snapshot is the state of the work at one time.
type snapshot struct {
	at    time.Time
	count int64
	ratio float64
}

// newProgress returns a progress reporter for command on w, which it treats
// as a terminal when w is an *os.File on one. The command's time starts now.
func newProgress(w io.Writer, command, unit string) *progress {
	terminal, bar := false, false
	if f, ok := w.(*os.File); ok {
		terminal = term.IsTerminal(int(f.Fd()))
		width, _, err := term.GetSize(int(f.Fd()))
		bar = terminal && err == nil && width >= minBarColumns
	}
	return newProgressWith(w, command, unit, terminal, bar, time.Now)
}

// newProgressWith returns a progress reporter that redraws one line when
// terminal is set, with a bar when bar is set too, and reads the time from
// now.
func newProgressWith(w io.Writer, command, unit string, terminal, bar bool, now func() time.Time) *progress {
	interval := lineInterval
	if terminal {
		interval = barInterval
	}
	start := now()
	return &progress{
		w: w, command: command, unit: unit,
		terminal: terminal, bar: bar, interval: interval, now: now,
		start: start, last: start, ratio: -1,
		recent: []snapshot{{at: start}},
	}
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
	p.remember(now)
}

// remember adds the current state to p.recent and drops what is older than
// rateWindow, keeping at least one earlier state to measure from.
func (p *progress) remember(now time.Time) {
	p.recent = append(p.recent, snapshot{at: now, count: p.count, ratio: p.ratio})
	drop := 0
	for drop < len(p.recent)-2 && now.Sub(p.recent[drop+1].at) >= rateWindow {
		drop++
	}
	p.recent = p.recent[drop:]
}

// finish writes the final report: the count and the average rate, on a line
// of its own.
func (p *progress) finish() {
	elapsed := p.now().Sub(p.start)

	p.clear()
	fmt.Fprintf(p.w, "tokenvault %s: %s in %s, %s/s\n",
		p.command, p.counted(), formatElapsed(elapsed), groupDigits(int64(rate(p.count, elapsed))))
}

// lineWriter returns a writer to p's output that first clears a line that
// p drew on the terminal, so that a message starts on a line of its own.
func (p *progress) lineWriter() io.Writer { return clearingWriter{p} }

type clearingWriter struct{ p *progress }

func (c clearingWriter) Write(b []byte) (int, error) {
	c.p.clear()
	return c.p.w.Write(b)
}

// clear erases the line that p drew on the terminal, if any.
func (p *progress) clear() {
	if p.drawn {
		io.WriteString(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// counted writes the count with its unit, singular for one.
func (p *progress) counted() string {
	if p.count == 1 {
		return "1 " + strings.TrimSuffix(p.unit, "s")
	}
	return groupDigits(p.count) + " " + p.unit
}

// report writes the current state: a redrawn line or a plain line. The
// rate and the time left come from the last rateWindow.
func (p *progress) report(now time.Time) {
	from := p.recent[0]
	perSecond := rate(p.count-from.count, now.Sub(from.at))
	left, knowsLeft := p.remaining(from, now)

	var b strings.Builder
	if p.terminal {
		b.WriteString("\r")
		if p.bar && p.ratio >= 0 {
			filled := int(p.ratio * barWidth)
			fmt.Fprintf(&b, "[%s%s] %3d%% ", strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled), int(p.ratio*100))
		}
		fmt.Fprintf(&b, "%s, %s/s", p.counted(), groupDigits(int64(perSecond)))
		if knowsLeft {
			fmt.Fprintf(&b, ", %s left", formatElapsed(left))
		}
		b.WriteString("\x1b[K")
		p.drawn = true
	} else {
		fmt.Fprintf(&b, "tokenvault %s: %s", p.command, p.counted())
		if p.ratio >= 0 {
			fmt.Fprintf(&b, " (%d%%)", int(p.ratio*100))
		}
		fmt.Fprintf(&b, ", %s/s", groupDigits(int64(perSecond)))
		if knowsLeft {
			fmt.Fprintf(&b, ", about %s left", formatElapsed(left))
		}
		b.WriteString("\n")
	}
	io.WriteString(p.w, b.String())
}

// remaining estimates the time left from the ratio done since from, assuming
// the rest goes at that rate.
func (p *progress) remaining(from snapshot, now time.Time) (time.Duration, bool) {
	done := p.ratio - from.ratio
	elapsed := now.Sub(from.at)
	if p.ratio < 0 || done <= 0 || elapsed <= 0 {
		return 0, false
	}
	return time.Duration(float64(elapsed) * (1 - p.ratio) / done), true
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
