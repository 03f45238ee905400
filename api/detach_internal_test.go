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

// tcpPair is a connected pair of TCP connections on loopback.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if server, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close(); _ = client.Close() })
	return server, client
}

// A client leaving a detached stream is noticed, with the epoll set where
// there is one and with a read of its own otherwise; bytes it sends before
// (its next request) are not taken for leaving, and stay readable.
func TestDetachedStreamNoticesTheClientLeaving(t *testing.T) {
	for _, name := range []string{"hangups", "read"} {
		server, client := tcpPair(t)
		left := make(chan struct{})
		leave := func() { close(left) }
		var unwatch func()
		ds := &detachedStream{conn: server, watched: make(chan struct{})}
		if name == "hangups" {
			h := processHangups()
			if h == nil {
				t.Log("no epoll here")
				continue
			}
			var ok bool
			if unwatch, ok = h.watch(server, leave); !ok {
				t.Fatal("a TCP connection could not be watched")
			}
		} else {
			go ds.watch(leave)
		}
		if _, err := client.Write([]byte("P")); err != nil {
			t.Fatal(err)
		}
		if name == "hangups" {
			buf := make([]byte, 1)
			if n, _ := server.Read(buf); n != 1 || buf[0] != 'P' {
				t.Fatalf("%s: the client's byte was not left in the socket", name)
			}
			select {
			case <-left:
				t.Fatalf("%s: bytes from the client were taken for leaving", name)
			default:
			}
		} else {
			<-ds.watched
			if !ds.peeked || ds.peek[0] != 'P' {
				t.Fatalf("%s: the client's byte was not kept", name)
			}
			ds = &detachedStream{conn: server, watched: make(chan struct{})}
			go ds.watch(leave)
		}
		_ = client.Close()
		select {
		case <-left:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the client's leaving was not noticed", name)
		}
		if unwatch != nil {
			unwatch()
		}
	}
}
