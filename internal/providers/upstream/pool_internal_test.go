package upstream

import (
	"slices"
	"testing"
	"time"
)

// Key selection: smooth weighted round robin, on explicit times.

// pickSeq makes n picks with nothing tried or spent.
func pickSeq(c *Client, n int) []int {
	tried, spent := make([]bool, len(c.eps)), make([]bool, len(c.eps))
	out := make([]int, n)
	for i := range out {
		e, _ := c.pick(base, tried, spent, false)
		out[i] = e.index
	}
	return out
}

func weighted(t *testing.T, weights ...int) *Client {
	t.Helper()
	var eps []Endpoint
	for _, w := range weights {
		eps = append(eps, Endpoint{BaseURL: "http://127.0.0.1:1", Weight: w})
	}
	c, err := NewClient(Config{Name: "test", Endpoints: eps})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Smooth weighted round robin: any total-weight consecutive picks give
// each endpoint exactly its weight, spread out.
func TestRoundRobinShares(t *testing.T) {
	if got := pickSeq(weighted(t, 3, 1), 8); !slices.Equal(got, []int{0, 0, 1, 0, 0, 0, 1, 0}) {
		t.Errorf("3:1 gave %v", got)
	}
	if got := pickSeq(weighted(t, 1, 1, 1), 6); !slices.Equal(got, []int{0, 1, 2, 0, 1, 2}) {
		t.Errorf("1:1:1 gave %v", got)
	}
	for _, ws := range [][]int{{1, 1}, {3, 1}, {5, 2, 1}, {1, 4, 2, 3}, {7, 7, 1}, {2, 3, 5, 1, 1}} {
		total := 0
		for _, w := range ws {
			total += w
		}
		seq := pickSeq(weighted(t, ws...), 5*total)
		for start := 0; start+total <= len(seq); start++ {
			counts := make([]int, len(ws))
			for _, i := range seq[start : start+total] {
				counts[i]++
			}
			if !slices.Equal(counts, ws) {
				t.Fatalf("weights %v: picks %d..%d gave %v", ws, start, start+total, counts)
			}
		}
	}
}

// Cooling keys and open breakers are passed over; the others keep their
// shares among themselves.
func TestRoundRobinSkips(t *testing.T) {
	c := weighted(t, 1, 1, 1)
	c.eps[1].cooldownUntil = base.Add(time.Hour)
	if got := pickSeq(c, 4); !slices.Equal(got, []int{0, 2, 0, 2}) {
		t.Errorf("endpoint 1 cooling: %v", got)
	}
	c.eps[0].open, c.eps[0].openUntil = true, base.Add(time.Hour)
	if got := pickSeq(c, 2); !slices.Equal(got, []int{2, 2}) {
		t.Errorf("0 open, 1 cooling: %v", got)
	}
	c.eps[2].open, c.eps[2].openUntil = true, base.Add(time.Hour)
	if got := pickSeq(c, 2); !slices.Equal(got, []int{1, 1}) {
		t.Errorf("1 cooling, the others open: %v (a cooling key beats none)", got)
	}
	c.eps[1].open, c.eps[1].openUntil = true, base.Add(time.Hour)
	tried, spent := make([]bool, 3), make([]bool, 3)
	if e, _ := c.pick(base, tried, spent, false); e != nil {
		t.Errorf("every breaker open, with a fallback: picked %d", e.index)
	}
	if e, probe := c.pick(base, tried, spent, true); e == nil || probe || e.cooling(base) {
		t.Errorf("every breaker open, no fallback: %v %v (want one sent anyway, not cooling)", e, probe)
	}
	spent[0], spent[2] = true, true
	if e, _ := c.pick(base, tried, spent, true); e == nil || e.index != 1 {
		t.Errorf("0 and 2 spent: %v", e)
	}
	spent[1] = true
	if e, _ := c.pick(base, tried, spent, true); e != nil {
		t.Errorf("every endpoint spent: picked %d", e.index)
	}
}
