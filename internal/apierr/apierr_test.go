package apierr_test

import (
	"testing"

	"github.com/beaver-gateway/beaver/internal/apierr"
)

// error.param is a first-class field: null unless a request field is at
// fault, and With("param", ...) sets it instead of adding a second key.
func TestParam(t *testing.T) {
	e := apierr.Invalid("model is required")
	if e.Param != "" || e.ParamValue() != nil {
		t.Fatalf("a new error names param %q (%v)", e.Param, e.ParamValue())
	}
	p := e.WithParam("model")
	if p.Param != "model" || p.ParamValue() != "model" || e.Param != "" {
		t.Fatalf("WithParam: copy %q, original %q", p.Param, e.Param)
	}
	w := apierr.InsufficientBalance("short").With("param", "max_tokens")
	if w.Param != "max_tokens" || w.Extra["param"] != nil || w.Extra["limit_source"] != "balance" {
		t.Fatalf("With(param): Param %q, Extra %v", w.Param, w.Extra)
	}
	if c := w.With("param", nil); c.Param != "" || c.ParamValue() != nil {
		t.Fatalf("With(param, nil) keeps %q", c.Param)
	}
	if k := w.With("k", 1); k.Param != "max_tokens" || k.Extra["k"] != 1 || k.Extra["limit_source"] != "balance" {
		t.Fatalf("With(k) lost the param or extras: %+v", k)
	}
}
