package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/audit"
)

func TestAuditEndpoints(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		h.do("POST", "/auth/login", "", map[string]string{"email": u.Email, "password": "wrong password here"},
			withHeader("User-Agent", "=cmd|evil")).want(401)
		h.do("POST", "/auth/login", "", map[string]string{"email": "nobody@example.com", "password": "whatever123"}).want(401)
		h.topUp(u.ID, "5")
		keyID, key := h.createKey(u, nil)
		h.do("POST", "/api-keys/"+keyID+"/rotate", u.Token, nil).want(200)
		h.do("PATCH", "/admin/accounts/"+u.ID, h.Admin.Token, map[string]any{"plan": "pro"}).want(200)

		// Own entries only, newest first, with a cursor.
		own := h.do("GET", "/account/audit?limit=2", u.Token, nil).want(200)
		if len(own.list("data")) != 2 || own.get("next_cursor") == nil {
			t.Fatalf("first page: %s", own.Raw)
		}
		all := h.do("GET", "/account/audit?limit=100", u.Token, nil).want(200)
		var actions []string
		for _, e := range all.list("data") {
			actions = append(actions, e.(map[string]any)["action"].(string))
		}
		got := strings.Join(actions, ",")
		for _, want := range []string{"admin.account.updated", "key.rotated", "key.created", "money.topup", "auth.login.failed",
			"auth.login.succeeded", "account.created"} {
			if !strings.Contains(got, want) {
				t.Errorf("own audit lacks %s: %s", want, got)
			}
		}
		if bytes.Contains(all.Raw, []byte("nobody@example.com")) || bytes.Contains(all.Raw, []byte(key)) {
			t.Fatalf("own audit shows others' entries or a secret: %s", all.Raw)
		}
		top := h.do("GET", "/admin/audit?action=money.topup&account="+u.ID, h.Admin.Token, nil).want(200)
		if d := top.list("data"); len(d) != 1 || d[0].(map[string]any)["actor"] != "account:"+h.Admin.ID {
			t.Fatalf("admin top-up entry: %s", top.Raw)
		}
		if c := top.get("data.0.changes.balance_micros.after"); c == nil {
			t.Fatalf("top-up changes: %s", top.Raw)
		}
		// Filters, and the API refuses keys and non-admins.
		unknown := h.do("GET", "/admin/audit?subject=email:nobody@example.com", h.Admin.Token, nil).want(200)
		if len(unknown.list("data")) != 1 {
			t.Fatalf("failed sign-in on an unknown address: %s", unknown.Raw)
		}
		h.do("GET", "/admin/audit", u.Token, nil).wantError(403, "forbidden")
		h.do("GET", "/admin/audit?since=yesterday", h.Admin.Token, nil).wantError(400, "invalid_request")
		h.do("GET", "/admin/audit?format=xml", h.Admin.Token, nil).wantError(400, "invalid_request")

		// CSV export, formula-safe.
		csvResp := h.do("GET", "/admin/audit?format=csv&action=auth.login.failed&limit=200", h.Admin.Token, nil).want(200)
		if !strings.HasPrefix(csvResp.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("csv content type: %v", csvResp.Header)
		}
		recs, err := csv.NewReader(bytes.NewReader(csvResp.Raw)).ReadAll()
		if err != nil || len(recs) != 3 || recs[0][0] != "id" || recs[0][10] != "hash" {
			t.Fatalf("csv: %v %q", err, csvResp.Raw)
		}
		if !bytes.Contains(csvResp.Raw, []byte("'=cmd|evil")) {
			t.Fatalf("a formula user agent is not defused: %s", csvResp.Raw)
		}
		if problems, err := audit.Verify(context.Background(), h.DB.DB); err != nil {
			t.Fatalf("verify: %v %v", err, problems)
		}
	})
}
