package files_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/files"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/testenv"
	"github.com/beaver-gateway/beaver/models"
)

// Both stores keep a file of several chunks byte for byte, refuse one over
// the limit (413, nothing kept), and delete it; a file is its account's.
func TestStoresRoundTrip(t *testing.T) {
	for _, dialect := range testenv.Dialects(t) {
		d := testenv.Open(t, dialect)
		now := time.Now().UTC()
		a := models.Account{ID: ids.New("acct"), Email: ids.New("u") + "@example.com", PasswordHash: "x", Role: "user",
			Plan: "free", Active: true, CreatedAt: now, UpdatedAt: now}
		a.EmailLower = a.Email
		if err := d.Create(&a).Error; err != nil {
			t.Fatal(err)
		}
		for name, store := range map[string]files.Store{"db": files.DBStore{DB: d}, "dir": files.DirStore{Dir: t.TempDir()}} {
			t.Run(testenv.Name(dialect)+"/"+name, func(t *testing.T) {
				ctx := context.Background()
				s := &files.Service{DB: d, Store: store, MaxBytes: 3 << 20}
				data := bytes.Repeat([]byte("0123456789abcdef"), (5<<20)/32+7) // 2.5 MiB and a bit
				f, err := s.Create(ctx, a.ID, "batch", "big.jsonl", bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				if f.Bytes != int64(len(data)) {
					t.Fatalf("%d bytes, want %d", f.Bytes, len(data))
				}
				_, rc, err := s.Open(ctx, a.ID, f.ID)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(rc)
				_ = rc.Close()
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("read back %d bytes (%v)", len(got), err)
				}
				if _, err := s.Get(ctx, "acct_other", f.ID); err == nil {
					t.Fatal("another account's file was found")
				}
				_, err = s.Create(ctx, a.ID, "batch", "huge.jsonl", bytes.NewReader(make([]byte, 3<<20+1)))
				if e, ok := apierr.As(err); !ok || e.Status != 413 {
					t.Fatalf("over the limit: %v", err)
				}
				if err := s.Delete(ctx, a.ID, f.ID); err != nil {
					t.Fatal(err)
				}
				if _, _, err := s.Open(ctx, a.ID, f.ID); err == nil {
					t.Fatal("a deleted file opened")
				}
			})
		}
		var chunks int64
		if err := d.Model(&models.FileChunk{}).Count(&chunks).Error; err != nil || chunks != 0 {
			t.Fatalf("%d chunks left (%v)", chunks, err)
		}
	}
}
