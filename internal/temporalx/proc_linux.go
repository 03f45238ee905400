package temporalx

import "syscall"

// childAttrs puts the dev server in its own process group (a Ctrl-C in the
// terminal reaches Beaver only, which stops the worker first and then the
// server) and has the kernel send it SIGTERM if Beaver dies without
// stopping it.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
