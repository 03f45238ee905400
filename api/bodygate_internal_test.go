package api

import "testing"

// cutter counts how often a body's read was cut.
type cutter struct{ n int }

func (c *cutter) cut() { c.n++ }

func admitted(t *testing.T, p *bodyPool, key string, cut func()) *bodySlot {
	t.Helper()
	s, refusal, _ := p.admit(key, cut)
	if refusal != "" {
		t.Fatalf("%s refused: %s", key, refusal)
	}
	return s
}

func TestBodyPoolPerKeyCap(t *testing.T) {
	p := newBodyPool("test", 2, 0, bodyPerIP)
	var c cutter
	a1 := admitted(t, p, "a", c.cut)
	admitted(t, p, "a", c.cut)
	if _, refusal, shed := p.admit("a", c.cut); refusal != bodyPerIP || shed {
		t.Fatalf("third from a: refusal %q, shed %v", refusal, shed)
	}
	admitted(t, p, "b", c.cut)
	if p.release(a1) {
		t.Fatal("a released body reported shed")
	}
	admitted(t, p, "a", c.cut) // a's slot came back
	if c.n != 0 || p.n.Load() != 3 {
		t.Fatalf("cuts %d, in pool %d", c.n, p.n.Load())
	}
}

// At total, the body that has waited longest for a byte is shed: it is
// cut, its slot goes to the new body at once, and its release says so.
func TestBodyPoolShedsIdlest(t *testing.T) {
	p := newBodyPool("test", 0, 2, bodyPerIP)
	var ca, cb, cc cutter
	a := admitted(t, p, "x", ca.cut)
	b := admitted(t, p, "y", cb.cut)
	a.touch() // bytes of a arrived: b has now waited longest

	c, refusal, shed := p.admit("z", cc.cut)
	if refusal != "" || !shed || cb.n != 1 || ca.n != 0 {
		t.Fatalf("refusal %q, shed %v, cuts a %d b %d", refusal, shed, ca.n, cb.n)
	}
	if p.n.Load() != 2 || p.byKey["y"] != 0 {
		t.Fatalf("in pool %d, y holds %d", p.n.Load(), p.byKey["y"])
	}
	if !p.release(b) {
		t.Fatal("the shed body's release did not report it")
	}
	if p.n.Load() != 2 {
		t.Fatalf("releasing a shed body changed the count to %d", p.n.Load())
	}

	// Now a is the idlest (c came after its last bytes).
	if _, _, shed := p.admit("w", nil); !shed || ca.n != 1 || cc.n != 0 {
		t.Fatalf("shed %v, cuts a %d c %d", shed, ca.n, cc.n)
	}
	p.release(a)
	p.release(c)
	if p.n.Load() != 1 || len(p.receives) != 1 || len(p.byKey) != 1 {
		t.Fatalf("after releases: %d in pool, %d bodies, %d keys", p.n.Load(), len(p.receives), len(p.byKey))
	}
}

// A body that cannot be cut (no connection deadline) is never shed: a full
// pool of them refuses.
func TestBodyPoolRefusesWhenNothingCanBeShed(t *testing.T) {
	p := newBodyPool("test", 0, 1, bodyPerIP)
	s := admitted(t, p, "x", nil)
	if _, refusal, shed := p.admit("y", func() {}); refusal != bodyInFlight || shed {
		t.Fatalf("refusal %q, shed %v", refusal, shed)
	}
	p.release(s)
	if p.n.Load() != 0 {
		t.Fatalf("in pool %d", p.n.Load())
	}
}
