package ids_test

import (
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/ids"
)

// Ids are unique and sort in creation order, even within one millisecond:
// pagination orders by id.
func TestNewIsOrderedAndUnique(t *testing.T) {
	prev := ""
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := ids.New("txn")
		if !strings.HasPrefix(id, "txn_") || len(id) != len("txn_")+26 {
			t.Fatalf("malformed id %q", id)
		}
		if id <= prev || seen[id] {
			t.Fatalf("id %q after %q", id, prev)
		}
		seen[id], prev = true, id
	}
}
