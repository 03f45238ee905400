package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/beaver-gateway/beaver/api"
	"github.com/beaver-gateway/beaver/internal/app"
	"github.com/beaver-gateway/beaver/internal/config"
)

func temporalUIURL() string { return "http://127.0.0.1:8233" }

// startTemporal connects the API to Temporal (and for dev, starts the worker
// and a local dev server). Filled in by the Temporal integration.
func startTemporal(ctx context.Context, a *app.App, deps *api.Deps, dev bool) (func(), error) {
	return func() {}, nil
}

func runWorker(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	return errors.New("worker: not available yet")
}
