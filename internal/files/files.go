package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/db"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/models"
)

// Purposes a file may be uploaded for, as OpenAI lists them. batch files
// are JSONL, checked line by line when a batch is created from them;
// fine-tune files are kept for fine-tuning.
var Purposes = []string{"assistants", "batch", "fine-tune", "vision", "user_data", "evals"}

// PurposeBatchOutput is the purpose of the files Beaver writes: a batch's
// output and error files.
const PurposeBatchOutput = "batch_output"

// Service is the files of every account.
type Service struct {
	DB    *db.DB
	Store Store
	// MaxBytes bounds an upload (BEAVER_FILES_MAX_BYTES); 0 = 200 MB.
	MaxBytes int64
	// OutputRetention is how long a batch's output and error files are
	// kept (BEAVER_FILES_RETENTION_DAYS, 30 days as OpenAI); 0 = forever.
	OutputRetention time.Duration
	// Now is the clock (tests); nil = time.Now.
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Bounds of an upload's expires_after[seconds], as OpenAI's: one hour to
// 30 days.
const (
	MinExpiresAfter = time.Hour
	MaxExpiresAfter = 30 * 24 * time.Hour
)

// ParseExpiresAfter checks an upload's expires_after[anchor] and
// expires_after[seconds] (both or neither) and returns how long after its
// creation the file expires; 0 = never.
func ParseExpiresAfter(anchor, seconds string) (time.Duration, error) {
	if anchor == "" && seconds == "" {
		return 0, nil
	}
	if anchor != "created_at" {
		return 0, apierr.Invalid("expires_after[anchor] must be created_at").WithParam("expires_after[anchor]")
	}
	n, err := strconv.ParseInt(seconds, 10, 64)
	if err != nil || n < int64(MinExpiresAfter/time.Second) || n > int64(MaxExpiresAfter/time.Second) {
		return 0, apierr.Invalid("expires_after[seconds] must be an integer between %d and %d",
			int64(MinExpiresAfter/time.Second), int64(MaxExpiresAfter/time.Second)).WithParam("expires_after[seconds]")
	}
	return time.Duration(n) * time.Second, nil
}

// NewStore is the store BEAVER_FILES_DIR asks for: dir, or the database.
func NewStore(d *db.DB, dir string) Store {
	if dir != "" {
		return DirStore{Dir: dir}
	}
	return DBStore{DB: d}
}

func (s *Service) maxBytes() int64 {
	if s.MaxBytes <= 0 {
		return 200_000_000
	}
	return s.MaxBytes
}

// Object is OpenAI's File object.
type Object struct {
	ID            string  `json:"id"`
	Object        string  `json:"object"`
	Bytes         int64   `json:"bytes"`
	CreatedAt     int64   `json:"created_at"`
	ExpiresAt     *int64  `json:"expires_at"`
	Filename      string  `json:"filename"`
	Purpose       string  `json:"purpose"`
	Status        string  `json:"status"`
	StatusDetails *string `json:"status_details"`
}

// ObjectOf renders f.
func ObjectOf(f *models.File) Object {
	o := Object{ID: f.ID, Object: "file", Bytes: f.Bytes, CreatedAt: f.CreatedAt.Unix(), Filename: f.Filename,
		Purpose: f.Purpose, Status: "processed"}
	if f.ExpiresAt != nil {
		at := f.ExpiresAt.Unix()
		o.ExpiresAt = &at
	}
	return o
}

// errTooLarge is what the upload's reader returns past MaxBytes.
type errTooLarge struct{ limit int64 }

func (e errTooLarge) Error() string { return fmt.Sprintf("file larger than %d bytes", e.limit) }

type limited struct {
	r     io.Reader
	left  int64
	limit int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errTooLarge{l.limit}
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, errTooLarge{l.limit}
	}
	return n, err
}

// Create stores an upload of account's: purpose must be one of Purposes
// (or PurposeBatchOutput, Beaver's own), r is read to its end (at most
// MaxBytes, else 413). Errors are *apierr.Error or storage failures.
func (s *Service) Create(ctx context.Context, accountID, purpose, filename string, r io.Reader) (*models.File, error) {
	if err := CheckPurpose(purpose); err != nil && purpose != PurposeBatchOutput {
		return nil, err
	}
	id, n, err := s.Put(ctx, r)
	if err != nil {
		return nil, err
	}
	var expiresAfter time.Duration
	if purpose == PurposeBatchOutput {
		expiresAfter = s.OutputRetention
	}
	return s.Commit(ctx, accountID, id, purpose, filename, n, expiresAfter)
}

// CheckPurpose refuses a purpose an upload may not have (400).
func CheckPurpose(purpose string) error {
	if !slices.Contains(Purposes, purpose) {
		return apierr.Invalid("purpose must be one of %s", strings.Join(Purposes, ", ")).WithParam("purpose")
	}
	return nil
}

// Put stores r's bytes (at most MaxBytes, else 413) under a new file id,
// for Commit (or Abort) once the upload's other fields are known.
func (s *Service) Put(ctx context.Context, r io.Reader) (id string, n int64, err error) {
	id = "file-" + strings.TrimPrefix(ids.New("f"), "f_")
	n, err = s.Store.Put(ctx, id, &limited{r: r, left: s.maxBytes(), limit: s.maxBytes()})
	if err != nil {
		s.Abort(ctx, id)
		var tl errTooLarge
		if errors.As(err, &tl) {
			return "", 0, &apierr.Error{Status: 413, Type: "invalid_request_error", Code: "file_too_large",
				Message: fmt.Sprintf("the file is larger than the limit of %d bytes", tl.limit), Param: "file"}
		}
		return "", 0, err
	}
	return id, n, nil
}

