package main

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// progressLine draws "up: DONE/TOTAL nodes (RATE/s)" on one terminal line
// while long work runs. The work only stores the latest count (Update
// never waits for the terminal, so a slow or paused one cannot hold up the
// kernel work); a goroutine of its own redraws the line every tick, once
// the work has taken longer than after.
type progressLine struct {
	w            io.Writer
	verb, what   string
	after, every time.Duration
	start        time.Time
	done, total  atomic.Int64
	stop, ended  chan struct{}
}

// startProgress starts drawing to w. Stop ends it.
func startProgress(w io.Writer, verb, what string, after, every time.Duration) *progressLine {
	p := &progressLine{w: w, verb: verb, what: what, after: after, every: every,
		start: time.Now(), stop: make(chan struct{}), ended: make(chan struct{})}
	go p.draw()
	return p
}

// Update records that done of total are done. It is safe from any goroutine.
func (p *progressLine) Update(done, total int) {
	p.total.Store(int64(total))
	p.done.Store(int64(done))
}

func (p *progressLine) draw() {
	defer close(p.ended)
	t := time.NewTicker(p.every)
	defer t.Stop()
	drawn := false
	for {
		select {
		case <-p.stop:
			if drawn {
				fmt.Fprint(p.w, "\r\033[K")
			}
			return
		case <-t.C:
		}
		el := time.Since(p.start)
		total := p.total.Load()
		if el < p.after || total == 0 {
			continue
		}
		done := p.done.Load()
		fmt.Fprintf(p.w, "\r\033[K%s: %d/%d %s (%.0f/s)", p.verb, done, total, p.what, float64(done)/el.Seconds())
		drawn = true
	}
}

// Stop stops drawing and clears the line if anything was drawn. It waits
// a moment for that, not for a terminal that takes no output (paused with
// Ctrl-S): the command's own result must not wait on its progress line.
func (p *progressLine) Stop() {
	close(p.stop)
	select {
	case <-p.ended:
	case <-time.After(200 * time.Millisecond):
	}
}
