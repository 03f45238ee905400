package api_test

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/beaver-gateway/beaver/internal/testenv"
)

// walk pages through path (a Beaver list: data, next_cursor) limit rows at
// a time, calling between after each page (rows made meanwhile), and
// returns the ids seen in order.
func walk(h *harness, path, token string, limit int, between func(page int)) []string {
	h.t.Helper()
	var seen []string
	cursor := ""
	for page := 0; page < 100; page++ {
		r := h.do("GET", fmt.Sprintf("%s%slimit=%d&cursor=%s", path, sep(path), limit, url.QueryEscape(cursor)), token, nil).want(200)
		data := r.list("data")
		if len(data) > limit {
			h.t.Fatalf("%s: %d rows on a page of %d", path, len(data), limit)
		}
		for _, row := range data {
			seen = append(seen, row.(map[string]any)["id"].(string))
		}
		between(page)
		if r.get("next_cursor") == nil {
			return seen
		}
		cursor = r.str("next_cursor")
	}
	h.t.Fatalf("%s: more than 100 pages", path)
	return nil
}

func sep(path string) string {
	for _, c := range path {
		if c == '?' {
			return "&"
		}
	}
	return "?"
}

// exactlyOnce checks that seen holds every id of want once, and nothing
// else but ids made while paging (made), which are newer than every page
// and so never show up after the first.
func exactlyOnce(t *testing.T, what string, seen, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, id := range seen {
		count[id]++
	}
	for _, id := range want {
		if count[id] != 1 {
			t.Errorf("%s: %s seen %d times, want once", what, id, count[id])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%s: %d rows seen, want the %d there were when paging began: %v", what, len(seen), len(want), seen)
	}
}

// Keyset pages neither skip nor repeat rows while rows are added between
// page reads (newest first: the new ones are before the first page), and a
// cursor that is not one the API gave is a 400.
func TestPaginationUnderInserts(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		t.Run(testenv.Name(dialect), func(t *testing.T) {
			h := newHarness(t, dialect)

			// /account/transactions: ledger entries, by ledger seq.
			u := h.newUser()
			for range 11 {
				h.topUp(u.ID, "1")
			}
			var want []string
			for _, row := range h.do("GET", "/account/transactions?limit=200", u.Token, nil).want(200).list("data") {
				want = append(want, row.(map[string]any)["id"].(string))
			}
			if len(want) != 11 {
				t.Fatalf("%d transactions, want 11", len(want))
			}
			seen := walk(h, "/account/transactions", u.Token, 3, func(int) { h.topUp(u.ID, "1") })
			exactlyOnce(t, "transactions", seen, want)

			// /admin/accounts: accounts, by (created_at, id).
			for i := range 6 {
				h.do("POST", "/admin/accounts", h.Admin.Token, map[string]any{"email": fmt.Sprintf("page%d@example.com", i),
					"password": testPassword}).want(201)
			}
			want = nil
			for _, row := range h.do("GET", "/admin/accounts?limit=500", h.Admin.Token, nil).want(200).list("data") {
				want = append(want, row.(map[string]any)["id"].(string))
			}
			late := 0
			seen = walk(h, "/admin/accounts", h.Admin.Token, 2, func(page int) {
				late++
				h.do("POST", "/admin/accounts", h.Admin.Token, map[string]any{"email": fmt.Sprintf("late%d@example.com", page),
					"password": testPassword}).want(201)
			})
			exactlyOnce(t, "accounts", seen, want)
			if n := len(walk(h, "/admin/accounts?email=late", h.Admin.Token, 1, func(int) {})); n != late {
				t.Errorf("filtered walk saw %d accounts, want the %d made while paging", n, late)
			}

			for _, p := range []string{"/admin/accounts?cursor=%21%21", "/admin/accounts?cursor=bm9wZQ", "/account/transactions?cursor=%21%21"} {
				tok := h.Admin.Token
				if p[1] == 'a' && p[2] == 'c' {
					tok = u.Token
				}
				h.do("GET", p, tok, nil).wantError(400, "invalid_request")
			}
		})
	}
}
