package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
)

// ErrToolMissing says pg_dump or pg_restore is not on PATH.
var ErrToolMissing = errors.New("install the PostgreSQL client tools")

// pgTool finds a PostgreSQL client program on PATH.
func pgTool(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found: %w", name, ErrToolMissing)
	}
	return p, nil
}

// pgConnection splits a PostgreSQL URL into the URL the client tools get
// on their command line (no password: argv is visible to every user of
// the machine) and the child's environment, which carries the password as
// PGPASSWORD.
func pgConnection(databaseURL string) (string, []string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, errors.New("backup: BEAVER_DATABASE_URL is not a postgres:// URL")
	}
	env := os.Environ()
	password, hasPassword := "", false
	if u.User != nil {
		password, hasPassword = u.User.Password()
		u.User = url.User(u.User.Username())
	}
	if q := u.Query(); q.Has("password") {
		password, hasPassword = q.Get("password"), true
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	if hasPassword {
		env = append(env, "PGPASSWORD="+password)
	}
	return u.String(), env, nil
}

// runPG runs a client tool, returning its stderr in the error when it
// fails (the tools never print the password).
func runPG(ctx context.Context, env []string, tool string, args ...string) error {
	path, err := pgTool(tool)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%s failed: %s", tool, msg)
	}
	return nil
}

// pgDump writes a custom-format dump of the database to file and checks
// that pg_restore can read its table of contents.
func pgDump(ctx context.Context, databaseURL, file string) error {
	conn, env, err := pgConnection(databaseURL)
	if err != nil {
		return err
	}
	if err := runPG(ctx, env, "pg_dump", "--format=custom", "--file="+file, "--dbname="+conn); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := runPG(ctx, env, "pg_restore", "--list", file); err != nil {
		return fmt.Errorf("backup: the dump does not read back: %w", err)
	}
	return nil
}

// pgRestore restores a custom-format dump into the (empty) database, in
// one transaction: a failure leaves the database as empty as it was.
func pgRestore(ctx context.Context, databaseURL, file string) error {
	conn, env, err := pgConnection(databaseURL)
	if err != nil {
		return err
	}
	if err := runPG(ctx, env, "pg_restore", "--dbname="+conn, "--no-owner", "--no-privileges",
		"--exit-on-error", "--single-transaction", file); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}
