// Package files keeps the files of POST /v1/files (OpenAI's Files API):
// their rows (models.File, per account: another account's id is not
// found) and their bytes, behind Store. Uploads are streamed to the store
// in chunks, never held whole in memory, and bounded (Service.MaxBytes).
//
// Stores: DBStore (the default: chunks in file_chunks), DirStore (a
// directory, BEAVER_FILES_DIR). An S3-compatible store would be one more
// Store; none is built yet.
package files

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/models"
)

// Store keeps files' bytes by file id.
type Store interface {
	// Put writes r's bytes as file id and returns how many there were. A
	// failed Put may leave part of the file: the caller deletes it.
	Put(ctx context.Context, id string, r io.Reader) (int64, error)
	// Open reads file id from its start.
	Open(ctx context.Context, id string) (io.ReadCloser, error)
	// Delete removes file id; a missing file is no error.
	Delete(ctx context.Context, id string) error
}

// ChunkSize is how many bytes DBStore keeps in one row.
const ChunkSize = 1 << 20

// DBStore keeps files in the database, in rows of ChunkSize bytes (base64
// text: the migrations use portable types only).
type DBStore struct{ DB *db.DB }

// Put implements Store.
func (s DBStore) Put(ctx context.Context, id string, r io.Reader) (int64, error) {
	buf := make([]byte, ChunkSize)
	var n int64
	for seq := int64(0); ; seq++ {
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			row := models.FileChunk{FileID: id, Seq: seq, Data: base64.StdEncoding.EncodeToString(buf[:k])}
			if cerr := s.DB.WithContext(ctx).Create(&row).Error; cerr != nil {
				return n, fmt.Errorf("store file %s: %w", id, cerr)
			}
			n += int64(k)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// Open implements Store: chunks are read one at a time, as they are needed.
func (s DBStore) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	return &chunkReader{ctx: ctx, db: s.DB, id: id}, nil
}

// Delete implements Store.
func (s DBStore) Delete(ctx context.Context, id string) error {
	return s.DB.WithContext(ctx).Where("file_id = ?", id).Delete(&models.FileChunk{}).Error
}

type chunkReader struct {
	ctx  context.Context
	db   *db.DB
	id   string
	seq  int64
	cur  bytes.Reader
	done bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for c.cur.Len() == 0 {
		if c.done {
			return 0, io.EOF
		}
		var rows []models.FileChunk
		if err := c.db.WithContext(c.ctx).Where("file_id = ? AND seq = ?", c.id, c.seq).Limit(1).Find(&rows).Error; err != nil {
			return 0, fmt.Errorf("read file %s: %w", c.id, err)
		}
		if len(rows) == 0 {
			c.done = true
			continue
		}
		b, err := base64.StdEncoding.DecodeString(rows[0].Data)
		if err != nil {
			return 0, fmt.Errorf("read file %s chunk %d: %w", c.id, c.seq, err)
		}
		c.seq++
		c.cur.Reset(b)
	}
	return c.cur.Read(p)
}

func (c *chunkReader) Close() error { return nil }

// DirStore keeps each file as one file in Dir, named by its id.
type DirStore struct{ Dir string }

func (s DirStore) path(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, `/\`) || strings.HasPrefix(id, ".") {
		return "", fmt.Errorf("bad file id %q", id)
	}
	return filepath.Join(s.Dir, id), nil
}

// Put implements Store: written to a temporary name, renamed when whole.
func (s DirStore) Put(_ context.Context, id string, r io.Reader) (int64, error) {
	p, err := s.path(id)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(s.Dir, ".upload-*")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return n, err
	}
	return n, nil
}

// Open implements Store.
func (s DirStore) Open(_ context.Context, id string) (io.ReadCloser, error) {
	p, err := s.path(id)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

// Delete implements Store.
func (s DirStore) Delete(_ context.Context, id string) error {
	p, err := s.path(id)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
