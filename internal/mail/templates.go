package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/beaver-gateway/beaver/internal/money"
)

// Every email has a plain-text part and an HTML part, rendered from the
// templates in templates/: NAME.txt (text/template) and NAME.html
// (html/template, inside layout.html).

//go:embed templates
var templateFS embed.FS

type tmpl struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

func mustTemplate(name string) tmpl {
	return tmpl{
		text: texttemplate.Must(texttemplate.ParseFS(templateFS, "templates/"+name+".txt")),
		html: htmltemplate.Must(htmltemplate.ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")),
	}
}

var (
	verifyTemplate  = mustTemplate("verify")
	resetTemplate   = mustTemplate("reset")
	lowBalTemplate  = mustTemplate("low_balance")
	receiptTemplate = mustTemplate("topup_receipt")
	discoveryTpl    = mustTemplate("model_discovery")
)

// render fills m.Text and m.HTML from t with data. data must have a Subject
// field only through m (the layout reads .Subject from the wrapper).
func (t tmpl) render(m Message, data map[string]any) Message {
	data["Subject"] = m.Subject
	data["To"] = m.To
	var text, html bytes.Buffer
	if err := t.text.Execute(&text, data); err != nil {
		// The templates are fixed and tested; this cannot happen at run time.
		panic(fmt.Sprintf("mail: render text of %q: %v", m.Subject, err))
	}
	if err := t.html.ExecuteTemplate(&html, "layout", data); err != nil {
		panic(fmt.Sprintf("mail: render HTML of %q: %v", m.Subject, err))
	}
	m.Text, m.HTML = text.String(), html.String()
	return m
}

// VerifyEmail is the message that asks a new user to confirm the address
// (link valid for 24 hours).
func VerifyEmail(to, link string) Message { return VerifyEmailValid(to, link, 24*time.Hour) }

// VerifyEmailValid is VerifyEmail for a link valid for ttl.
func VerifyEmailValid(to, link string, ttl time.Duration) Message {
	m := Message{To: to, Subject: "Confirm your email address for Beaver"}
	return verifyTemplate.render(m, map[string]any{"Link": link, "Valid": HumanDuration(ttl)})
}

// PasswordReset is the message with a link to choose a new password (valid
// for 1 hour).
func PasswordReset(to, link string) Message { return PasswordResetValid(to, link, time.Hour) }

// PasswordResetValid is PasswordReset for a link valid for ttl.
func PasswordResetValid(to, link string, ttl time.Duration) Message {
	m := Message{To: to, Subject: "Reset your Beaver password"}
	return resetTemplate.render(m, map[string]any{"Link": link, "Valid": HumanDuration(ttl)})
}

// LowBalance tells an account that its balance fell below its alert
// threshold; link points to the top-up page.
func LowBalance(to string, balanceMicros, thresholdMicros int64, link string) Message {
	m := Message{To: to, Subject: "Your Beaver balance is low ($" + money.Format(balanceMicros) + ")"}
	return lowBalTemplate.render(m, map[string]any{"Link": link,
		"Balance": money.Format(balanceMicros), "Threshold": money.Format(thresholdMicros)})
}

// Receipt describes a credited top-up.
type Receipt struct {
	AmountMicros  int64
	BalanceMicros int64 // after the top-up
	Reference     string
	At            time.Time
	Link          string // the billing page
}

// TopUpReceipt confirms a credited top-up.
func TopUpReceipt(to string, r Receipt) Message {
	m := Message{To: to, Subject: "Beaver receipt: $" + money.Format(r.AmountMicros) + " added to your balance"}
	return receiptTemplate.render(m, map[string]any{"Link": r.Link, "Amount": money.Format(r.AmountMicros),
		"Balance": money.Format(r.BalanceMicros), "Reference": r.Reference,
		"Date": r.At.UTC().Format("2006-01-02 15:04 UTC")})
}

// DiscoveryProvider is one provider's part of a model discovery report.
type DiscoveryProvider struct {
	ID      string
	Error   string   // the listing failure, "" when the list was read
	Missing []string // catalog ids the provider no longer serves
	New     []string // served, not in the catalog (the first of them)
	// NewTotal counts all of them; the email lists the first maxNewListed.
	NewTotal int
}

// DiscoveryReport is what the admins are told after a model discovery run
// that changed something.
type DiscoveryReport struct {
	Providers []DiscoveryProvider
	At        time.Time
	Link      string // the admin pages
}

// maxNewListed keeps the email readable when a provider serves hundreds of
// models the catalog lacks (an aggregator).
const maxNewListed = 50

// ModelDiscovery tells an admin which catalog models providers no longer
// serve and which served models the catalog lacks.
func ModelDiscovery(to string, r DiscoveryReport) Message {
	type part struct {
		DiscoveryProvider
		NewMore int
		Clear   bool
	}
	parts := make([]part, 0, len(r.Providers))
	for _, p := range r.Providers {
		pt := part{DiscoveryProvider: p, Clear: p.Error == "" && len(p.Missing) == 0 && len(p.New) == 0}
		if pt.NewTotal < len(p.New) {
			pt.NewTotal = len(p.New)
		}
		if len(pt.New) > maxNewListed {
			pt.New = pt.New[:maxNewListed]
		}
		pt.NewMore = pt.NewTotal - len(pt.New)
		parts = append(parts, pt)
	}
	m := Message{To: to, Subject: fmt.Sprintf("Beaver model discovery: changes at %d provider(s)", len(parts))}
	return discoveryTpl.render(m, map[string]any{"Link": r.Link, "Providers": parts,
		"Date": r.At.UTC().Format("2006-01-02 15:04 UTC")})
}

// HumanDuration renders a link's validity: "24 hours", "1 hour", "90 minutes".
func HumanDuration(d time.Duration) string {
	unit := func(n int64, name string) string {
		if n == 1 {
			return "1 " + name
		}
		return fmt.Sprintf("%d %ss", n, name)
	}
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return unit(int64(d/time.Minute), "minute")
	case d >= time.Second:
		return unit(int64(d/time.Second), "second")
	}
	return strings.TrimSpace(d.String())
}
