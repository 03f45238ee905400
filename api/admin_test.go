package api_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

func TestAdminAccounts(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		r := h.do("POST", "/admin/accounts", h.Admin.Token, map[string]any{"email": "Pro.User@Example.com",
			"password": testPassword, "plan": "pro", "balance_micros": 5}).want(201)
		id := r.str("account.id")
		if r.get("account.email_verified") != true || r.str("account.plan") != "pro" || r.str("account.role") != "user" ||
			r.num("account.rpm_limit") != 600 || r.num("account.monthly_request_limit") != 200_000 || r.num("account.balance_micros") != 0 {
			t.Fatalf("created: %s", r.Raw)
		}
		h.login("pro.user@example.com", testPassword)
		adm := h.do("POST", "/admin/accounts", h.Admin.Token, map[string]any{"email": "second-admin@example.com",
			"password": testPassword, "role": "admin", "plan": "enterprise"}).want(201)
		if adm.str("account.role") != "admin" || adm.num("account.rpm_limit") != 5000 {
			t.Fatalf("admin created: %s", adm.Raw)
		}
		for _, b := range []map[string]any{
			{"email": "x@example.com", "password": testPassword, "plan": "gold"},
			{"email": "x@example.com", "password": testPassword, "role": "root"},
			{"email": "x@example.com", "password": "short"},
			{"email": "nope", "password": testPassword},
		} {
			h.do("POST", "/admin/accounts", h.Admin.Token, b).wantError(400, "invalid_request")
		}
		h.do("POST", "/admin/accounts", h.Admin.Token, map[string]any{"email": "PRO.user@example.com", "password": testPassword}).
			wantError(409, "conflict")

		// List, filtered case-insensitively by a part of the address.
		l := h.do("GET", "/admin/accounts?email=PRO.USER", h.Admin.Token, nil).want(200)
		if len(l.list("data")) != 1 || l.str("data.0.id") != id {
			t.Fatalf("filtered list: %s", l.Raw)
		}
		if n := len(h.do("GET", "/admin/accounts", h.Admin.Token, nil).want(200).list("data")); n != 3 {
			t.Fatalf("%d accounts listed, want 3", n)
		}
		if n := len(h.do("GET", "/admin/accounts?email=%25", h.Admin.Token, nil).want(200).list("data")); n != 0 {
			t.Fatalf("%% is not a wildcard: %d", n)
		}
		if n := len(h.do("GET", "/admin/accounts?email=_", h.Admin.Token, nil).want(200).list("data")); n != 0 {
			t.Fatalf("_ is not a wildcard: %d", n)
		}
		h.do("GET", "/admin/accounts?limit=0", h.Admin.Token, nil).wantError(400, "invalid_request")

		g := h.do("GET", "/admin/accounts/"+id, h.Admin.Token, nil).want(200)
		if g.str("account.email") != "Pro.User@Example.com" {
			t.Fatalf("get: %s", g.Raw)
		}
		h.do("GET", "/admin/accounts/acct_nope", h.Admin.Token, nil).wantError(404, "not_found")
	})
}

