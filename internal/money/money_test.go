package money_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/beaver-gateway/beaver/internal/money"
)

func TestFormat(t *testing.T) {
	cases := map[int64]string{
		0: "0", 5: "0.000005", 1_500_000: "1.5", 1_000_000: "1", -250_000: "-0.25", 123_456_789: "123.456789",
		10: "0.00001", math.MaxInt64: "9223372036854.775807", math.MinInt64: "-9223372036854.775808",
	}
	for in, want := range cases {
		if got := money.Format(in); got != want {
			t.Errorf("Format(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	ok := map[string]int64{"12": 12_000_000, "0.5": 500_000, "-3.000001": -3_000_001, ".25": 250_000, "+1": 1_000_000,
		"0.000005": 5, " 7 ": 7_000_000, "9000000000000.999999": 9_000_000_000_000_999_999}
	for in, want := range ok {
		if got, err := money.Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-", ".", "1.", "1.0000001", "1e3", "0x10", "1,5", "abc", "12345678901234", "1..2", "--1", "9000000000001", "9999999999999.999999"} {
		if _, err := money.Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestUSDJSON(t *testing.T) {
	var v struct{ A, B money.USD }
	if err := json.Unmarshal([]byte(`{"A": 0.000005, "B": "12.5"}`), &v); err != nil || v.A != 5 || v.B != 12_500_000 {
		t.Fatalf("unmarshal: %+v %v", v, err)
	}
	for _, bad := range []string{`{"A": 1e-6}`, `{"A": "1.0000001"}`, `{"A": true}`, `{"A": [1]}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	out, _ := json.Marshal(struct{ C money.USD }{5})
	if string(out) != `{"C":0.000005}` {
		t.Fatalf("marshal: %s", out)
	}
}
