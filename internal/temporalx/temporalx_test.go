package temporalx_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/temporalx"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testConfig(t *testing.T, kv map[string]string) *config.Config {
	t.Helper()
	c, err := config.FromLookup(func(k string) (string, bool) { v, ok := kv[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func TestDialFailsFast(t *testing.T) {
	cfg := testConfig(t, map[string]string{"TEMPORAL_ADDRESS": "127.0.0.1:" + freePort(t)})
	start := time.Now()
	if _, err := temporalx.Dial(context.Background(), cfg, quiet); err == nil {
		t.Fatal("dialed nothing")
	}
	// Only a hang is a failure here: a loaded machine may take longer than
	// DialTimeout to notice its own timer, never minutes.
	if d := time.Since(start); d > 10*temporalx.DialTimeout {
		t.Errorf("dial took %s", d)
	}
}

func TestStartDevServerLeavesConfiguredOrRunningServersAlone(t *testing.T) {
	cfg := testConfig(t, map[string]string{"TEMPORAL_ADDRESS": "temporal:7233"})
	if d, err := temporalx.StartDevServer(context.Background(), cfg, quiet); d != nil || err != nil {
		t.Errorf("TEMPORAL_ADDRESS set: want nothing started, got %v %v", d, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	cfg = testConfig(t, map[string]string{"BEAVER_DATA_DIR": t.TempDir()})
	d, err := temporalx.StartDevServerOn(context.Background(), cfg, quiet, temporalx.DevServerOptions{Port: port, UIPort: freePort(t), HTTPPort: freePort(t)})
	if d != nil || err != nil {
		t.Errorf("port in use: want the running server used, got %v %v", d, err)
	}
}

// requireCLI skips (loudly) without the temporal CLI, unless
// BEAVER_TEST_REQUIRE_TEMPORAL=1.
func requireCLI(t *testing.T) {
	t.Helper()
	if _, err := temporalx.FindCLI(); err != nil {
		if os.Getenv("BEAVER_TEST_REQUIRE_TEMPORAL") == "1" {
			t.Fatalf("Temporal CLI required: %v", err)
		}
		t.Skipf("!!! SKIPPING: %v", err)
	}
}

func TestDevServerChildProcess(t *testing.T) {
	requireCLI(t)
	dir := t.TempDir()
	cfg := testConfig(t, map[string]string{"BEAVER_DATA_DIR": dir})
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := temporalx.StartDevServerOn(ctx, cfg, quiet, temporalx.DevServerOptions{Port: port, UIPort: freePort(t), HTTPPort: freePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	if d == nil {
		t.Fatal("no server started")
	}
	defer d.Stop()
	if !temporalx.Listening(d.Address) {
		t.Fatal("not listening after start")
	}
	c, err := temporalx.Dial(ctx, testConfig(t, map[string]string{"TEMPORAL_ADDRESS": d.Address}), quiet)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := os.Stat(filepath.Join(dir, "temporal.db")); err != nil {
		t.Errorf("state not persisted in the data dir: %v", err)
	}
	d.Stop()
	select {
	case <-d.Exited():
	case <-time.After(15 * time.Second):
		t.Fatal("still running after Stop")
	}
	if temporalx.Listening(d.Address) {
		t.Error("port still open after Stop")
	}
}
