package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeAccount answers the account endpoints checkBilledOnce reads.
type fakeAccount struct {
	balance, reserved, logs, logCost, charges, charged int64
	generation                                         map[string]int64
}

func (f *fakeAccount) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var v any
	switch r.URL.Path {
	case "/account/balance":
		v = map[string]any{"balance_micros": f.balance, "reserved_micros": f.reserved}
	case "/account/usage":
		v = map[string]any{"totals": map[string]any{"requests": f.logs, "cost_micros": f.logCost}}
	case "/account/billing":
		v = map[string]any{"monthly_charges": []any{map[string]any{"requests": f.charges, "charged_micros": f.charged}}}
	case "/v1/generation":
		c, ok := f.generation[r.URL.Query().Get("id")]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			v = map[string]any{}
			break
		}
		v = map[string]any{"data": map[string]any{"charged_micros": c, "streamed": false}}
	}
	_ = json.NewEncoder(w).Encode(v)
}

func TestCheckBilledOnce(t *testing.T) {
	answers := []result{{id: "a", cost: 5, hasCost: true}, {id: "b", cost: 0, hasCost: true}, {id: "c", cost: 7, hasCost: true}}
	good := func() *fakeAccount {
		return &fakeAccount{balance: 1000 - 12, logs: 3, logCost: 12, charges: 2, charged: 12,
			generation: map[string]int64{"a": 5, "b": 0, "c": 7}}
	}
	for _, tc := range []struct {
		name    string
		change  func(f *fakeAccount, rc *recorder)
		problem string // "" = the check passes
	}{
		{"exact", func(*fakeAccount, *recorder) {}, ""},
		{"balance", func(f *fakeAccount, _ *recorder) { f.balance-- }, "balance fell by 13"},
		{"reserved", func(f *fakeAccount, _ *recorder) { f.reserved = 3 }, "still reserved"},
		{"extra log", func(f *fakeAccount, _ *recorder) { f.logs++ }, "4 usage logs for 3 200 answers"},
		{"failed request logged", func(f *fakeAccount, rc *recorder) { f.logs++; rc.errors++ }, ""},
		{"double charge", func(f *fakeAccount, _ *recorder) { f.charges++ }, "3 charges"},
		{"generation", func(f *fakeAccount, _ *recorder) { f.generation["c"] = 8 }, "generation c charged 8"},
		{"duplicate id", func(f *fakeAccount, rc *recorder) {
			rc.answers = append(rc.answers, result{id: "a", hasCost: true})
		}, "answered twice"},
		{"no cost shown", func(f *fakeAccount, rc *recorder) {
			rc.answers = append(rc.answers, result{id: "d"})
			f.logs++
		}, "showed no cost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, rc := good(), &recorder{answers: append([]result(nil), answers...)}
			tc.change(f, rc)
			srv := httptest.NewServer(f)
			defer srv.Close()
			err := checkBilledOnce(srv.URL, "key", 1000, rc, false)
			switch {
			case tc.problem == "" && err != nil:
				t.Errorf("unexpected failure: %v", err)
			case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
				t.Errorf("want a failure with %q, got %v", tc.problem, err)
			}
		})
	}
}
