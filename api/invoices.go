package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/invoices"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/models"
)

// Invoices, credit notes and monthly statements (package invoices):
// GET /account/invoices, GET /account/invoices/{id}.pdf and
// GET /account/statements/{YYYY-MM}[.pdf]. Another account's invoice is
// 404, like one that does not exist.

func invoiceView(inv *models.Invoice) gin.H {
	return gin.H{"id": inv.ID, "number": inv.Number, "kind": inv.Kind, "issued_at": ts(inv.IssuedAt),
		"amount_micros": inv.AmountMicros, "amount_usd": money.USD(inv.AmountMicros), "currency": inv.Currency,
		"top_up_id": inv.TopUpID, "refund_id": inv.RefundID, "refers_to": inv.RefersTo,
		"pdf_url": "/account/invoices/" + inv.ID + ".pdf"}
}

func invoiceError(err error) error {
	switch {
	case errors.Is(err, invoices.ErrNotFound):
		return apierr.NotFound("invoice not found")
	case errors.Is(err, invoices.ErrInvalidMonth):
		return apierr.Invalid("the month must be YYYY-MM, not after the current month").WithParam("month")
	}
	return err
}

// listInvoices lists the caller's invoices and credit notes, newest first;
// the cursor is opaque (the last document's id).
func (s *Server) listInvoices(c *gin.Context) {
	limit, err := intParam(c, "limit", 50, 1, 200)
	if err != nil {
		s.fail(c, err)
		return
	}
	before, err := decodeCursor(c.Query("cursor"))
	if err != nil {
		s.fail(c, err)
		return
	}
	page, err := s.Invoices.List(c.Request.Context(), principal(c).Account.ID, before, limit)
	if errors.Is(err, invoices.ErrNotFound) {
		err = apierr.Invalid("cursor is not one this API returned").WithParam("cursor")
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	var next any
	if page.More {
		next = encodeCursor(page.Data[len(page.Data)-1].ID)
	}
	data := make([]gin.H, 0, len(page.Data))
	for i := range page.Data {
		data = append(data, invoiceView(&page.Data[i]))
	}
	c.JSON(http.StatusOK, gin.H{"data": data, "next_cursor": next})
}

// invoicePDF renders one of the caller's documents as issued.
func (s *Server) invoicePDF(c *gin.Context) {
	id, ok := strings.CutSuffix(c.Param("file"), ".pdf")
	if !ok {
		s.fail(c, apierr.NotFound("invoice not found; ask for /account/invoices/{id}.pdf"))
		return
	}
	ctx := c.Request.Context()
	inv, err := s.Invoices.Get(ctx, principal(c).Account.ID, id)
	if err != nil {
		s.fail(c, invoiceError(err))
		return
	}
	doc, err := s.Invoices.Load(ctx, inv)
	if err != nil {
		s.fail(c, err)
		return
	}
	pdf, err := invoices.RenderPDF(doc, invoices.PDFOptions{Compress: true})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Content-Disposition", `attachment; filename="`+inv.Number+`.pdf"`)
	c.Data(http.StatusOK, "application/pdf", pdf)
}

// statement answers the caller's statement of a month as JSON, or as a PDF
// when the month ends in ".pdf".
func (s *Server) statement(c *gin.Context) {
	month, asPDF := strings.CutSuffix(c.Param("month"), ".pdf")
	st, err := s.Invoices.Statement(c.Request.Context(), principal(c).Account.ID, month)
	if err != nil {
		s.fail(c, invoiceError(err))
		return
	}
	if asPDF {
		pdf, err := invoices.RenderStatementPDF(st, invoices.PDFOptions{Compress: true})
		if err != nil {
			s.fail(c, err)
			return
		}
		c.Header("Content-Disposition", `attachment; filename="statement-`+st.Month+`.pdf"`)
		c.Data(http.StatusOK, "application/pdf", pdf)
		return
	}
	usd := func(m int64) money.USD { return money.USD(m) }
	charges := make([]gin.H, 0, len(st.Charges))
	for _, ch := range st.Charges {
		charges = append(charges, gin.H{"model": ch.Model, "requests": ch.Requests,
			"charged_micros": ch.ChargedMicros, "charged_usd": usd(ch.ChargedMicros)})
	}
	c.JSON(http.StatusOK, gin.H{"month": st.Month, "from": ts(st.From), "to": ts(st.To), "complete": st.Complete,
		"opening_balance_micros": st.OpeningBalanceMicros, "opening_balance_usd": usd(st.OpeningBalanceMicros),
		"top_ups_micros": st.TopUpsMicros, "top_ups_usd": usd(st.TopUpsMicros),
		"refunds_micros": st.RefundsMicros, "refunds_usd": usd(st.RefundsMicros),
		"adjustments_micros": st.AdjustmentsMicros, "adjustments_usd": usd(st.AdjustmentsMicros),
		"charges_micros": st.ChargesMicros, "charges_usd": usd(st.ChargesMicros), "charges": charges,
		"other_micros": st.OtherMicros, "other_usd": usd(st.OtherMicros),
		"closing_balance_micros": st.ClosingBalanceMicros, "closing_balance_usd": usd(st.ClosingBalanceMicros),
		"issuer": st.Issuer, "customer": st.Customer, "pdf_url": "/account/statements/" + st.Month + ".pdf"})
}

// billingDetailsRequest is PATCH /users/me's billing_details.
type billingDetailsRequest struct {
	Name    auth.Patch[string] `json:"name"`
	Address auth.Patch[string] `json:"address"`
	TaxID   auth.Patch[string] `json:"tax_id"`
}
