//go:build unix

package temporalx

import (
	"os"
	"syscall"
)

// terminate signals the child's whole process group.
func terminate(p *os.Process, sig syscall.Signal) {
	if err := syscall.Kill(-p.Pid, sig); err != nil {
		_ = p.Signal(sig)
	}
}
