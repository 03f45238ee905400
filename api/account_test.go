package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

// Money is rendered exactly: a top-up of $0.000005 shows as 0.000005, never
// 5e-06, in every answer that carries it.
func TestMoneyRenderedExactly(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		r := h.topUp(u.ID, "0.000005")
		for _, want := range []string{`"balance_usd":0.000005`, `"balance_micros":5`, `"amount_usd":0.000005`, `"amount_micros":5`} {
			if !bytes.Contains(r.Raw, []byte(want)) {
				t.Errorf("top-up answer lacks %s: %s", want, r.Raw)
			}
		}
		b := h.do("GET", "/account/balance", u.Token, nil).want(200)
		for _, want := range []string{`"balance_usd":0.000005`, `"available_usd":0.000005`, `"balance_micros":5`,
			`"reserved_micros":0`, `"available_micros":5`, `"currency":"USD"`} {
			if !bytes.Contains(b.Raw, []byte(want)) {
				t.Errorf("balance lacks %s: %s", want, b.Raw)
			}
		}
		me := h.do("GET", "/auth/me", u.Token, nil).want(200)
		if !bytes.Contains(me.Raw, []byte(`"balance_usd":0.000005`)) {
			t.Errorf("me: %s", me.Raw)
		}
		// A number input is exact too, and large amounts keep every digit.
		r = h.do("POST", "/admin/top-up", h.Admin.Token, `{"account_id":"`+u.ID+`","amount_usd":1234567.891011}`).want(201)
		if !bytes.Contains(r.Raw, []byte(`"balance_usd":1234567.891016`)) || r.num("balance_micros") != 1234567891016 {
			t.Errorf("large top-up: %s", r.Raw)
		}
	})
}

// Transactions list in commit order, not id order: an entry whose id was
// taken before another replica's entries committed, but which committed
// after them, comes first, and each entry's balance before is the next
// one's balance after, across pages.
func TestTransactionsFollowCommitOrder(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		for i := 1; i <= 3; i++ {
			h.topUp(u.ID, fmt.Sprintf("0.00000%d", i))
		}
		// What a slower replica writes: the smallest id, the next seq.
		late := models.LedgerEntry{ID: "txn_00000000000000000000000000", AccountID: u.ID, Type: models.EntryTopUp,
			AmountMicros: 10, BalanceAfterMicros: 16, Reference: "late", CreatedAt: time.Now().UTC(), Seq: 4}
		if err := h.DB.Create(&late).Error; err != nil {
			t.Fatal(err)
		}
		h.DB.Exec("UPDATE accounts SET balance_micros = 16, ledger_seq = 4 WHERE id = ?", u.ID)

		var got []map[string]any
		for cursor := ""; ; {
			q := "/account/transactions?limit=1"
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			r := h.do("GET", q, u.Token, nil).want(200)
			for _, e := range r.list("data") {
				got = append(got, e.(map[string]any))
			}
			if r.get("next_cursor") == nil {
				break
			}
			cursor = r.str("next_cursor")
			if len(got) > 4 {
				t.Fatal("pagination does not end")
			}
		}
		if len(got) != 4 || got[0]["id"] != late.ID {
			t.Fatalf("want the late entry first of 4: %v", got)
		}
		for i := 0; i+1 < len(got); i++ {
			num := func(e map[string]any, f string) int64 { n, _ := e[f].(json.Number).Int64(); return n }
			if num(got[i], "balance_after_micros")-num(got[i], "amount_micros") != num(got[i+1], "balance_after_micros") {
				t.Fatalf("balances do not chain at %d: %v", i, got)
			}
		}
	})
}

