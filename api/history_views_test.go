package api_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm/logger"

	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/internal/db"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

// The views of past usage read the day sums: after real settlements (with
// an API key and with a session, on two models) and older logs, every
// figure of /account/usage, /account/billing, GET /api-keys/{id} and the
// admin account views equals the one summed from the usage logs
// themselves, and the day sums pass the verify check.
func TestHistoryViewsEqualTheLogs(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		inf := newInference(t, dialect, fakeupstream.Options{})
		u, key := inf.fundedKey("10", map[string]any{"name": "k", "spend_limit_usd": "5", "limit_reset": "monthly"})
		keyID := inf.do("GET", "/api-keys", u.Token, nil).want(200).str("data.0.id")
		for i, m := range []string{"openai/gpt-4o-mini", "openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-20241022", "openai/gpt-4o-mini"} {
			token := key
			if i == 3 {
				token = u.Token // a session's request: no key
			}
			inf.do("POST", "/v1/chat/completions", token, chatBody(m, strings.Repeat("word ", i+1))).want(200)
		}
		now := time.Now().UTC()
		// older history: last month (or earlier) and 40 days ago, as a
		// session, so the key's period holds only today's requests
		for _, at := range []time.Time{now.AddDate(0, 0, -40), time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Add(-time.Hour)} {
			inf.harness.usageLog(models.UsageLog{ID: ids.New("gen"), AccountID: u.ID, Model: "openai/gpt-4o-mini", Provider: "openai",
				PriceVersion: 1, PromptTokens: 11, CompletionTokens: 3, ChargedMicros: 777, CreatedAt: at})
		}
		inf.waitReservedZero(u.ID)

		type sums struct{ requests, charges, prompt, completion, charged int64 }
		logSums := func(where string, args ...any) sums {
			t.Helper()
			var s sums
			row := inf.DB.Raw(`SELECT COUNT(*), COALESCE(SUM(CASE WHEN charged_micros > 0 THEN 1 ELSE 0 END), 0),
				COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(charged_micros), 0)
				FROM usage_logs WHERE account_id = ? AND `+where, append([]any{u.ID}, args...)...).Row()
			if err := row.Scan(&s.requests, &s.charges, &s.prompt, &s.completion, &s.charged); err != nil {
				t.Fatal(err)
			}
			return s
		}
		today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)

		// /account/usage: totals, per model and per day
		for _, days := range []int{7, 90} {
			r := inf.do("GET", fmt.Sprintf("/account/usage?days=%d", days), key, nil).want(200)
			since := today.AddDate(0, 0, -(days - 1))
			want := logSums("created_at >= ?", since)
			if got := (sums{r.num("totals.requests"), want.charges, r.num("totals.prompt_tokens"), r.num("totals.completion_tokens"),
				r.num("totals.cost_micros")}); got != want || want.requests == 0 {
				t.Fatalf("%d days: usage totals %+v, the logs sum to %+v", days, got, want)
			}
			for i := range r.list("by_model") {
				p := fmt.Sprintf("by_model.%d.", i)
				w := logSums("created_at >= ? AND model = ?", since, r.str(p+"model"))
				if r.num(p+"requests") != w.requests || r.num(p+"cost_micros") != w.charged || r.num(p+"prompt_tokens") != w.prompt {
					t.Fatalf("%d days, model %s: %s; the logs sum to %+v", days, r.str(p+"model"), r.Raw, w)
				}
			}
			for i := range r.list("by_day") {
				p := fmt.Sprintf("by_day.%d.", i)
				day, _ := time.Parse(time.DateOnly, r.str(p+"date"))
				w := logSums("created_at >= ? AND created_at < ?", day, day.AddDate(0, 0, 1))
				if r.num(p+"requests") != w.requests || r.num(p+"cost_micros") != w.charged || r.num(p+"completion_tokens") != w.completion {
					t.Fatalf("%d days, day %s: %s; the logs sum to %+v", days, day, r.Raw, w)
				}
			}
		}

		// /account/billing: charges per month
		b := inf.do("GET", "/account/billing", key, nil).want(200)
		if len(b.list("monthly_charges")) < 2 {
			t.Fatalf("billing: want this month and an earlier one: %s", b.Raw)
		}
		for i := range b.list("monthly_charges") {
			p := fmt.Sprintf("monthly_charges.%d.", i)
			m, err := time.Parse("2006-01", b.str(p+"month"))
			if err != nil {
				t.Fatal(err)
			}
			w := logSums("created_at >= ? AND created_at < ?", m, m.AddDate(0, 1, 0))
			if b.num(p+"charged_micros") != w.charged || b.num(p+"requests") != w.charges {
				t.Fatalf("billing, month %s: %s; the logs sum to %+v", b.str(p+"month"), b.Raw, w)
			}
		}

		// GET /api-keys/{id}: the key's requests this (monthly) period
		k := inf.do("GET", "/api-keys/"+keyID, u.Token, nil).want(200)
		w := logSums("api_key_id = ? AND created_at >= ?", keyID, month)
		if w.requests != 3 || k.num("usage.spent_micros") != w.charged || k.num("usage.requests") != w.requests ||
			k.num("usage.prompt_tokens") != w.prompt || k.num("usage.completion_tokens") != w.completion {
			t.Fatalf("key usage: %s; the logs sum to %+v", k.Raw, w)
		}
		// ... which is what its spend limit counted too
		if spent := inf.scalar(`SELECT spent_micros FROM api_keys WHERE id = ?`, keyID); spent != w.charged {
			t.Fatalf("key usage shows %d, the limit counted %d", w.charged, spent)
		}

		// the admin views: this month's usage
		w = logSums("created_at >= ?", month)
		a := inf.do("GET", "/admin/accounts/"+u.ID, inf.Admin.Token, nil).want(200)
		if a.num("account.month_usage.requests") != w.requests || a.num("account.month_usage.charged_micros") != w.charged ||
			a.str("account.month_usage.month") != month.Format("2006-01") {
			t.Fatalf("admin account: %s; the logs sum to %+v", a.Raw, w)
		}
		found := false
		for _, row := range inf.do("GET", "/admin/accounts?email="+u.Email, inf.Admin.Token, nil).want(200).list("data") {
			r := row.(map[string]any)
			if r["id"] == u.ID {
				found = true
				mu := r["month_usage"].(map[string]any)
				if fmt.Sprint(mu["requests"]) != fmt.Sprint(w.requests) || fmt.Sprint(mu["charged_micros"]) != fmt.Sprint(w.charged) {
					t.Fatalf("admin list: %v; the logs sum to %+v", mu, w)
				}
			}
		}
		if !found {
			t.Fatal("admin list: account not found")
		}

		ms, err := dailyusage.Check(context.Background(), inf.DB, time.Time{})
		if err != nil || len(ms) != 0 {
			t.Fatalf("day sums differ from the logs: %v %v", ms, err)
		}
	})
}

