package auth_test

import (
	"strings"
	"testing"

	"github.com/beaver-gateway/beaver/internal/auth"
)

func TestSealOpensOnlyWithItsSecretAndPurpose(t *testing.T) {
	k := auth.NewKeyed("server-secret-one")
	sealed, err := k.Seal("provider-key", "sk-upstream-123")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "sk-upstream-123") || !strings.HasPrefix(sealed, "v1:") {
		t.Fatalf("sealed value %q", sealed)
	}
	again, _ := k.Seal("provider-key", "sk-upstream-123")
	if again == sealed {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	if got, err := k.Open("provider-key", sealed); err != nil || got != "sk-upstream-123" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := k.Open("provider-header", sealed); err == nil {
		t.Fatal("opened under another purpose")
	}
	if _, err := auth.NewKeyed("server-secret-two").Open("provider-key", sealed); err == nil {
		t.Fatal("opened under another secret")
	}
	if _, err := k.Open("provider-key", sealed[:len(sealed)-2]+"AA"); err == nil {
		t.Fatal("opened an altered value")
	}
}