// Transactions come newest first; walking the cursor returns each entry
// exactly once, and only the caller's.
func TestTransactionsPagination(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u, other := h.newUser(), h.newUser()
		const n = 7
		for i := 1; i <= n; i++ {
			h.topUp(u.ID, fmt.Sprintf("0.00000%d", i))
			h.topUp(other.ID, "1")
		}
		first := h.do("GET", "/account/transactions", u.Token, nil).want(200)
		if len(first.list("data")) != n || first.get("next_cursor") != nil {
			t.Fatalf("default page: %s", first.Raw)
		}
		for _, f := range []string{"id", "type", "amount_micros", "amount_usd", "balance_after_micros", "reference", "description", "created_at"} {
			if _, ok := first.get("data.0").(map[string]any)[f]; !ok {
				t.Errorf("T lacks %s: %s", f, first.Raw)
			}
		}
		if first.str("data.0.type") != "topup" || first.num("data.0.amount_micros") != n || first.num("data.0.balance_after_micros") != 28 {
			t.Fatalf("newest first: %s", first.Raw)
		}

		seen := map[string]bool{}
		var amounts []int64
		cursor, pages := "", 0
		for {
			q := "/account/transactions?limit=3"
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			r := h.do("GET", q, u.Token, nil).want(200)
			pages++
			for i := range r.list("data") {
				id := r.str(fmt.Sprintf("data.%d.id", i))
				if seen[id] {
					t.Fatalf("entry %s seen twice", id)
				}
				seen[id] = true
				amounts = append(amounts, r.num(fmt.Sprintf("data.%d.amount_micros", i)))
			}
			if r.get("next_cursor") == nil {
				break
			}
			cursor = r.str("next_cursor")
			if pages > n {
				t.Fatal("pagination does not end")
			}
		}
		if pages != 3 || len(seen) != n {
			t.Fatalf("%d pages, %d entries", pages, len(seen))
		}
		for i, a := range amounts {
			if a != int64(n-i) {
				t.Fatalf("order: %v", amounts)
			}
		}
		// Exactly full pages end with a null cursor on the last one.
		r := h.do("GET", "/account/transactions?limit=7", u.Token, nil).want(200)
		if r.get("next_cursor") != nil {
			t.Fatalf("next_cursor after the last entry: %s", r.Raw)
		}
		// Another account's cursor shows nothing of it.
		oc := h.do("GET", "/account/transactions?limit=1", other.Token, nil).want(200).str("next_cursor")
		for _, e := range h.do("GET", "/account/transactions?limit=200&cursor="+oc, u.Token, nil).want(200).list("data") {
			if id := e.(map[string]any)["id"].(string); !seen[id] {
				t.Fatalf("saw someone else's entry %s", id)
			}
		}
		for _, q := range []string{"limit=0", "limit=201", "limit=abc", "limit=-1", "cursor=!!!", "cursor=" + encodeB64("a b"), "cursor=" + url.QueryEscape("not base64!")} {
			h.do("GET", "/account/transactions?"+q, u.Token, nil).wantError(400, "invalid_request")
		}
	})
}

func TestUsage(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u, other := h.newUser(), h.newUser()
		now := time.Now().UTC()
		yesterday := now.AddDate(0, 0, -1)
		log := func(acct, model string, at time.Time, in, out, charged int64) {
			t.Helper()
			h.usageLog(models.UsageLog{ID: ids.New("gen"), RequestID: ids.New("req"), AccountID: acct, Model: model,
				Provider: "x", PriceVersion: 1, PromptTokens: in, CompletionTokens: out, ChargedMicros: charged, CreatedAt: at})
		}
		log(u.ID, "openai/gpt-4o-mini", now, 10, 5, 100)
		log(u.ID, "openai/gpt-4o-mini", now, 20, 5, 200)
		log(u.ID, "anthropic/claude-3-5-haiku", yesterday, 7, 3, 5)
		log(u.ID, "openai/gpt-4o-mini", now.AddDate(0, 0, -10), 1, 1, 1000)
		log(u.ID, "openai/gpt-4o-mini", now.AddDate(0, 0, -100), 1, 1, 7777)
		log(other.ID, "openai/gpt-4o-mini", now, 99, 99, 9999)

		r := h.do("GET", "/account/usage?days=7", u.Token, nil).want(200)
		if r.num("days") != 7 || r.num("totals.requests") != 3 || r.num("totals.prompt_tokens") != 37 ||
			r.num("totals.completion_tokens") != 13 || r.num("totals.cost_micros") != 305 {
			t.Fatalf("7-day totals: %s", r.Raw)
		}
		if len(r.list("by_model")) != 2 || r.str("by_model.0.model") != "openai/gpt-4o-mini" || r.num("by_model.0.requests") != 2 ||
			r.num("by_model.0.cost_micros") != 300 || r.str("by_model.1.model") != "anthropic/claude-3-5-haiku" {
			t.Fatalf("by_model: %s", r.Raw)
		}
		if len(r.list("by_day")) != 2 || r.str("by_day.0.date") != yesterday.Format("2006-01-02") ||
			r.str("by_day.1.date") != now.Format("2006-01-02") || r.num("by_day.1.requests") != 2 || r.num("by_day.0.cost_micros") != 5 {
			t.Fatalf("by_day: %s", r.Raw)
		}
		for _, want := range []string{`"cost_usd":0.000305`, `"cost_usd":0.000005`} {
			if !bytes.Contains(r.Raw, []byte(want)) {
				t.Errorf("usage lacks %s: %s", want, r.Raw)
			}
		}
		if n := h.do("GET", "/account/usage?days=30", u.Token, nil).want(200).num("totals.cost_micros"); n != 1305 {
			t.Fatalf("30 days: %d", n)
		}
		if n := h.do("GET", "/account/usage?days=90", u.Token, nil).want(200).num("totals.requests"); n != 4 {
			t.Fatalf("90 days: %d requests", n)
		}
		if n := h.do("GET", "/account/usage", u.Token, nil).want(200).num("days"); n != 30 {
			t.Fatalf("default days %d", n)
		}
		empty := h.do("GET", "/account/usage?days=7", h.newUser().Token, nil).want(200)
		if empty.num("totals.requests") != 0 || len(empty.list("by_model")) != 0 || len(empty.list("by_day")) != 0 {
			t.Fatalf("empty usage: %s", empty.Raw)
		}
		for _, d := range []string{"5", "0", "-7", "abc", "7.0", "", "365"} {
			h.do("GET", "/account/usage?days="+d, u.Token, nil).wantError(400, "invalid_request")
		}
	})
}