// sqlCapture is a GORM logger that keeps every statement run, with its
// arguments inlined.
type sqlCapture struct {
	mu  sync.Mutex
	sql []string
}

func (c *sqlCapture) LogMode(logger.LogLevel) logger.Interface      { return c }
func (c *sqlCapture) Info(context.Context, string, ...interface{})  {}
func (c *sqlCapture) Warn(context.Context, string, ...interface{})  {}
func (c *sqlCapture) Error(context.Context, string, ...interface{}) {}
func (c *sqlCapture) Trace(_ context.Context, _ time.Time, fc func() (string, int64), _ error) {
	s, _ := fc()
	c.mu.Lock()
	c.sql = append(c.sql, s)
	c.mu.Unlock()
}

// take returns the statements run since the last take.
func (c *sqlCapture) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.sql
	c.sql = nil
	return out
}

// grows are the tables that grow with every request.
var grows = regexp.MustCompile(`\b(usage_logs|ledger_entries|daily_usage|audit_entries|api_keys)\b`)

// No view of past usage, spend or lists reads more of a table that grows
// with every request than its answer needs: none names usage_logs except
// GET /v1/generation (by its primary key), and on SQLite, whose planner
// without statistics picks the same plan for 10 rows as for 10M, no
// statement of theirs scans usage_logs, ledger_entries, daily_usage or
// audit_entries (every access is an index search), and the transactions
// cursor is a range of the index, not a walk from the newest entry.
// Deterministic: it looks at the statements and their plans, not at time.
func TestHistoryViewsUseIndexesOnly(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		h.topUp(u.ID, "5")
		keyID, key := h.createKey(u, map[string]any{"name": "k", "spend_limit_usd": "1", "limit_reset": "daily"})
		gen := ids.New("gen")
		for i := 0; i < 3; i++ {
			id := gen
			if i > 0 {
				id = ids.New("gen")
			}
			h.usageLog(models.UsageLog{ID: id, AccountID: u.ID, APIKeyID: &keyID, Model: "openai/gpt-4o-mini", Provider: "openai",
				PriceVersion: 1, PromptTokens: 1, CompletionTokens: 1, ChargedMicros: 0, CreatedAt: time.Now().UTC()})
		}
		for i := 0; i < 3; i++ {
			h.topUp(u.ID, "1")
		}

		// a replica on its own handle whose logger keeps the statements
		// (set before anything uses the handle)
		d, err := db.Open(h.DBURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		capture := &sqlCapture{}
		d.DB.Logger = capture
		r := &harness{t: t, opts: h.opts, Dialect: h.Dialect, DB: d, DBURL: h.DBURL, Cfg: h.Cfg, Bus: h.Bus, Mail: h.Mail, Log: h.Log, Admin: h.Admin}
		r.wire()

		cursor := r.do("GET", "/account/transactions?limit=1", key, nil).want(200).str("next_cursor")
		acctCursor := r.do("GET", "/admin/accounts?limit=1", h.Admin.Token, nil).want(200).str("next_cursor")
		capture.take()
		views := []struct {
			path, token string
		}{
			{"/account/usage?days=7", key}, {"/account/usage?days=90", key}, {"/account/billing", key},
			{"/account/transactions?limit=2", key}, {"/account/transactions?limit=2&cursor=" + cursor, key},
			{"/v1/generation?id=" + gen, key},
			{"/api-keys", key}, {"/api-keys?limit=1&cursor=" + encodeB64(keyID), key}, {"/api-keys/" + keyID, key},
			{"/admin/accounts", h.Admin.Token}, {"/admin/accounts?limit=1&cursor=" + acctCursor, h.Admin.Token},
			{"/admin/accounts/" + u.ID, h.Admin.Token},
			{"/account/audit", u.Token}, {"/admin/audit", h.Admin.Token},
		}
		for _, v := range views {
			r.do("GET", v.path, v.token, nil).want(200)
			stmts := capture.take()
			if len(stmts) == 0 {
				t.Fatalf("GET %s: no statement captured", v.path)
			}
			for _, s := range stmts {
				if strings.Contains(s, "usage_logs") && !strings.HasPrefix(v.path, "/v1/generation") {
					t.Errorf("GET %s reads usage_logs: %s", v.path, s)
				}
				if dialect != db.SQLite || !grows.MatchString(s) || !isRead(s) {
					continue
				}
				steps := plan(t, d, s)
				// walking an index in the statement's order until its LIMIT
				// is a keyset page, not a scan
				inOrder := strings.Contains(strings.ToUpper(s), " LIMIT ") && !strings.Contains(strings.Join(steps, "\n"), "TEMP B-TREE FOR ORDER BY")
				for _, step := range steps {
					walk := inOrder && (strings.Contains(step, " USING INDEX ") || strings.Contains(step, " USING COVERING INDEX "))
					if m := grows.FindString(step); m != "" && strings.HasPrefix(strings.TrimSpace(step), "SCAN") && !walk {
						t.Errorf("GET %s scans %s (%s):\n%s", v.path, m, step, s)
					}
					if strings.Contains(v.path, "transactions") && strings.Contains(v.path, "cursor=") &&
						strings.Contains(step, "ledger_entries") && strings.HasPrefix(step, "SEARCH") && !strings.Contains(step, "seq<") &&
						!strings.Contains(step, "id=?") {
						t.Errorf("GET %s walks the ledger from the newest entry to the cursor (%s):\n%s", v.path, step, s)
					}
				}
			}
		}
	})
}

