package billing_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// A hold admitted at the component-wise maximum of a fallback chain's
// prices is charged, once, at the price of the model that answered, with
// that price's version; a price above the held one in any component is
// refused, and so is repricing a finished hold.
func TestReprice(t *testing.T) {
	d := testenv.Open(t, db.SQLite)
	acct := newAccount(t, d, 1_000_000)
	e := billing.NewEngine(d, quiet, billing.EngineOptions{})
	defer e.Close()
	held := pricing.Price{Base: pricing.Base{ModelID: "chain", Input: 3_000_000, Output: 15_000_000, Fee: 5000},
		Input: 3_300_000, Output: 16_000_000, Fee: 5500}
	h, err := e.Admit(context.Background(), billing.AdmitRequest{AccountID: acct, Price: held, PriceVersion: 7,
		PromptTokens: 100, MaxTokens: 100, ModelMax: 4096})
	if err != nil {
		t.Fatal(err)
	}
	amount := h.Amount()
	if want := pricing.Cost(held.Input, held.Output, held.Fee, 100, 100); amount != want {
		t.Fatalf("held %d, want %d", amount, want)
	}
	for _, above := range []pricing.Price{
		{Input: held.Input + 1, Output: 1, Fee: 0},
		{Input: 1, Output: held.Output + 1, Fee: 0},
		{Input: 1, Output: 1, Fee: held.Fee + 1},
	} {
		if err := h.Reprice(above, 8); err == nil {
			t.Errorf("price %+v above the hold accepted", above)
		}
	}
	if !reflect.DeepEqual(h.Price, held) || h.PriceVersion != 7 {
		t.Fatalf("a refused reprice changed the hold: %+v v%d", h.Price, h.PriceVersion)
	}
	answered := pricing.Price{Base: pricing.Base{ModelID: "cheap", Input: 100_000, Output: 400_000},
		Input: 110_000, Output: 440_000}
	if err := h.Reprice(answered, 8); err != nil {
		t.Fatal(err)
	}
	if h.Amount() != amount {
		t.Fatalf("repricing changed the held amount: %d → %d", amount, h.Amount())
	}
	gen := ids.New("gen")
	st, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: gen, PromptTokens: 50, CompletionTokens: 20,
		Model: "cheap", Provider: "p"})
	if err != nil {
		t.Fatal(err)
	}
	want := pricing.ChargeTokens(answered, pricing.Tokens{Prompt: 50, Completion: 20}, time.Time{})
	if st.ChargedMicros != want.ChargedMicros || st.ProviderCostMicros != want.ProviderCostMicros {
		t.Fatalf("charged %+v, want %+v", st, want)
	}
	var log models.UsageLog
	if err := d.Where("id = ?", gen).Take(&log).Error; err != nil {
		t.Fatal(err)
	}
	if log.PriceVersion != 8 || log.ChargedMicros != want.ChargedMicros || log.Model != "cheap" {
		t.Fatalf("usage log version %d charged %d", log.PriceVersion, log.ChargedMicros)
	}
	if err := h.Reprice(answered, 8); !errors.Is(err, billing.ErrAlreadyFinished) {
		t.Fatalf("reprice after Finish: %v", err)
	}
	e.Close()
	a := check(t, d, acct, true)
	if a.BalanceMicros != 1_000_000-want.ChargedMicros {
		t.Fatalf("balance %d, want %d", a.BalanceMicros, 1_000_000-want.ChargedMicros)
	}
}

// An image hold (pricing.ImageBound, one completion token) refuses a price
// above it in an image dimension, and charges the images delivered at the
// answer's per-image price, once, with a usage log; a request that
// delivered images is charged though it counted no tokens.
func TestRepriceImages(t *testing.T) {
	d := testenv.Open(t, db.SQLite)
	acct := newAccount(t, d, 1_000_000)
	e := billing.NewEngine(d, quiet, billing.EngineOptions{})
	defer e.Close()
	model := pricing.MarkUpAs(pricing.Base{ModelID: "img", Images: &pricing.Images{PerImage: []pricing.ImagePrice{
		{Quality: "standard", Micros: 40_000}, {Quality: "hd", Micros: 80_000}}}}, pricing.Budget)
	bound, prompt, err := model.ImageBound(time.Time{}, pricing.ImageQuery{Quality: "standard", N: 3, PromptTokens: 20})
	if err != nil {
		t.Fatal(err)
	}
	h, err := e.Admit(context.Background(), billing.AdmitRequest{AccountID: acct, Price: bound, PriceVersion: 1,
		PromptTokens: prompt, MaxTokens: 1, ModelMax: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Reprice(model.ForImages("", "hd"), 1); err == nil {
		t.Fatal("a dearer per-image price than the hold's was accepted")
	}
	if err := h.Reprice(model.ForImages("", "standard"), 1); err != nil {
		t.Fatal(err)
	}
	gen := ids.New("gen")
	st, err := e.Finish(context.Background(), h, billing.Outcome{GenerationID: gen, Images: 2, Model: "img", Provider: "p"})
	if err != nil {
		t.Fatal(err)
	}
	per := pricing.MarkUp(40_000, pricing.Markups[pricing.Budget])
	if st.ChargedMicros != 2*per || st.ProviderCostMicros != 80_000 || st.ChargedMicros > h.Amount() {
		t.Fatalf("charged %+v, per image %d, held %d", st, per, h.Amount())
	}
	e.Close()
	if a := check(t, d, acct, true); a.BalanceMicros != 1_000_000-2*per {
		t.Fatalf("balance %d", a.BalanceMicros)
	}
}
