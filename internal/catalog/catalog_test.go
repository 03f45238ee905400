package catalog_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/bus"
	"github.com/beaver-gateway/beaver/internal/catalog"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// Seeding is safe to rerun and never overwrites an admin's change; every
// recalculation is a new version; names resolve as the contract says.
func TestSeedRepriceResolve(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			ctx := context.Background()
			d := testenv.Open(t, dialect)
			c := catalog.New(d, bus.NewLocal(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			for i := 0; i < 2; i++ {
				if err := c.Seed(ctx); err != nil {
					t.Fatal(err)
				}
				if err := c.EnsurePrices(ctx); err != nil {
					t.Fatal(err)
				}
			}
			var n int64
			d.Model(&models.Model{}).Count(&n)
			if n != 31 || c.Version() != 1 {
				t.Fatalf("%d models, version %d after two seeds", n, c.Version())
			}
			in := int64(123)
			if err := c.UpdateBase(ctx, "openai/gpt-4o", catalog.BaseUpdate{Input: &in}); err != nil {
				t.Fatal(err)
			}
			if err := c.Seed(ctx); err != nil {
				t.Fatal(err)
			}
			if e, _ := c.Get("openai/gpt-4o"); e.Base.Input != 123 || e.Price.Base.Input == 123 {
				t.Fatalf("after re-seed: base %d, priced base %d (the change waits for the next version)", e.Base.Input, e.Price.Base.Input)
			}
			v, err := c.Recalculate(ctx, "test")
			if err != nil || v != 2 {
				t.Fatalf("recalculate: %d %v", v, err)
			}
			e, _ := c.Get("openai/gpt-4o")
			if e.Price.Base.Input != 123 || e.Price.Input != pricing.MarkUp(123, e.Price.MarkupPermille) || e.Version != 2 {
				t.Fatalf("new version price %+v", e.Price)
			}
			if e, err := c.Resolve("gpt-4o-mini"); err != nil || e.ID != "openai/gpt-4o-mini" {
				t.Fatalf("bare name: %v %v", e, err)
			}
			if _, err := c.Resolve("openai/unknown"); err == nil {
				t.Fatal("unknown model resolved")
			} else if ae, _ := apierr.As(err); ae.Code != "model_not_found" {
				t.Fatalf("unknown model: %v", err)
			}
			off := false
			if err := c.UpdateBase(ctx, "openai/gpt-4o", catalog.BaseUpdate{Active: &off}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Resolve("openai/gpt-4o"); err == nil || len(c.List(false)) != 30 || len(c.List(true)) != 31 {
				t.Fatal("inactive model still served or listed")
			}
		})
	}
}