func isRead(s string) bool {
	s = strings.ToUpper(strings.TrimSpace(s))
	return strings.HasPrefix(s, "SELECT") || strings.HasPrefix(s, "WITH")
}

// plan is SQLite's query plan of s, one step a line.
func plan(t *testing.T, d *db.DB, s string) []string {
	t.Helper()
	rows, err := d.SQL().Query("EXPLAIN QUERY PLAN " + s)
	if err != nil {
		t.Fatalf("explain %s: %v", s, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		out = append(out, detail)
	}
	return out
}

// GET /api-keys pages by cursor like the other lists that grow: every key
// once, newest first, deleted keys left out.
func TestKeysListPages(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		var made []string
		for i := 0; i < 5; i++ {
			id, _ := h.createKey(u, nil)
			made = append(made, id)
		}
		h.do("DELETE", "/api-keys/"+made[2], u.Token, nil).want(204)
		seen := walk(h, "/api-keys", u.Token, 2, func(int) {})
		want := []string{made[4], made[3], made[1], made[0]}
		if fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Fatalf("pages gave %v, want %v", seen, want)
		}
		if r := h.do("GET", "/api-keys", u.Token, nil).want(200); len(r.list("data")) != 4 || r.get("next_cursor") != nil {
			t.Fatalf("one page: %s", r.Raw)
		}
		for _, q := range []string{"limit=0", "limit=501", "cursor=!!!"} {
			h.do("GET", "/api-keys?"+q, u.Token, nil).wantError(400, "invalid_request")
		}
	})
}