func TestAdminUpdateAccount(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		path := "/admin/accounts/" + u.ID
		r := h.do("PATCH", path, h.Admin.Token, `{"plan":"pro","rpm_limit":5,"monthly_request_limit":0}`).want(200)
		if r.str("account.plan") != "pro" || r.num("account.rpm_limit") != 5 || r.num("account.monthly_request_limit") != 0 {
			t.Fatalf("overrides: %s", r.Raw)
		}
		// The user's own view changes at once (cached account dropped).
		if me := h.do("GET", "/auth/me", u.Token, nil).want(200); me.num("account.rpm_limit") != 5 {
			t.Fatalf("me: %s", me.Raw)
		}
		// Absent leaves an override alone; null returns to the plan's.
		r = h.do("PATCH", path, h.Admin.Token, `{"rpm_limit":null}`).want(200)
		if r.num("account.rpm_limit") != 600 || r.num("account.monthly_request_limit") != 0 {
			t.Fatalf("rpm null: %s", r.Raw)
		}
		r = h.do("PATCH", path, h.Admin.Token, `{"monthly_request_limit":null,"plan":"enterprise","role":"admin"}`).want(200)
		if r.num("account.monthly_request_limit") != 5_000_000 || r.num("account.rpm_limit") != 5000 || r.str("account.role") != "admin" {
			t.Fatalf("back to the plan: %s", r.Raw)
		}
		h.do("GET", "/admin/accounts", u.Token, nil).want(200) // now an admin, at once
		h.do("PATCH", path, h.Admin.Token, `{"role":"user"}`).want(200)
		h.do("GET", "/admin/accounts", u.Token, nil).wantError(403, "forbidden")
		h.do("PATCH", path, h.Admin.Token, `{}`).want(200)

		for _, b := range []string{
			`{"plan":"gold"}`, `{"plan":null}`, `{"role":"root"}`, `{"role":null}`, `{"active":null}`, `{"active":"no"}`,
			`{"rpm_limit":-1}`, `{"monthly_request_limit":-5}`, `{"rpm_limit":1.5}`, `{"rpm_limit":"10"}`,
			`{"email":"new@example.com"}`, `{"balance_micros":100}`, `{"email_verified":true}`, `{"name":"x"}`, ``,
		} {
			h.do("PATCH", path, h.Admin.Token, b).wantError(400, "invalid_request")
		}
		// An admin cannot lock themselves out.
		h.do("PATCH", "/admin/accounts/"+h.Admin.ID, h.Admin.Token, `{"active":false}`).wantError(400, "invalid_request")
		h.do("PATCH", "/admin/accounts/"+h.Admin.ID, h.Admin.Token, `{"role":"user"}`).wantError(400, "invalid_request")
		h.do("PATCH", "/admin/accounts/acct_nope", h.Admin.Token, `{"plan":"pro"}`).wantError(404, "not_found")
		final := h.do("GET", "/admin/accounts/"+u.ID, h.Admin.Token, nil).want(200)
		if final.str("account.plan") != "enterprise" || final.str("account.role") != "user" || final.num("account.balance_micros") != 0 {
			t.Fatalf("refused patches changed something: %s", final.Raw)
		}
	})
}

// Disabling an account makes its sessions and keys answer 403
// account_disabled at once, on every replica; enabling it restores them.
func TestDisabledAccount(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		r2 := h.replica(h.Bus)
		u := h.newUser()
		_, secret := h.createKey(u, nil)
		for _, s := range []*harness{h, r2} {
			s.do("GET", "/auth/me", u.Token, nil).want(200)
			s.do("GET", "/auth/me", secret, nil).want(200)
		}
		if r := h.do("PATCH", "/admin/accounts/"+u.ID, h.Admin.Token, `{"active":false}`).want(200); r.get("account.active") != false {
			t.Fatalf("patch: %s", r.Raw)
		}
		for _, s := range []*harness{h, r2} {
			s.do("GET", "/auth/me", u.Token, nil).wantError(403, "account_disabled")
			s.do("GET", "/auth/me", secret, nil).wantError(403, "account_disabled")
			s.do("GET", "/account/balance", secret, nil).wantError(403, "account_disabled")
			s.do("POST", "/api-keys", u.Token, map[string]any{"name": "x"}).wantError(403, "account_disabled")
		}
		h.do("POST", "/auth/login", "", map[string]string{"email": u.Email, "password": testPassword}).wantError(403, "account_disabled")
		h.do("POST", "/auth/refresh", "", map[string]string{"refresh_token": u.Refresh}).wantError(403, "account_disabled")

		h.do("PATCH", "/admin/accounts/"+u.ID, h.Admin.Token, `{"active":true}`).want(200)
		for _, s := range []*harness{h, r2} {
			s.do("GET", "/auth/me", u.Token, nil).want(200)
			s.do("GET", "/auth/me", secret, nil).want(200)
		}
	})
}

