package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"
)

// recorder keeps every answer Beaver gave during the run: the cost it showed
// and the generation id of each 200, and how many requests failed.
type recorder struct {
	mu      sync.Mutex
	answers []result
	errors  int
}

func (rc *recorder) add(r result) {
	if rc == nil {
		return
	}
	r.content = nil
	rc.mu.Lock()
	rc.answers = append(rc.answers, r)
	rc.mu.Unlock()
}

func (rc *recorder) failed() {
	if rc == nil {
		return
	}
	rc.mu.Lock()
	rc.errors++
	rc.mu.Unlock()
}

// setup signs in the admin, makes a funded account without limits, and
// returns an API key of it.
func setup(base, email, password string) (string, error) {
	login, err := call("POST", base+"/auth/login", "", map[string]string{"email": email, "password": password})
	if err != nil {
		return "", err
	}
	tok := login["access_token"].(string)
	acct, err := call("POST", base+"/admin/accounts", tok, map[string]any{"email": fmt.Sprintf("load-%d@example.com", time.Now().UnixNano()), "password": "load-test-password-1", "plan": "enterprise"})
	if err != nil {
		return "", err
	}
	id := acct["account"].(map[string]any)["id"].(string)
	if _, err := call("PATCH", base+"/admin/accounts/"+id, tok, map[string]any{"rpm_limit": 0, "monthly_request_limit": 0}); err != nil {
		return "", err
	}
	if _, err := call("POST", base+"/admin/top-up", tok, map[string]any{"account_id": id, "amount_usd": "100000"}); err != nil {
		return "", err
	}
	k, err := call("POST", base+"/admin/api-keys", tok, map[string]any{"account_id": id, "name": "bench"})
	if err != nil {
		return "", err
	}
	return k["key"].(string), nil
}

// balance is the account's balance_micros and reserved_micros.
func balance(base, key string) (bal, reserved int64, err error) {
	b, err := call("GET", base+"/account/balance", key, nil)
	if err != nil {
		return 0, 0, err
	}
	return num(b["balance_micros"]), num(b["reserved_micros"]), nil
}

// waitLeases waits (up to 15s) for Beaver to return the account's unused
// lease: reserved is then zero, as nothing is in flight.
func waitLeases(base, key string) error {
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		_, reserved, err := balance(base, key)
		if err != nil || reserved == 0 || time.Now().After(deadline) {
			return err
		}
	}
}

// checkLedger prints the account's final state: every request was charged.
func checkLedger(base, key string) error {
	b, err := call("GET", base+"/account/balance", key, nil)
	if err != nil {
		return err
	}
	fmt.Printf("after run   balance %v USD, reserved %v micros\n", b["balance_usd"], b["reserved_micros"])
	return nil
}

// checkBilledOnce verifies through Beaver's API that every 200 answer was
// charged exactly once, at the cost the client was shown:
//   - every 200 showed a cost and an id, and no id came twice;
//   - the balance fell by exactly the sum of shown costs, and nothing is
//     reserved once the idle lease went back (waitLeases);
//   - usage logs (GET /account/usage) number the 200 answers and sum to the
//     shown costs (a failed request may add a log of zero cost);
//   - charge entries (GET /account/billing) number the 200 answers of
//     nonzero cost and sum to the shown costs;
//   - a few ids, GET /v1/generation?id=, were charged what was shown.
func checkBilledOnce(base, key string, before int64, rec *recorder, stream bool) error {
	rec.mu.Lock()
	answers, failed := rec.answers, rec.errors
	rec.mu.Unlock()
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	var shown, paid int64
	seen := make(map[string]bool, len(answers))
	missing := 0
	for _, a := range answers {
		if !a.hasCost || a.id == "" {
			missing++
			continue
		}
		if seen[a.id] {
			bad("generation id %s was answered twice", a.id)
		}
		seen[a.id] = true
		shown += a.cost
		if a.cost > 0 {
			paid++
		}
	}
	if missing > 0 {
		bad("%d of %d 200 answers showed no cost or no id", missing, len(answers))
	}
	ok := int64(len(answers))

	after, reserved, err := balance(base, key)
	if err != nil {
		return err
	}
	if before-after != shown {
		bad("balance fell by %d micros, the answers showed %d", before-after, shown)
	}
	if reserved != 0 {
		bad("%d micros still reserved 15s after the run", reserved)
	}

	u, err := call("GET", base+"/account/usage?days=7", key, nil)
	if err != nil {
		return err
	}
	totals, _ := u["totals"].(map[string]any)
	logs, logCost := num(totals["requests"]), num(totals["cost_micros"])
	switch {
	case logs < ok || logs > ok+int64(failed):
		bad("%d usage logs for %d 200 answers (%d failed requests)", logs, ok, failed)
	case logs != ok:
		fmt.Printf("note        %d usage logs for %d 200 answers: %d failed requests were logged\n", logs, ok, logs-ok)
	}
	if logCost != shown {
		bad("usage logs total %d micros, the answers showed %d", logCost, shown)
	}

	b, err := call("GET", base+"/account/billing", key, nil)
	if err != nil {
		return err
	}
	var charges, charged int64
	months, _ := b["monthly_charges"].([]any)
	for _, m := range months {
		m, _ := m.(map[string]any)
		charges += num(m["requests"])
		charged += num(m["charged_micros"])
	}
	if charges != paid || charged != shown {
		bad("%d charges of %d micros for %d paid 200 answers of %d micros", charges, charged, paid, shown)
	}

	sampled := 0
	if n := len(answers); n > 0 {
		for _, i := range []int{0, n / 4, n / 2, 3 * n / 4, n - 1} {
			a := answers[i]
			if !a.hasCost || a.id == "" {
				continue
			}
			sampled++
			g, err := call("GET", base+"/v1/generation?id="+url.QueryEscape(a.id), key, nil)
			if err != nil {
				bad("generation %s: %v", a.id, err)
				continue
			}
			d, _ := g["data"].(map[string]any)
			if c := num(d["charged_micros"]); c != a.cost {
				bad("generation %s charged %d micros, the answer showed %d", a.id, c, a.cost)
			}
			if s, _ := d["streamed"].(bool); s != stream {
				bad("generation %s streamed=%v, the request had stream=%v", a.id, s, stream)
			}
		}
	}
	fmt.Printf("billing     %d 200 answers (%d failed requests), shown %d micros; balance -%d micros, %d usage logs of %d micros, %d charges of %d micros, %d generations sampled\n",
		ok, failed, shown, before-after, logs, logCost, charges, charged, sampled)
	if len(problems) > 0 {
		return errors.New("not billed exactly once:\n  " + strings.Join(problems, "\n  "))
	}
	return nil
}

// num reads an integer JSON number (call decodes with UseNumber).
func num(v any) int64 {
	n, _ := v.(json.Number)
	i, _ := n.Int64()
	return i
}
