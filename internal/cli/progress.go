package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Progress draws a progress bar for long work on a terminal and stays
// silent otherwise (pipes, files, CI logs), where the caller prints a
// summary instead.
type Progress struct {
	w      io.Writer
	label  string
	total  uint64
	start  time.Time
	drawn  time.Time
	active bool
}

// NewProgress returns a bar for total units of work (0 if unknown) written
// to w when w is a terminal.
func NewProgress(w io.Writer, label string, total uint64) *Progress {
	return &Progress{w: w, label: label, total: total, start: time.Now(), active: IsTerminal(w)}
}

// IsTerminal reports whether w is a character device such as a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Update redraws the bar, at most five times a second.
func (p *Progress) Update(done uint64) {
	if !p.active || time.Since(p.drawn) < 200*time.Millisecond {
		return
	}
	p.drawn = time.Now()
	p.draw(done)
}

func (p *Progress) draw(done uint64) {
	rate := float64(done) / max(time.Since(p.start).Seconds(), 1e-3)
	if p.total == 0 {
		fmt.Fprintf(p.w, "\r%s %d (%.0f/s)", p.label, done, rate)
		return
	}
	const width = 30
	frac := min(float64(done)/float64(p.total), 1)
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%% %d/%d (%.0f/s)", p.label, strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, done, p.total, rate)
}

// Done draws the final state and ends the line.
func (p *Progress) Done(done uint64) {
	if !p.active {
		return
	}
	p.draw(done)
	fmt.Fprintln(p.w)
}
