package api_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Invoices through the API: an admin top-up is invoiced; the owner lists
// and downloads them (session or API key), anyone else gets 404; billing
// details are edited on /users/me and validated; statements answer as
// JSON and PDF with the ledger's balance.
func TestInvoicesAndStatementsAPI(t *testing.T) {
	forEachDB(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect)
		u := h.newUser()
		other := h.newUser()

		r := h.do("PATCH", "/users/me", u.Token, map[string]any{"billing_details": map[string]any{
			"name": "Acme Ltd", "address": "1 Main St\nSpringfield", "tax_id": "US-99"}}).want(200)
		if r.str("account.billing_details.name") != "Acme Ltd" || r.str("account.billing_details.tax_id") != "US-99" {
			t.Fatalf("billing details %s", r.Raw)
		}
		if got := h.do("GET", "/users/me", u.Token, nil).want(200).str("account.billing_details.address"); got != "1 Main St\nSpringfield" {
			t.Fatalf("address %q", got)
		}
		h.do("PATCH", "/users/me", u.Token, map[string]any{"billing_details": map[string]any{
			"name": strings.Repeat("x", 201)}}).wantError(400, "invalid_request")
		h.do("PATCH", "/users/me", u.Token, map[string]any{"billing_details": map[string]any{
			"address": "1\n2\n3\n4\n5\n6\n7"}}).wantError(400, "invalid_request")
		h.do("PATCH", "/users/me", u.Token, map[string]any{"billing_details": map[string]any{
			"tax_id": "a\tb"}}).wantError(400, "invalid_request")

		h.topUp(other.ID, "1")
		for _, usd := range []string{"10", "12.5", "0.000001"} {
			h.topUp(u.ID, usd)
		}
		h.topUp(other.ID, "2")
		ids := walk(h, "/account/invoices", u.Token, 2, func(int) {})
		if len(ids) != 3 {
			t.Fatalf("listed %v", ids)
		}
		list := h.do("GET", "/account/invoices", u.Token, nil).want(200)
		first := list.list("data")[0].(map[string]any)
		if first["kind"] != "invoice" || fmt.Sprint(first["amount_usd"]) != "0.000001" || fmt.Sprint(first["amount_micros"]) != "1" ||
			first["top_up_id"] != nil || first["refund_id"] != nil || !strings.HasPrefix(first["number"].(string), "BVR-") {
			t.Fatalf("newest invoice %v", first)
		}
		if _, err := time.Parse(time.RFC3339, first["issued_at"].(string)); err != nil {
			t.Fatal(err)
		}
		id := first["id"].(string)

		pdf := h.do("GET", "/account/invoices/"+id+".pdf", u.Token, nil).want(200)
		if pdf.Header.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(pdf.Raw, []byte("%PDF-")) ||
			!strings.Contains(pdf.Header.Get("Content-Disposition"), first["number"].(string)+".pdf") {
			t.Fatalf("pdf %v %q", pdf.Header, pdf.Raw[:min(10, len(pdf.Raw))])
		}
		_, key := h.createKey(u, nil)
		h.do("GET", "/account/invoices/"+id+".pdf", key, nil).want(200)
		if n := len(h.do("GET", "/account/invoices", key, nil).want(200).list("data")); n != 3 {
			t.Fatalf("%d invoices with an API key", n)
		}
		h.do("GET", "/account/invoices/"+id+".pdf", other.Token, nil).wantError(404, "not_found")
		h.do("GET", "/account/invoices/inv_none.pdf", u.Token, nil).wantError(404, "not_found")
		h.do("GET", "/account/invoices/"+id, u.Token, nil).wantError(404, "not_found")
		h.do("GET", "/account/invoices", "", nil).want(401)
		h.do("GET", "/account/invoices/"+id+".pdf", "", nil).want(401)
		if theirs := walk(h, "/account/invoices", other.Token, 1, func(int) {}); len(theirs) != 2 {
			t.Fatalf("the other account lists %v", theirs)
		}
		h.do("GET", "/account/invoices?cursor=bm9wZQ", u.Token, nil).wantError(400, "invalid_request")

		month := time.Now().UTC().Format("2006-01")
		st := h.do("GET", "/account/statements/"+month, u.Token, nil).want(200)
		bal := h.do("GET", "/account/balance", u.Token, nil).want(200).num("balance_micros")
		if st.num("closing_balance_micros") != bal || st.num("top_ups_micros") != 22_500_001 || st.str("customer.name") != "Acme Ltd" {
			t.Fatalf("statement %s (balance %d)", st.Raw, bal)
		}
		sp := h.do("GET", "/account/statements/"+month+".pdf", u.Token, nil).want(200)
		if !bytes.HasPrefix(sp.Raw, []byte("%PDF-")) {
			t.Fatalf("statement pdf %q", sp.Raw[:min(10, len(sp.Raw))])
		}
		h.do("GET", "/account/statements/2026-13", u.Token, nil).wantError(400, "invalid_request")
		h.do("GET", "/account/statements/"+time.Now().UTC().AddDate(0, 2, 0).Format("2006-01"), u.Token, nil).
			wantError(400, "invalid_request")
		h.do("GET", "/account/statements/"+month, "", nil).want(401)
	})
}
