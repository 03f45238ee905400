package e2e

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/db"
	fakeupstream "github.com/beaver-gateway/beaver/internal/fakes/upstream"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/web"
)

// TestWebDashboardInChromium drives the dashboard in headless Chromium
// (web/e2e/run.mjs, playwright-core with the Debian browser) against a real
// `beaver api` whose providers point at the fake upstream: sign up, create
// a key, admin top-up, streamed chat with the balance dropping by the shown
// cost, key rotation, sign out. Screenshots land in web/e2e/artifacts/.
func TestWebDashboardInChromium(t *testing.T) {
	need := os.Getenv("BEAVER_TEST_REQUIRE_BROWSER") == "1"
	skip := func(why string) {
		if need {
			t.Fatalf("browser test required but %s", why)
		}
		t.Skipf("!!! SKIPPING browser test: %s", why)
	}
	chromium := os.Getenv("CHROMIUM_PATH")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		skip("no Chromium at " + chromium + " (apt-get install chromium)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node is not installed")
	}
	if _, err := os.Stat("../web/node_modules/playwright-core"); err != nil {
		skip("web dependencies are not installed (make web)")
	}
	if !web.Built() {
		skip("the dashboard is not built into this binary (make web)")
	}
	_, dbURL := testenv.OpenURL(t, db.SQLite)
	fake := httptest.NewServer(fakeupstream.New(fakeupstream.Options{ChunkDelay: 30 * time.Millisecond}))
	defer fake.Close()
	p := start(t, dbURL, t.TempDir(), fake.URL)

	cmd := exec.Command(node, filepath.Join("e2e", "run.mjs"))
	cmd.Dir = "../web"
	cmd.Env = append(os.Environ(), "BEAVER_URL="+p.base, "ADMIN_EMAIL="+adminEmail, "ADMIN_PASSWORD="+adminPassword,
		"CHROMIUM_PATH="+chromium)
	out, err := cmd.CombinedOutput()
	t.Logf("web e2e output:\n%s", out)
	if err != nil {
		t.Fatalf("web e2e failed: %v", err)
	}
}
