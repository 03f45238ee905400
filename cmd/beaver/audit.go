package main

import (
	"context"
	"fmt"
	"io"

	"github.com/beaver-gateway/beaver/internal/audit"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/db"
)

// auditCommand is `beaver audit verify`: it exits non-zero (an error) when
// any stream's hash chain is broken, after printing each problem.
func auditCommand(ctx context.Context, cfg *config.Config, out io.Writer, args []string) error {
	if len(args) != 1 || args[0] != "verify" {
		return errUsage
	}
	d, err := db.Open(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer d.Close()
	problems, err := audit.Verify(ctx, d.DB)
	for _, p := range problems {
		fmt.Fprintln(out, "BROKEN", p.String())
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "audit log: every chain holds")
	return nil
}
