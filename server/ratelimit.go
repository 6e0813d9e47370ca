package server

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/time/rate"
)

// principalLimiter gives every principal its own token bucket. Principals
// come from the policy (plus "anonymous"), so the map stays small.
type principalLimiter struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

func newPrincipalLimiter(perSecond float64, burst int) *principalLimiter {
	return &principalLimiter{limit: rate.Limit(perSecond), burst: burst, m: make(map[string]*rate.Limiter)}
}

// Limit implements the go-grpc-middleware ratelimit.Limiter: an error means
// ResourceExhausted.
func (l *principalLimiter) Limit(ctx context.Context) error {
	p, _ := PrincipalFrom(ctx)
	l.mu.Lock()
	lim, ok := l.m[p.Name]
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.m[p.Name] = lim
	}
	l.mu.Unlock()
	if !lim.Allow() {
		return fmt.Errorf("principal %q is over its limit of %g calls per second (burst %d)", p.Name, float64(l.limit), l.burst)
	}
	return nil
}
