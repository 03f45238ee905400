package ids_test

import (
	"strings"
	"testing"
	"time"

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

func TestTimeReadsTheCreationTime(t *testing.T) {
	before := time.Now().Add(-time.Millisecond)
	for _, id := range []string{ids.New("txn"), ids.Generation(ids.ChatPrefix), ids.Show(ids.Generation(ids.ChatPrefix), ids.ResponsePrefix)} {
		at, ok := ids.Time(id)
		if !ok || at.Before(before) || at.After(time.Now().Add(time.Millisecond)) {
			t.Errorf("Time(%q) = %s, %v; want about now", id, at, ok)
		}
	}
	for _, id := range []string{"", "chatcmpl-short", "batch_req_abc_1", "chatcmpl-ZZZZZZZZZZZZZZZZZZZZZZZZZZ"} {
		if _, ok := ids.Time(id); ok {
			t.Errorf("Time(%q) read a time", id)
		}
	}
}