func TestAdminCreateKey(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		r := h.do("POST", "/admin/api-keys", h.Admin.Token, map[string]any{"account_id": u.ID, "name": "issued", "rpm_limit": 7}).want(201)
		if r.str("name") != "issued" || r.str("key") == "" || r.num("rpm_limit") != 7 {
			t.Fatalf("admin key: %s", r.Raw)
		}
		if me := h.do("GET", "/auth/me", r.str("key"), nil).want(200); me.str("account.id") != u.ID {
			t.Fatalf("the key acts as %s", me.str("account.id"))
		}
		if l := h.do("GET", "/api-keys", u.Token, nil).want(200); l.str("data.0.id") != r.str("id") {
			t.Fatalf("the owner does not see it: %s", l.Raw)
		}
		if l := h.do("GET", "/api-keys", h.Admin.Token, nil).want(200); len(l.list("data")) != 0 {
			t.Fatalf("the admin owns it: %s", l.Raw)
		}
		h.do("POST", "/admin/api-keys", h.Admin.Token, map[string]any{"account_id": "acct_nope", "name": "x"}).wantError(404, "not_found")
		h.do("POST", "/admin/api-keys", h.Admin.Token, map[string]any{"name": "x"}).wantError(400, "invalid_request")
		h.do("POST", "/admin/api-keys", h.Admin.Token, map[string]any{"account_id": u.ID, "allowed_ips": []string{"x"}}).
			wantError(400, "invalid_request")
	})
}

func TestAdminTopUp(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		key := withHeader("Idempotency-Key", "topup-0001")
		body := map[string]any{"account_id": u.ID, "amount_usd": "2.5", "note": "welcome credit"}
		first := h.do("POST", "/admin/top-up", h.Admin.Token, body, key).want(201)
		txID := first.str("transaction.id")
		if first.str("transaction.type") != "topup" || first.num("transaction.amount_micros") != 2_500_000 ||
			first.num("balance_micros") != 2_500_000 || first.num("transaction.balance_after_micros") != 2_500_000 ||
			first.str("transaction.reference") != "admin-topup:"+u.ID+":topup-0001" ||
			first.str("transaction.description") != "Admin top-up: welcome credit" || first.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("first: %s", first.Raw)
		}
		// The same key and body: the same transaction, nothing credited.
		again := h.do("POST", "/admin/top-up", h.Admin.Token, body, key).want(201)
		if again.str("transaction.id") != txID || again.num("balance_micros") != 2_500_000 || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay: %s", again.Raw)
		}
		// The same key with another amount or note: 409.
		h.do("POST", "/admin/top-up", h.Admin.Token, map[string]any{"account_id": u.ID, "amount_usd": "3", "note": "welcome credit"}, key).
			wantError(409, "conflict")
		h.do("POST", "/admin/top-up", h.Admin.Token, map[string]any{"account_id": u.ID, "amount_usd": 2.5, "note": "other"}, key).
			wantError(409, "conflict")
		// The same amount as a JSON number is the same request.
		h.do("POST", "/admin/top-up", h.Admin.Token, map[string]any{"account_id": u.ID, "amount_usd": 2.5, "note": "welcome credit"}, key).want(201)
		if n := h.scalar("SELECT COUNT(*) FROM ledger_entries WHERE account_id = ?", u.ID); n != 1 {
			t.Fatalf("%d entries after replays, want 1", n)
		}
		// Without a key every call is a new top-up.
		h.topUp(u.ID, "1")
		r := h.topUp(u.ID, "1")
		if r.num("balance_micros") != 4_500_000 || !bytes.Contains(r.Raw, []byte(`"balance_usd":4.5`)) {
			t.Fatalf("balance: %s", r.Raw)
		}
		for _, b := range []map[string]any{
			{"account_id": u.ID, "amount_usd": "-1"},
			{"account_id": u.ID, "amount_usd": -1},
			{"account_id": u.ID, "amount_usd": "0"},
			{"account_id": u.ID, "amount_usd": 0},
			{"account_id": u.ID, "amount_usd": "0.0000001"},
			{"account_id": u.ID, "amount_usd": "1e3"},
			{"account_id": u.ID, "amount_usd": "ten"},
			{"account_id": u.ID, "amount_usd": true},
			{"account_id": u.ID, "amount_usd": "10000000.000001"},
			{"account_id": u.ID},
			{"amount_usd": "1"},
		} {
			h.do("POST", "/admin/top-up", h.Admin.Token, b).wantError(400, "invalid_request")
		}
		h.do("POST", "/admin/top-up", h.Admin.Token, map[string]any{"account_id": u.ID, "amount_usd": "1"},
			withHeader("Idempotency-Key", "has space")).wantError(400, "invalid_request")
		h.do("POST", "/admin/top-up", h.Admin.Token, map[string]any{"account_id": "acct_nope", "amount_usd": "1"}).wantError(404, "not_found")
		if got := h.scalar("SELECT balance_micros FROM accounts WHERE id = ?", u.ID); got != 4_500_000 {
			t.Fatalf("balance %d after refused top-ups", got)
		}
		assertBalancesMatchLedger(t, h)
	})
}