func TestBillingHistory(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u, other := h.newUser(), h.newUser()
		h.topUp(u.ID, "10")
		h.topUp(u.ID, "0.5")
		h.topUp(other.ID, "3")
		entry := func(acct, typ string, amount int64, at time.Time) {
			t.Helper()
			if typ == models.EntryCharge { // as settlement writes a charge: with its usage log
				gen := ids.New("gen")
				h.usageLog(models.UsageLog{ID: gen, RequestID: ids.New("req"), AccountID: acct, Model: "openai/gpt-4o-mini",
					Provider: "openai", PriceVersion: 1, ChargedMicros: -amount, CreatedAt: at})
			}
			if err := h.DB.Create(&models.LedgerEntry{ID: ids.New("txn"), AccountID: acct, Type: typ, AmountMicros: amount,
				BalanceAfterMicros: 0, Reference: ids.New("ref"), CreatedAt: at}).Error; err != nil {
				t.Fatal(err)
			}
		}
		entry(u.ID, models.EntryCharge, -100, time.Date(2025, 11, 5, 10, 0, 0, 0, time.UTC))
		entry(u.ID, models.EntryCharge, -200, time.Date(2025, 11, 30, 23, 59, 59, 0, time.UTC))
		entry(u.ID, models.EntryCharge, -5, time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC))
		entry(u.ID, models.EntryRefund, 42, time.Date(2025, 12, 2, 0, 0, 0, 0, time.UTC))
		entry(other.ID, models.EntryCharge, -1000, time.Date(2025, 12, 3, 0, 0, 0, 0, time.UTC))

		r := h.do("GET", "/account/billing", u.Token, nil).want(200)
		if len(r.list("top_ups")) != 2 || r.num("top_ups.0.amount_micros") != 500_000 || r.str("top_ups.0.type") != "topup" {
			t.Fatalf("top_ups: %s", r.Raw)
		}
		if len(r.list("refunds")) != 1 || r.num("refunds.0.amount_micros") != 42 {
			t.Fatalf("refunds: %s", r.Raw)
		}
		mc := r.list("monthly_charges")
		if len(mc) != 2 || r.str("monthly_charges.0.month") != "2025-12" || r.num("monthly_charges.0.charged_micros") != 5 ||
			r.num("monthly_charges.0.requests") != 1 || r.str("monthly_charges.1.month") != "2025-11" ||
			r.num("monthly_charges.1.charged_micros") != 300 || r.num("monthly_charges.1.requests") != 2 {
			t.Fatalf("monthly_charges: %s", r.Raw)
		}
		if !bytes.Contains(r.Raw, []byte(`"charged_usd":0.000005`)) {
			t.Fatalf("charged_usd: %s", r.Raw)
		}
		empty := h.do("GET", "/account/billing", h.newUser().Token, nil).want(200)
		if !bytes.Contains(empty.Raw, []byte(`"monthly_charges":[]`)) || !bytes.Contains(empty.Raw, []byte(`"top_ups":[]`)) {
			t.Fatalf("empty billing: %s", empty.Raw)
		}
	})
}

func encodeB64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// usageLog writes a usage log and adds it to its day's sums, as settlement
// does, in one transaction.
func (h *harness) usageLog(l models.UsageLog) {
	h.t.Helper()
	err := h.DB.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&l).Error; err != nil {
			return err
		}
		return dailyusage.Add(tx, dailyusage.Of([]models.UsageLog{l}))
	})
	if err != nil {
		h.t.Fatal(err)
	}
}
