package api

import (
	"context"

	"github.com/beaver-gateway/beaver/internal/apierr"
)

// Workflows is what the API asks of Temporal. When Temporal is not
// configured or is down, calls answer *apierr.Error 503 and lose nothing.
type Workflows interface {
	// StartRepricing starts a price computation now and returns its workflow id.
	StartRepricing(ctx context.Context, reason string) (string, error)
}

// noWorkflows is used when the process runs without Temporal.
type noWorkflows struct{}

func (noWorkflows) StartRepricing(context.Context, string) (string, error) {
	return "", apierr.Unavailable("Temporal is not available; repricing cannot be started right now")
}
