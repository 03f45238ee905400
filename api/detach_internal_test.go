package api

import (
	"net"
	"testing"
	"time"
)

// deadlineConn records the read deadlines set on it.
type deadlineConn struct {
	net.Conn
	deadlines []time.Time
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.deadlines = append(c.deadlines, t)
	return nil
}

// A connection back from a detached stream waits for its next request as
// long as a kept-alive one (the idle timeout), not only the header timeout
// the server gives a new connection; later deadlines are the server's.
func TestReturnedConnectionWaitsTheIdleTimeout(t *testing.T) {
	dc := &deadlineConn{}
	rc := &returnedConn{Conn: dc, idle: idleTimeout}
	rc.first.Store(true)
	at := time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)
	_ = rc.SetReadDeadline(time.Time{}) // clearing is not the header deadline
	_ = rc.SetReadDeadline(at)
	_ = rc.SetReadDeadline(at)
	want := []time.Time{{}, at.Add(idleTimeout), at}
	for i := range want {
		if !dc.deadlines[i].Equal(want[i]) {
			t.Fatalf("deadlines %v, want %v", dc.deadlines, want)
		}
	}
}
