package billing

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/beaver-gateway/beaver/internal/db"
)

// The settlement commit runs the same dozen statements all day, so it talks
// to database/sql directly instead of through GORM:
//
//   - On SQLite every statement is prepared once per connection and reused.
//     (GORM's PrepareStmt prepares inside the transaction, which binds the
//     statement to that transaction: the next one prepared it again, and
//     parsing SQL was an eighth of a request's CPU.)
//   - On PostgreSQL pgx caches prepared statements per connection itself;
//     statements only get their ? placeholders rewritten to $n, once.

// statements prepares and remembers the commit's statements.
type statements struct {
	sql     *sql.DB
	dialect string
	mu      sync.RWMutex
	stmts   map[string]*sql.Stmt // SQLite: prepared on the pool, reused by every transaction
	texts   map[string]string    // PostgreSQL: ? → $n
	async   bool                 // PostgreSQL: synchronous_commit=off (EngineOptions.AsyncCommit)
	conn    *sql.Conn            // PostgreSQL: the settlement connection (commit_pg.go); guarded by Engine.committing
}

func newStatements(d *db.DB, async bool) *statements {
	return &statements{sql: d.SQL(), dialect: d.Dialect, stmts: map[string]*sql.Stmt{}, texts: map[string]string{},
		async: async && d.Dialect == db.Postgres}
}

// begin starts a commit transaction.
func (s *statements) begin(ctx context.Context) (*stmtTx, error) {
	tx, err := s.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &stmtTx{s: s, tx: tx, ctx: ctx}, nil
}

// close releases the prepared statements.
func (s *statements) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for q, st := range s.stmts {
		_ = st.Close()
		delete(s.stmts, q)
	}
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

// cached returns query's prepared statement, or nil before prepare ran.
func (s *statements) cached(query string) *sql.Stmt {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stmts[query]
}

// prepare prepares query on the pool. Never call it inside a commit
// transaction: preparing takes a second pool connection, and while the
// transaction holds SQLite's write lock every other connection may be
// waiting in BEGIN IMMEDIATE for it, so the two would wait on each other
// until the busy timeout failed them all.
func (s *statements) prepare(ctx context.Context, query string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.stmts[query]; ok {
		return
	}
	if st, err := s.sql.PrepareContext(ctx, query); err == nil {
		s.stmts[query] = st
	}
}

func (s *statements) postgres(query string) string {
	s.mu.RLock()
	t, ok := s.texts[query]
	s.mu.RUnlock()
	if ok {
		return t
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	t = b.String()
	s.mu.Lock()
	s.texts[query] = t
	s.mu.Unlock()
	return t
}

// stmtTx is one commit transaction.
type stmtTx struct {
	s          *statements
	tx         *sql.Tx
	ctx        context.Context
	unprepared []string // SQLite: run unprepared on the transaction's connection; prepared after it ends
}

// stmt returns the transaction's copy of query's prepared statement, or nil
// (then the query runs as plain text this once; see prepare).
func (t *stmtTx) stmt(query string) *sql.Stmt {
	if st := t.s.cached(query); st != nil {
		return t.tx.StmtContext(t.ctx, st)
	}
	t.unprepared = append(t.unprepared, query)
	return nil
}

// exec runs a statement and returns the rows it affected.
func (t *stmtTx) exec(query string, args ...any) (int64, error) {
	var r sql.Result
	var err error
	if t.s.dialect == db.Postgres {
		r, err = t.tx.ExecContext(t.ctx, t.s.postgres(query), args...)
	} else if st := t.stmt(query); st != nil {
		r, err = st.ExecContext(t.ctx, args...)
	} else {
		r, err = t.tx.ExecContext(t.ctx, query, args...)
	}
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

// query runs a statement that returns rows.
func (t *stmtTx) query(query string, args ...any) (*sql.Rows, error) {
	if t.s.dialect == db.Postgres {
		return t.tx.QueryContext(t.ctx, t.s.postgres(query), args...)
	}
	if st := t.stmt(query); st != nil {
		return st.QueryContext(t.ctx, args...)
	}
	return t.tx.QueryContext(t.ctx, query, args...)
}

// commit ends the transaction (any error rolls it back), then prepares the
// statements it ran as plain text, for the next transactions.
func (t *stmtTx) commit(err error) error {
	defer func() {
		for _, q := range t.unprepared {
			t.s.prepare(t.ctx, q)
		}
	}()
	if err != nil {
		if rerr := t.tx.Rollback(); rerr != nil {
			return fmt.Errorf("%w (rollback: %v)", err, rerr)
		}
		return err
	}
	return t.tx.Commit()
}
