package billing

import "context"

// Crash stops the engine as kill -9 would: nothing is returned, nothing is
// renewed any more, its lease rows stay as they are.
func (e *Engine) Crash() {
	e.closed.Do(func() {
		close(e.stop)
		e.done.Wait()
		e.stmts.close()
	})
}

// Renew runs one lease renewal now.
func (e *Engine) Renew(ctx context.Context) error { return e.renew(ctx, true) }

// SettlementSetting is the current value of a setting on the connection
// PostgreSQL settlement commits run on ("" before the first commit).
func (e *Engine) SettlementSetting(ctx context.Context, name string) (string, error) {
	e.committing.Lock()
	defer e.committing.Unlock()
	if e.stmts.conn == nil {
		return "", nil
	}
	var v string
	err := e.stmts.conn.QueryRowContext(ctx, "SELECT current_setting($1)", name).Scan(&v)
	return v, err
}

// SettleSQLAsync is the settlement statement of AsyncCommit.
var SettleSQLAsync = settleSQLAsync
