package api

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/dailyusage"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/models"
)

// balance reads the account row fresh: balance = the sum of the ledger,
// reserved = held for requests in flight.
func (s *Server) balance(c *gin.Context) {
	a, err := s.auth.GetAccount(c.Request.Context(), principal(c).Account.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	avail := a.BalanceMicros - a.ReservedMicros
	c.JSON(http.StatusOK, gin.H{
		"balance_micros":   a.BalanceMicros,
		"balance_usd":      money.USD(a.BalanceMicros),
		"reserved_micros":  a.ReservedMicros,
		"reserved_usd":     money.USD(a.ReservedMicros),
		"available_micros": avail,
		"available_usd":    money.USD(avail),
		"currency":         "USD",
	})
}

// transactions lists ledger entries newest first, in the order they
// committed (seq), so each entry's balance_after is the next one's balance
// before. The cursor is opaque (the last entry's id).
func (s *Server) transactions(c *gin.Context) {
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
	page, err := ledgerPage(c.Request.Context(), s.DB, principal(c).Account.ID, before, limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	var next any
	if len(page) > limit {
		page = page[:limit]
		next = encodeCursor(page[len(page)-1].ID)
	}
	data := make([]gin.H, 0, len(page))
	for i := range page {
		data = append(data, txnView(&page[i]))
	}
	c.JSON(http.StatusOK, gin.H{"data": data, "next_cursor": next})
}

// ledgerPage returns up to limit+1 entries older than before ("" = newest).
func ledgerPage(ctx context.Context, d *db.DB, accountID, before string, limit int) ([]models.LedgerEntry, error) {
	q := d.WithContext(ctx).Where("account_id = ?", accountID)
	if before != "" {
		q = q.Where("(seq, id) < (SELECT seq, id FROM ledger_entries WHERE id = ? AND account_id = ?)", before, accountID)
	}
	var out []models.LedgerEntry
	if err := q.Order("seq DESC, id DESC").Limit(limit + 1).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list transactions: %w", err)
	}
	return out, nil
}

var cursorRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)

func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

func decodeCursor(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !cursorRE.Match(b) {
		return "", apierr.Invalid("cursor is not one this API returned")
	}
	return string(b), nil
}

