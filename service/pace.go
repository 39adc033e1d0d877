package service

import "time"

// pacer spaces a participant's lines: burst at once, then one every
// interval (a token bucket counted in time). The zero pacer never waits.
type pacer struct {
	interval time.Duration // zero: no pacing
	burst    time.Duration // burst lines' worth of interval
	next     time.Time     // when the bucket will be empty again
}

func (c *Chat) pacer() *pacer {
	rate, burst := c.Rate, c.Burst
	if rate < 0 {
		return &pacer{}
	}
	if rate == 0 {
		rate = defaultRate
	}
	if burst <= 0 {
		burst = defaultBurst
	}
	interval := time.Duration(float64(time.Second) / rate)
	return &pacer{interval: interval, burst: time.Duration(burst) * interval}
}

// wait waits until one more line may be sent, and reports true, or until
// stop is closed, and reports false.
func (p *pacer) wait(stop <-chan struct{}) bool {
	if p.interval == 0 {
		return true
	}
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	p.next = p.next.Add(p.interval)
	d := p.next.Sub(now) - p.burst
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}