// Abort removes the bytes of a Put that is not committed.
func (s *Service) Abort(ctx context.Context, id string) {
	_ = s.Store.Delete(context.WithoutCancel(ctx), id)
}

// Commit makes the bytes Put as id a file of account's, expiring
// expiresAfter after its creation (0 = never).
func (s *Service) Commit(ctx context.Context, accountID, id, purpose, filename string, n int64, expiresAfter time.Duration) (*models.File, error) {
	if filename == "" {
		filename = "file"
	}
	f := &models.File{ID: id, AccountID: accountID, Purpose: purpose, Filename: filename, Bytes: n,
		CreatedAt: s.now().Truncate(time.Second)}
	if expiresAfter > 0 {
		at := f.CreatedAt.Add(expiresAfter)
		f.ExpiresAt = &at
	}
	if err := s.DB.WithContext(ctx).Create(f).Error; err != nil {
		s.Abort(ctx, id)
		return nil, fmt.Errorf("create file: %w", err)
	}
	return f, nil
}

// Get is account's file id, or 404 (also once it expired, before Sweep
// removes it).
func (s *Service) Get(ctx context.Context, accountID, id string) (*models.File, error) {
	var f models.File
	err := s.DB.WithContext(ctx).Where("id = ? AND account_id = ?", id, accountID).Take(&f).Error
	if err == nil && f.ExpiresAt != nil && !s.now().Before(*f.ExpiresAt) {
		err = gorm.ErrRecordNotFound
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, apierr.NotFound("No such File object: %s", id).WithParam("file_id")
	}
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", id, err)
	}
	return &f, nil
}

// Open is account's file id and its bytes.
func (s *Service) Open(ctx context.Context, accountID, id string) (*models.File, io.ReadCloser, error) {
	f, err := s.Get(ctx, accountID, id)
	if err != nil {
		return nil, nil, err
	}
	rc, err := s.Store.Open(ctx, f.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("open file %s: %w", id, err)
	}
	return f, rc, nil
}

// Delete removes account's file id (404 when it has none such).
func (s *Service) Delete(ctx context.Context, accountID, id string) error {
	f, err := s.Get(ctx, accountID, id)
	if err != nil {
		return err
	}
	if err := s.DB.WithContext(ctx).Where("id = ? AND account_id = ?", f.ID, accountID).Delete(&models.File{}).Error; err != nil {
		return fmt.Errorf("delete file %s: %w", id, err)
	}
	return s.Store.Delete(ctx, f.ID)
}

// ListQuery is GET /v1/files' query: OpenAI's purpose filter and cursor
// pagination (after: the last id of the previous page; order by
// created_at, desc by default).
type ListQuery struct {
	Purpose string
	After   string
	Limit   int // 1..10000, default 10000 as OpenAI
	Asc     bool
}

// List is a page of account's files and whether more follow.
func (s *Service) List(ctx context.Context, accountID string, q ListQuery) ([]models.File, bool, error) {
	if q.Limit <= 0 || q.Limit > 10000 {
		q.Limit = 10000
	}
	tx := s.DB.WithContext(ctx).Where("account_id = ? AND (expires_at IS NULL OR expires_at > ?)", accountID, s.now())
	if q.Purpose != "" {
		tx = tx.Where("purpose = ?", q.Purpose)
	}
	order := "created_at DESC, id DESC"
	if q.Asc {
		order = "created_at ASC, id ASC"
	}
	if q.After != "" {
		after, err := s.Get(ctx, accountID, q.After)
		if err != nil {
			return nil, false, err
		}
		if q.Asc {
			tx = tx.Where("created_at > ? OR (created_at = ? AND id > ?)", after.CreatedAt, after.CreatedAt, after.ID)
		} else {
			tx = tx.Where("created_at < ? OR (created_at = ? AND id < ?)", after.CreatedAt, after.CreatedAt, after.ID)
		}
	}
	var rows []models.File
	if err := tx.Order(order).Limit(q.Limit + 1).Find(&rows).Error; err != nil {
		return nil, false, fmt.Errorf("list files: %w", err)
	}
	more := len(rows) > q.Limit
	if more {
		rows = rows[:q.Limit]
	}
	return rows, more, nil
}

// Sweep deletes up to limit files past their expires_at, bytes first and
// then rows (a sweep cut off between the two finds the row again, and
// deleting missing bytes is no error), and returns how many it deleted.
func (s *Service) Sweep(ctx context.Context, limit int) (int, error) {
	var expired []string
	if err := s.DB.WithContext(ctx).Model(&models.File{}).Where("expires_at <= ?", s.now()).
		Order("expires_at").Limit(limit).Pluck("id", &expired).Error; err != nil {
		return 0, fmt.Errorf("expired files: %w", err)
	}
	n := 0
	for _, id := range expired {
		if err := s.Store.Delete(ctx, id); err != nil {
			return n, fmt.Errorf("delete expired file %s: %w", id, err)
		}
		if err := s.DB.WithContext(ctx).Where("id = ?", id).Delete(&models.File{}).Error; err != nil {
			return n, fmt.Errorf("delete expired file %s: %w", id, err)
		}
		n++
	}
	return n, nil
}