// intParam reads an optional integer query parameter within [lo, hi].
func intParam(c *gin.Context, name string, def, lo, hi int) (int, error) {
	raw, ok := c.GetQuery(name)
	if !ok || raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		return 0, apierr.Invalid("%s must be an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}

// usageTotals is the contract's U.
type usageTotals struct {
	Requests         int64     `json:"requests"`
	PromptTokens     int64     `json:"prompt_tokens"`
	CompletionTokens int64     `json:"completion_tokens"`
	CostMicros       int64     `json:"cost_micros"`
	CostUSD          money.USD `json:"cost_usd"`
}

func (u *usageTotals) add(r usageRow) {
	u.Requests += r.Requests
	u.PromptTokens += r.PromptTokens
	u.CompletionTokens += r.CompletionTokens
	u.CostMicros += r.CostMicros
	u.CostUSD = money.USD(u.CostMicros)
}

type modelUsage struct {
	Model string `json:"model"`
	usageTotals
}

type dayUsage struct {
	Date string `json:"date"`
	usageTotals
}

// usageRow is one (model, UTC day) group of usage logs.
// usageRow is an account's usage of one model on one day.
type usageRow = dailyusage.ModelDay

// usage answers the caller's usage over the last 7, 30 (default) or 90 UTC
// days, today included: totals, per model (costliest first) and per day
// (oldest first, days without usage left out).
func (s *Server) usage(c *gin.Context) {
	days := 30
	if raw, ok := c.GetQuery("days"); ok {
		switch raw {
		case "7", "30", "90":
			days, _ = strconv.Atoi(raw)
		default:
			s.fail(c, apierr.Invalid("days must be 7, 30 or 90"))
			return
		}
	}
	now := time.Now().UTC()
	since := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -(days - 1))
	rows, err := dailyusage.ByModelDay(c.Request.Context(), s.DB, principal(c).Account.ID, dailyusage.Day(since))
	if err != nil {
		s.fail(c, err)
		return
	}
	var totals usageTotals
	byModel := map[string]*modelUsage{}
	byDay := map[string]*dayUsage{}
	for _, r := range rows {
		totals.add(r)
		if byModel[r.Model] == nil {
			byModel[r.Model] = &modelUsage{Model: r.Model}
		}
		byModel[r.Model].add(r)
		if byDay[r.Day] == nil {
			byDay[r.Day] = &dayUsage{Date: r.Day}
		}
		byDay[r.Day].add(r)
	}
	perModel := make([]*modelUsage, 0, len(byModel))
	for _, m := range byModel {
		perModel = append(perModel, m)
	}
	sort.Slice(perModel, func(i, j int) bool {
		if perModel[i].CostMicros != perModel[j].CostMicros {
			return perModel[i].CostMicros > perModel[j].CostMicros
		}
		return perModel[i].Model < perModel[j].Model
	})
	perDay := make([]*dayUsage, 0, len(byDay))
	for _, d := range byDay {
		perDay = append(perDay, d)
	}
	sort.Slice(perDay, func(i, j int) bool { return perDay[i].Date < perDay[j].Date })
	c.JSON(http.StatusOK, gin.H{"days": days, "since": ts(since), "totals": totals, "by_model": perModel, "by_day": perDay})
}

// Bounds of GET /account/billing.
const (
	billingListLimit = 100 // most recent top-ups and refunds
	billingMonths    = 24  // the last calendar months, with their charges
)

type monthlyCharge struct {
	Month         string    `json:"month"`
	ChargedMicros int64     `json:"charged_micros"`
	ChargedUSD    money.USD `json:"charged_usd"`
	Requests      int64     `json:"requests"`
}

// billingHistory answers the caller's top-ups and refunds (newest first, the
// last 100 of each) and charges totalled per UTC month (newest first, the
// last 24 months with charges).
func (s *Server) billingHistory(c *gin.Context) {
	ctx, d, id := c.Request.Context(), s.DB, principal(c).Account.ID
	list := func(typ string) ([]gin.H, error) {
		var es []models.LedgerEntry
		// type <> 'charge' lets both databases use the index of the
		// entries that are not charges (migrations/00022_daily_usage.sql).
		if err := d.WithContext(ctx).Where("account_id = ? AND type = ? AND type <> 'charge'", id, typ).
			Order("seq DESC, id DESC").Limit(billingListLimit).Find(&es).Error; err != nil {
			return nil, fmt.Errorf("billing %s: %w", typ, err)
		}
		out := make([]gin.H, 0, len(es))
		for i := range es {
			out = append(out, txnView(&es[i]))
		}
		return out, nil
	}
	topUps, err := list(models.EntryTopUp)
	if err != nil {
		s.fail(c, err)
		return
	}
	refunds, err := list(models.EntryRefund)
	if err != nil {
		s.fail(c, err)
		return
	}
	sums, err := dailyusage.Monthly(ctx, d, id, billingMonths, time.Now())
	if err != nil {
		s.fail(c, fmt.Errorf("billing charges: %w", err))
		return
	}
	months := make([]monthlyCharge, 0, len(sums))
	for _, m := range sums {
		months = append(months, monthlyCharge{Month: m.Month, ChargedMicros: m.ChargedMicros,
			ChargedUSD: money.USD(m.ChargedMicros), Requests: m.Charges})
	}
	cards, err := s.cardTopUps(ctx, id, billingListLimit)
	if err != nil {
		s.fail(c, err)
		return
	}
	cardRefunds, err := s.cardRefunds(ctx, id, billingListLimit)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"top_ups": topUps, "refunds": refunds, "monthly_charges": months,
		"card_top_ups": cards, "card_refunds": cardRefunds})
}
