package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/providers"
	"github.com/beaver-gateway/beaver/models"
)

// catalogCommand runs `beaver catalog import FILE [--dry-run]` and `beaver
// catalog export`: the admin API's import and export, from a shell, on the
// configured database. A change reaches running replicas over the bus.
func catalogCommand(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	d, err := db.Open(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.MigrateUp(ctx); err != nil {
		return err
	}
	bg, cancel := context.WithCancel(ctx)
	defer cancel()
	b, err := bus.New(bg, d, cfg.DatabaseListenURL, log)
	if err != nil {
		return fmt.Errorf("invalidation bus: %w", err)
	}
	c := catalog.New(d, b, log)
	if err := c.Seed(ctx); err != nil {
		return err
	}
	if err := c.EnsurePrices(ctx); err != nil {
		return err
	}
	switch args[0] {
	case "export":
		out, err := c.Export(ctx)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(os.Stdout, string(out))
		return err
	case "import":
		file, dry := "", false
		for _, a := range args[1:] {
			switch {
			case a == "--dry-run":
				dry = true
			case file == "":
				file = a
			default:
				return errUsage
			}
		}
		if file == "" {
			return errUsage
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		builtin := providers.DefaultConfigs()
		known := func(p string) bool { // a built-in, or a provider an admin added
			var n int64
			_, ok := builtin[p]
			return ok || d.WithContext(ctx).Model(&models.Provider{}).Where("id = ?", p).Count(&n).Error == nil && n > 0
		}
		diff, err := c.Import(ctx, data, dry, known)
		if err != nil {
			return err
		}
		out, _ := json.MarshalIndent(diff, "", "  ")
		_, err = fmt.Fprintln(os.Stdout, string(out))
		return err
	}
	return errUsage
}
