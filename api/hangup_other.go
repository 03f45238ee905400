//go:build !linux

package api

import "net"

// hangups is Linux's epoll set (hangup_linux.go); elsewhere each detached
// stream watches its connection with a read of its own.
type hangups struct{}

func newHangups() *hangups { return nil }

func (h *hangups) watch(net.Conn, func()) (unwatch func(), ok bool) { return nil, false }
