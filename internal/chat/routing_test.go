package chat_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/chat"
)

// models (up to chat.MaxModels ids) and route "fallback" are accepted and
// never forwarded upstream; anything else in them is a 400 naming the field.
func TestRoutingFields(t *testing.T) {
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	r, err := chat.ParseRequest([]byte(`{"models":["openai/gpt-4o-mini","anthropic/claude-3-5-haiku-20241022"],"route":"fallback",` + msgs + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Models) != 2 || r.Models[1] != "anthropic/claude-3-5-haiku-20241022" || r.Model != "" {
		t.Fatalf("models %v, model %q", r.Models, r.Model)
	}
	b, _ := json.Marshal(r)
	if strings.Contains(string(b), "models") || strings.Contains(string(b), "route") {
		t.Errorf("routing fields forwarded upstream: %s", b)
	}
	if r, err := chat.ParseRequest([]byte(`{"model":"m","models":[],"route":null,` + msgs + `}`)); err != nil || r.Models != nil {
		t.Errorf("empty models: %v, %v", r, err)
	}
	if r, err := chat.ParseRequest([]byte(`{"models":["a","b","c","d","e"],` + msgs + `}`)); err != nil || len(r.Models) != chat.MaxModels {
		t.Errorf("%d models: %v, %v", chat.MaxModels, r, err)
	}
	for body, param := range map[string]string{
		`"models":"openai/gpt-4o"`:           "models",
		`"models":[1]`:                       "models",
		`"models":[""]`:                      "models",
		`"models":["a","b","c","d","e","f"]`: "models",
		`"route":"cheapest"`:                 "route",
		`"route":["fallback"]`:               "route",
	} {
		_, err := chat.ParseRequest([]byte(`{"model":"m",` + body + `,` + msgs + `}`))
		var ie *chat.InvalidError
		if !errors.As(err, &ie) || ie.Param != param {
			t.Errorf("%s: err %v, want param %s", body, err, param)
		}
	}
}
