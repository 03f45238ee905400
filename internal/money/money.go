// Package money holds Beaver's one representation of money: integer
// micro-USD (1 USD = 1,000,000). No float64 ever touches an amount; JSON
// renders amounts as exact plain decimals ("0.000005", never "5e-06").
package money

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// PerUSD is the number of micro-USD in one dollar.
const PerUSD = 1_000_000

// USD is an amount in micro-USD that marshals to JSON as a plain decimal
// number of dollars with at most 6 decimals, and unmarshals from a JSON
// number or a decimal string with at most 6 decimals.
type USD int64

// Format renders micros as a plain decimal string of dollars: 1500000 →
// "1.5", 5 → "0.000005", -250000 → "-0.25", 0 → "0".
func Format(micros int64) string {
	neg := micros < 0
	u := uint64(micros)
	if neg {
		u = uint64(-micros) // also right for MinInt64 thanks to two's complement
	}
	whole := u / PerUSD
	frac := u % PerUSD
	s := strconv.FormatUint(whole, 10)
	if frac != 0 {
		f := fmt.Sprintf("%06d", frac)
		s += "." + strings.TrimRight(f, "0")
	}
	if neg {
		s = "-" + s
	}
	return s
}

// ErrInvalidAmount is returned for amounts that are not plain decimals with
// at most 6 decimals, or that overflow.
var ErrInvalidAmount = errors.New("amount must be a decimal number of USD with at most 6 decimals")

// maxWholeUSD keeps every parsed amount, in micros, far inside int64.
const maxWholeUSD = 9_000_000_000_000

// Parse reads a decimal USD amount ("12", "0.5", "-3.000001") into micros.
// Exponents, more than 6 decimals, and values beyond ±9e12 USD are refused.
func Parse(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, ErrInvalidAmount
	}
	neg := false
	switch s[0] {
	case '-':
		neg, s = true, s[1:]
	case '+':
		s = s[1:]
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" && (!hasDot || frac == "") {
		return 0, ErrInvalidAmount
	}
	if hasDot && frac == "" || len(frac) > 6 || len(whole) > 13 {
		return 0, ErrInvalidAmount
	}
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return 0, ErrInvalidAmount
		}
	}
	var w, f int64
	if whole != "" {
		w, _ = strconv.ParseInt(whole, 10, 64)
	}
	if w > maxWholeUSD {
		return 0, ErrInvalidAmount
	}
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	}
	v := w*PerUSD + f
	if neg {
		v = -v
	}
	return v, nil
}

// MarshalJSON renders the amount as a JSON number in exact decimal form.
func (u USD) MarshalJSON() ([]byte, error) { return []byte(Format(int64(u))), nil }

// UnmarshalJSON accepts a JSON number or a JSON string holding a decimal.
func (u *USD) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return ErrInvalidAmount
		}
		s = str
	}
	v, err := Parse(s)
	if err != nil {
		return err
	}
	*u = USD(v)
	return nil
}

// Micros returns the amount as plain integer micro-USD.
func (u USD) Micros() int64 { return int64(u) }

// String renders the amount like Format.
func (u USD) String() string { return Format(int64(u)) }

// CeilDiv returns ceil(a/b) for a >= 0 and b > 0.
func CeilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}
