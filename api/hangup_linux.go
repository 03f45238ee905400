package api

import (
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// hangups notices clients hanging up on detached streams with one epoll
// set and one goroutine for all of them, where a blocked read would take a
// goroutine (and its stack) per stream. Only the peer's end is asked for
// (EPOLLRDHUP; a reset is EPOLLHUP or EPOLLERR), once: bytes the client
// sends meanwhile stay in the socket for the server to read after the
// stream.
type hangups struct {
	epfd    int
	mu      sync.Mutex
	next    uint64
	watched map[uint64]func() // registration → what its hangup does
}

func newHangups() *hangups {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil // streams watch with a read each instead
	}
	h := &hangups{epfd: epfd, watched: map[uint64]func(){}}
	go h.loop()
	return h
}

// watch calls onHangup when conn's peer hangs up, until unwatch; ok is
// false when conn cannot be watched this way.
func (h *hangups) watch(conn net.Conn, onHangup func()) (unwatch func(), ok bool) {
	sc, isSys := conn.(syscall.Conn)
	if h == nil || !isSys {
		return nil, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, false
	}
	h.mu.Lock()
	h.next++
	id := h.next
	h.watched[id] = onHangup
	h.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(id), Pad: int32(id >> 32)}
	var cerr error
	if err := raw.Control(func(fd uintptr) { cerr = unix.EpollCtl(h.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev) }); err != nil || cerr != nil {
		h.forget(id)
		return nil, false
	}
	return func() {
		h.forget(id)
		// A closed connection left the set already.
		_ = raw.Control(func(fd uintptr) { _ = unix.EpollCtl(h.epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
	}, true
}

func (h *hangups) forget(id uint64) {
	h.mu.Lock()
	delete(h.watched, id)
	h.mu.Unlock()
}

// loop waits for hangups; an event of a registration already forgotten
// (a stream that just ended) is ignored.
func (h *hangups) loop() {
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(h.epfd, events, -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			h.mu.Lock()
			f := h.watched[id]
			delete(h.watched, id)
			h.mu.Unlock()
			if f != nil {
				f()
			}
		}
	}
}