// Concurrent top-ups, some sharing an idempotency key, keep every balance
// equal to the sum of its ledger entries.
func TestAdminTopUpConcurrent(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		a, b := h.newUser(), h.newUser()
		const distinct, sameKey = 30, 10
		var wg sync.WaitGroup
		statuses := make(chan int, distinct+sameKey)
		txIDs := make(chan string, sameKey)
		for i := 0; i < distinct; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				acct := a.ID
				if i%2 == 1 {
					acct = b.ID
				}
				r := h.do("POST", "/admin/top-up", h.Admin.Token, map[string]any{"account_id": acct, "amount_usd": fmt.Sprintf("0.%06d", i+1)})
				statuses <- r.Status
			}(i)
		}
		for i := 0; i < sameKey; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := h.do("POST", "/admin/top-up", h.Admin.Token, map[string]any{"account_id": a.ID, "amount_usd": "1"},
					withHeader("Idempotency-Key", "same-key"))
				statuses <- r.Status
				if r.Status == 201 {
					txIDs <- r.str("transaction.id")
				}
			}()
		}
		wg.Wait()
		close(statuses)
		close(txIDs)
		for s := range statuses {
			if s != 201 {
				t.Fatalf("a concurrent top-up answered %d", s)
			}
		}
		var first string
		for id := range txIDs {
			if first == "" {
				first = id
			} else if id != first {
				t.Fatalf("one idempotency key gave two transactions: %s and %s", first, id)
			}
		}
		if n := h.scalar("SELECT COUNT(*) FROM ledger_entries"); n != distinct+1 {
			t.Fatalf("%d ledger entries, want %d", n, distinct+1)
		}
		var wantA, wantB int64 = 1_000_000, 0
		for i := 0; i < distinct; i++ {
			if i%2 == 1 {
				wantB += int64(i + 1)
			} else {
				wantA += int64(i + 1)
			}
		}
		if got := h.scalar("SELECT balance_micros FROM accounts WHERE id = ?", a.ID); got != wantA {
			t.Fatalf("A's balance %d, want %d", got, wantA)
		}
		if got := h.scalar("SELECT balance_micros FROM accounts WHERE id = ?", b.ID); got != wantB {
			t.Fatalf("B's balance %d, want %d", got, wantB)
		}
		assertBalancesMatchLedger(t, h)
	})
}

// assertBalancesMatchLedger checks balance_micros = SUM(ledger) for every
// account, and that each entry's balance_after chain is consistent.
func assertBalancesMatchLedger(t *testing.T, h *harness) {
	t.Helper()
	var bad []struct {
		ID            string
		BalanceMicros int64
		Sum           int64
	}
	err := h.DB.Raw(`SELECT a.id, a.balance_micros, COALESCE(SUM(l.amount_micros), 0) AS sum
		FROM accounts a LEFT JOIN ledger_entries l ON l.account_id = a.id
		GROUP BY a.id, a.balance_micros HAVING a.balance_micros <> COALESCE(SUM(l.amount_micros), 0)`).Scan(&bad).Error
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Fatalf("balances differ from their ledgers: %+v", bad)
	}
	// Walking each account's entries in id order, balance_after is the running sum.
	var rows []struct {
		AccountID          string
		AmountMicros       int64
		BalanceAfterMicros int64
	}
	if err := h.DB.Raw(`SELECT account_id, amount_micros, balance_after_micros FROM ledger_entries ORDER BY account_id, id`).
		Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	running := map[string]int64{}
	for _, r := range rows {
		running[r.AccountID] += r.AmountMicros
		if running[r.AccountID] != r.BalanceAfterMicros {
			t.Fatalf("account %s: balance_after %d, running sum %d", r.AccountID, r.BalanceAfterMicros, running[r.AccountID])
		}
	}
}
