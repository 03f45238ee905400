//go:build unix && !linux

package temporalx

import "syscall"

// childAttrs puts the dev server in its own process group.
func childAttrs() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
