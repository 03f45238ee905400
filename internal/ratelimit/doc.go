// Package ratelimit counts requests per caller-chosen key over fixed windows,
// shared across replicas through Redis when one is configured.
//
// Counting is done by github.com/ulule/limiter/v3: its Redis store (an atomic
// INCRBY+PEXPIRE Lua script) when Options.RedisURL is set, its memory store
// otherwise. Callers namespace keys themselves ("key:<api key id>",
// "acct:<account id>", "auth:ip:1.2.3.4", "auth:login:a@b.c") and pass the rate
// in force on every call, because rates differ per key (plan RPM, a key's lower
// override, the auth throttle of N per 15 minutes).
//
// # Fixed-window edge
//
// The library's windows are fixed, not sliding: a key's window opens at its
// first hit, lasts one period, and its count drops to zero at once when it
// ends. So a client can spend most of a limit at the end of one window and the
// whole limit again at the start of the next: up to 2× the limit can pass
// across a window boundary (2×limit−1 inside any span of one period, since the
// hit that opens a window sits at its start; 2×limit in one period plus a
// moment). For per-minute API limits and the 15-minute auth throttle this is
// the accepted trade for one Redis round trip per request. TestFixedWindowEdge
// demonstrates it and BenchmarkFixedWindowEdge measures it.
//
// # Failure mode: open but bounded
//
// A rate limiter must not take the gateway down with Redis. When a Redis call
// fails or times out (short timeouts, see Options.Timeout), that call is served
// from a per-instance memory store instead, so limits still hold per replica
// (a client spread over N replicas may get up to N× the limit while Redis is
// down). The limiter then skips Redis for Options.Backoff, lets one call probe
// it again, and returns to Redis by itself when the probe succeeds; no
// background goroutine is involved. While degraded, Degraded reports true,
// beaver_ratelimit_degraded is 1, beaver_ratelimit_store_fallback_total counts
// every call served from memory, and a warning is logged at most once a
// minute. Counts made in memory during an outage are not copied to Redis.
//
// We call the limiter directly rather than through ulule's HTTP middleware
// because the middleware's default error handler panics on any store error
// (stdlib.DefaultErrorHandler is `panic(err)`), which would turn a Redis blip
// into failed requests.
package ratelimit
