package invoices

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/models"
)

// PDF options. Compress is on in production; tests turn it off to read the
// text back.
type PDFOptions struct {
	Compress bool
}

// FormatUSD renders micros as dollars with at least two decimals and every
// significant one after ("12.50", "0.000005", "-3.00"): exact, no rounding.
func FormatUSD(micros int64) string {
	s := money.Format(micros)
	i := strings.IndexByte(s, '.')
	switch {
	case i < 0:
		return s + ".00"
	case len(s)-i-1 == 1:
		return s + "0"
	}
	return s
}

// page starts a document whose bytes depend only on its content: the
// creation and modification dates are the issue date (PDF ids are empty
// in fpdf), so one invoice renders the same every time.
func page(title string, at time.Time, o PDFOptions) (*fpdf.Fpdf, func(string) string) {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCompression(o.Compress)
	pdf.SetCreationDate(at)
	pdf.SetModificationDate(at)
	pdf.SetCatalogSort(true)
	pdf.SetTitle(title, true)
	pdf.SetCreator("Beaver", false)
	pdf.SetProducer("Beaver", false)
	pdf.SetMargins(20, 20, 20)
	pdf.SetAutoPageBreak(true, 20)
	pdf.AddPage()
	// Core fonts speak cp1252: a character outside it prints as "?".
	return pdf, pdf.UnicodeTranslatorFromDescriptor("")
}

func partyLines(p Party) []string {
	var out []string
	if p.Name != "" {
		out = append(out, p.Name)
	}
	for _, l := range strings.Split(p.Address, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if p.TaxID != "" {
		out = append(out, "Tax ID: "+p.TaxID)
	}
	if p.Email != "" {
		out = append(out, p.Email)
	}
	return out
}

// parties prints the issuer (left) and the customer (right, "Bill to").
func parties(pdf *fpdf.Fpdf, tr func(string) string, issuer, customer Party) {
	y := pdf.GetY()
	pdf.SetFont("Helvetica", "B", 10)
	pdf.CellFormat(85, 6, tr("From"), "", 2, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	for _, l := range partyLines(issuer) {
		pdf.CellFormat(85, 5, tr(l), "", 2, "L", false, 0, "")
	}
	yl := pdf.GetY()
	pdf.SetXY(110, y)
	pdf.SetFont("Helvetica", "B", 10)
	pdf.CellFormat(80, 6, tr("Bill to"), "", 2, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	for _, l := range partyLines(customer) {
		pdf.CellFormat(80, 5, tr(l), "", 2, "L", false, 0, "")
	}
	pdf.SetXY(20, max(yl, pdf.GetY())+6)
}

func row(pdf *fpdf.Fpdf, tr func(string) string, label, value string, bold bool) {
	style := ""
	if bold {
		style = "B"
	}
	pdf.SetFont("Helvetica", style, 10)
	pdf.CellFormat(120, 7, tr(label), "B", 0, "L", false, 0, "")
	pdf.CellFormat(50, 7, tr(value), "B", 1, "R", false, 0, "")
}

// RenderPDF renders an invoice or credit note.
func RenderPDF(d Document, o PDFOptions) ([]byte, error) {
	title := "Invoice"
	if d.Kind == models.InvoiceKindCreditNote {
		title = "Credit note"
	}
	pdf, tr := page(title+" "+d.Number, d.IssuedAt, o)
	pdf.SetFont("Helvetica", "B", 18)
	pdf.CellFormat(0, 10, tr(title), "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	pdf.CellFormat(0, 5, tr("Number: "+d.Number), "", 1, "L", false, 0, "")
	pdf.CellFormat(0, 5, tr("Issued: "+d.IssuedAt.UTC().Format("2006-01-02")), "", 1, "L", false, 0, "")
	if d.RefersToNumber != "" {
		pdf.CellFormat(0, 5, tr("Refers to invoice: "+d.RefersToNumber), "", 1, "L", false, 0, "")
	}
	pdf.Ln(6)
	issuer, customer := d.Parties()
	parties(pdf, tr, issuer, customer)
	pdf.SetFont("Helvetica", "B", 10)
	pdf.CellFormat(120, 7, tr("Description"), "B", 0, "L", false, 0, "")
	pdf.CellFormat(50, 7, tr("Amount ("+d.Currency+")"), "B", 1, "R", false, 0, "")
	desc := d.Description
	if desc == "" {
		desc = "Prepaid balance"
	}
	amount := d.AmountMicros
	if d.Kind == models.InvoiceKindCreditNote {
		amount = -amount
	}
	row(pdf, tr, desc, FormatUSD(amount), false)
	row(pdf, tr, "Total", FormatUSD(amount)+" "+d.Currency, true)
	pdf.Ln(4)
	pdf.SetFont("Helvetica", "", 9)
	if d.Kind == models.InvoiceKindCreditNote {
		pdf.MultiCell(0, 5, tr("Amount refunded to the original payment method."), "", "L", false)
	} else {
		pdf.MultiCell(0, 5, tr("Prepaid credit for the Beaver API, paid in full."), "", "L", false)
	}
	return output(pdf)
}

// RenderStatementPDF renders a monthly statement.
func RenderStatementPDF(st Statement, o PDFOptions) ([]byte, error) {
	at := st.To
	if !st.Complete {
		at = st.From
	}
	pdf, tr := page("Statement "+st.Month, at, o)
	pdf.SetFont("Helvetica", "B", 18)
	pdf.CellFormat(0, 10, tr("Statement "+st.Month), "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	pdf.CellFormat(0, 5, tr(fmt.Sprintf("Period: %s to %s (UTC)", st.From.Format("2006-01-02"),
		st.To.AddDate(0, 0, -1).Format("2006-01-02"))), "", 1, "L", false, 0, "")
	if !st.Complete {
		pdf.CellFormat(0, 5, tr("The month has not ended: figures so far."), "", 1, "L", false, 0, "")
	}
	pdf.Ln(6)
	parties(pdf, tr, st.Issuer, st.Customer)
	row(pdf, tr, "Opening balance", FormatUSD(st.OpeningBalanceMicros), true)
	row(pdf, tr, "Top-ups", FormatUSD(st.TopUpsMicros), false)
	row(pdf, tr, "Refunds", FormatUSD(st.RefundsMicros), false)
	row(pdf, tr, "Adjustments", FormatUSD(st.AdjustmentsMicros), false)
	for _, c := range st.Charges {
		row(pdf, tr, fmt.Sprintf("Charges: %s (%d requests)", c.Model, c.Requests), FormatUSD(-c.ChargedMicros), false)
	}
	if st.OtherMicros != 0 {
		row(pdf, tr, "Other (charges across the month's end)", FormatUSD(st.OtherMicros), false)
	}
	row(pdf, tr, "Closing balance", FormatUSD(st.ClosingBalanceMicros)+" USD", true)
	return output(pdf)
}

func output(pdf *fpdf.Fpdf) ([]byte, error) {
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("invoices: pdf: %w", err)
	}
	return buf.Bytes(), nil
}
