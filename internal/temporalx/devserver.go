package temporalx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/beaver-gateway/beaver/internal/config"
)

// Where `beaver dev` runs its own Temporal (CONTRACT.md: the UI on
// 127.0.0.1:8233).
const (
	DevHost   = "127.0.0.1"
	DevPort   = "7233"
	DevUIPort = "8233"
	DevUIURL  = "http://" + DevHost + ":" + DevUIPort
)

// ErrNoCLI means the temporal CLI is not installed.
var ErrNoCLI = errors.New("the temporal CLI is not installed (make temporal-cli, or: go install github.com/temporalio/cli/cmd/temporal@v1.5.1)")

// FindCLI returns the path of the temporal CLI: from PATH, else from
// $GOBIN, $GOPATH/bin or ~/go/bin (where `go install` puts it).
func FindCLI() (string, error) {
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		for _, d := range filepath.SplitList(gp) {
			dirs = append(dirs, filepath.Join(d, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "temporal")
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", ErrNoCLI
}

// DevServerOptions choose where the dev server listens; zero values are
// the contract's 127.0.0.1:7233 with the UI on 8233 (tests pick free ports).
type DevServerOptions struct {
	Host   string
	Port   string
	UIPort string
	// HTTPPort is its HTTP API's port; empty = Temporal's default (derived
	// from Port), which tests replace with a free port of their own so that
	// two dev servers on one machine never collide.
	HTTPPort string
}

// DevServer is a `temporal server start-dev` child process.
type DevServer struct {
	Address string // host:port of the frontend
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	log     *slog.Logger
	LogPath string // the server's own output
	DBPath  string
}

// Listening reports whether something accepts TCP connections on addr.
func Listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// StartDevServer starts a local Temporal for `beaver dev`, when one is
// wanted: not when TEMPORAL_ADDRESS was given (that server is used), nor
// when something already listens on 127.0.0.1:7233 (that one is used).
// Then it returns (nil, nil). Otherwise it runs
//
//	temporal server start-dev --ip 127.0.0.1 --port 7233 --ui-port 8233 \
//	  --db-filename <DataDir>/temporal.db --sqlite-pragma journal_mode=wal ...
//
// in its own process group, with its output in <DataDir>/temporal.log, and
// waits until it answers. ErrNoCLI when the CLI is missing. Stop it with
// Stop; if Beaver dies without stopping it, the kernel sends it SIGTERM
// (Linux).
func StartDevServer(ctx context.Context, cfg *config.Config, log *slog.Logger) (*DevServer, error) {
	return StartDevServerOn(ctx, cfg, log, DevServerOptions{})
}

// StartDevServerOn is StartDevServer on other ports.
func StartDevServerOn(ctx context.Context, cfg *config.Config, log *slog.Logger, o DevServerOptions) (*DevServer, error) {
	if cfg.TemporalAddrSet {
		return nil, nil
	}
	if o.Host == "" {
		o.Host = DevHost
	}
	if o.Port == "" {
		o.Port = DevPort
	}
	if o.UIPort == "" {
		o.UIPort = DevUIPort
	}
	addr := net.JoinHostPort(o.Host, o.Port)
	uiURL := "http://" + net.JoinHostPort(o.Host, o.UIPort)
	if Listening(addr) {
		log.Info("using the Temporal server already listening", "address", addr)
		return nil, nil
	}
	cli, err := FindCLI()
	if err != nil {
		return nil, err
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("temporal dev server: %w", err)
	}
	d := &DevServer{Address: addr, log: log, exited: make(chan struct{}),
		LogPath: filepath.Join(dataDir, "temporal.log"), DBPath: filepath.Join(dataDir, "temporal.db")}
	out, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("temporal dev server log: %w", err)
	}
	fmt.Fprintf(out, "\n--- %s: beaver dev starts the Temporal dev server ---\n", time.Now().UTC().Format(time.RFC3339))
	args := []string{"server", "start-dev",
		"--ip", o.Host, "--port", o.Port, "--ui-port", o.UIPort,
		"--db-filename", d.DBPath,
		// WAL lets Temporal's readers run beside its writer; NORMAL sync is
		// durable across process crashes (a dev server needs no more).
		"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
		"--sqlite-pragma", "busy_timeout=10000",
		"--log-format", "json", "--log-level", "warn",
	}
	if o.HTTPPort != "" {
		args = append(args, "--http-port", o.HTTPPort)
	}
	if ns := cfg.TemporalNamespace; ns != "" && ns != "default" { // "default" always exists
		args = append(args, "--namespace", ns)
	}
	// Not CommandContext: the server must outlive ctx until Stop, which
	// stops it gracefully after the worker is gone.
	d.cmd = exec.Command(cli, args...)
	d.cmd.Stdout, d.cmd.Stderr = out, out
	d.cmd.SysProcAttr = childAttrs()
	if err := d.cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", cli, err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		out.Close()
		close(d.exited)
	}()
	log.Info("starting the Temporal dev server", "cli", cli, "address", addr, "ui", uiURL, "db", d.DBPath, "log", d.LogPath)
	if err := d.waitReady(ctx, addr, 90*time.Second); err != nil {
		d.Stop()
		return nil, err
	}
	log.Info("Temporal dev server is up", "address", addr, "pid", d.cmd.Process.Pid)
	return d, nil
}

// waitReady polls until the frontend accepts connections and answers a
// health check.
func (d *DevServer) waitReady(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	cfg := &config.Config{TemporalAddress: addr, TemporalNamespace: "default"}
	for {
		select {
		case <-d.exited:
			return fmt.Errorf("temporal dev server exited during startup (%v); its output: %s", d.waitErr, d.tail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if Listening(addr) {
			if c, err := Dial(ctx, cfg, d.log); err == nil {
				c.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("temporal dev server did not answer within %s; see %s", limit, d.LogPath)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (d *DevServer) tail() string {
	b, err := os.ReadFile(d.LogPath)
	if err != nil {
		return d.LogPath
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// Stop ends the server: SIGTERM to its process group, SIGKILL after 10s.
func (d *DevServer) Stop() {
	if d == nil || d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.exited:
		return
	default:
	}
	terminate(d.cmd.Process, syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.log.Warn("Temporal dev server did not stop in 10s; killing it")
		terminate(d.cmd.Process, syscall.SIGKILL)
		<-d.exited
	}
	d.log.Info("Temporal dev server stopped")
}

// Exited is closed when the server process ends.
func (d *DevServer) Exited() <-chan struct{} { return d.exited }
