//go:build !unix

package temporalx

import (
	"os"
	"syscall"
)

func childAttrs() *syscall.SysProcAttr { return nil }

// terminate ends the child (no process groups or SIGTERM here).
func terminate(p *os.Process, _ syscall.Signal) { _ = p.Kill() }
