package server

import (
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// loginLimiter bounds login attempts per client address. It runs before
// the body is read, so a flood of logins costs neither decoding nor
// password hashing.
type loginLimiter struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	clients map[string]*clientLimit
	swept   time.Time
}

type clientLimit struct {
	lim  *rate.Limiter
	seen time.Time
}

// maxTrackedClients bounds the limiter's memory; beyond it, idle entries
// are dropped early.
const maxTrackedClients = 100_000

func newLoginLimiter(perSecond float64, burst int) *loginLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &loginLimiter{rate: rate.Limit(perSecond), burst: burst, clients: map[string]*clientLimit{}}
}

// isLoginPath reports whether the /v1/ path is an auth method's login
// endpoint: auth/<mount...>/login or auth/<mount...>/login/<name>.
func isLoginPath(p string) bool {
	if !strings.HasPrefix(p, "auth/") || strings.HasPrefix(p, "auth/token/") {
		return false
	}
	segs := strings.Split(strings.TrimSuffix(p, "/"), "/")
	n := len(segs)
	return (n >= 3 && segs[n-1] == "login") || (n >= 4 && segs[n-2] == "login")
}

func (l *loginLimiter) allow(remoteAddr string, now time.Time) bool {
	if l == nil {
		return true
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute || len(l.clients) > maxTrackedClients {
		for k, c := range l.clients {
			if now.Sub(c.seen) > 10*time.Minute || len(l.clients) > maxTrackedClients {
				delete(l.clients, k)
			}
		}
		l.swept = now
	}
	c := l.clients[host]
	if c == nil {
		c = &clientLimit{lim: rate.NewLimiter(l.rate, l.burst)}
		l.clients[host] = c
	}
	c.seen = now
	return c.lim.AllowN(now, 1)
}
