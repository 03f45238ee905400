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
