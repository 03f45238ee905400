package batches

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/beaver-gateway/beaver/internal/files"
	"github.com/beaver-gateway/beaver/models"
)

// Finalized is what Finalize tells the workflow.
type Finalized struct{ Status string }

// Finalize ends batch id: finalizing, then the output file (the lines
// that succeeded) and the error file (those that failed, and those expired
// by the 24h window, with OpenAI's batch_expired code) written as files
// of the owner's, then completed, expired (some line never ran in time)
// or cancelled (it was cancelling). Idempotent: a retry finishes what a
// crash left.
func (s *Service) Finalize(ctx context.Context, id string) (Finalized, error) {
	b, err := s.batch(ctx, id)
	if err != nil {
		return Finalized{}, err
	}
	switch b.Status {
	case StatusCompleted, StatusExpired, StatusCancelled, StatusFailed:
		return Finalized{Status: b.Status}, nil
	}
	now := s.now()
	final := StatusCompleted
	if b.Status == StatusCancelling {
		final = StatusCancelled
	} else {
		var pending int64
		if err := s.DB.WithContext(ctx).Model(&models.BatchLine{}).
			Where("batch_id = ? AND status IN ?", id, []string{linePending, lineRecorded}).Count(&pending).Error; err != nil {
			return Finalized{}, err
		}
		if pending > 0 {
			final = StatusExpired
		}
		if b.Status != StatusFinalizing {
			if err := s.DB.WithContext(ctx).Model(&models.Batch{}).Where("id = ? AND status = ?", id, b.Status).
				Updates(map[string]any{"status": StatusFinalizing, "finalizing_at": now}).Error; err != nil {
				return Finalized{}, err
			}
		}
	}
	if final == StatusExpired {
		// Lines never started in the window. A recorded one (its answer
		// kept, its charge not committed) would still be charged by a
		// retry; past the window it is not: it was never delivered.
		if err := s.expireLines(ctx, id); err != nil {
			return Finalized{}, err
		}
	}
	if b.OutputFileID == nil {
		if err := s.writeFile(ctx, b, "output_file_id", "output", []string{lineSucceeded}); err != nil {
			return Finalized{}, err
		}
	}
	if b.ErrorFileID == nil {
		if err := s.writeFile(ctx, b, "error_file_id", "error", []string{lineFailed, lineExpired}); err != nil {
			return Finalized{}, err
		}
	}
	set := map[string]any{"status": final}
	switch final {
	case StatusCompleted:
		set["completed_at"] = now
	case StatusExpired:
		set["expired_at"] = now
	case StatusCancelled:
		set["cancelled_at"] = now
	}
	if err := s.DB.WithContext(ctx).Model(&models.Batch{}).Where("id = ? AND status IN ?", id,
		[]string{StatusInProgress, StatusFinalizing, StatusCancelling, StatusValidating}).Updates(set).Error; err != nil {
		return Finalized{}, err
	}
	b, err = s.batch(ctx, id)
	if err != nil {
		return Finalized{}, err
	}
	return Finalized{Status: b.Status}, nil
}

func (s *Service) expireLines(ctx context.Context, id string) error {
	for {
		var lines []models.BatchLine
		if err := s.DB.WithContext(ctx).Where("batch_id = ? AND status IN ?", id, []string{linePending, lineRecorded}).
			Order("line_index").Limit(500).Find(&lines).Error; err != nil {
			return err
		}
		if len(lines) == 0 {
			return nil
		}
		for i := range lines {
			if lines[i].Status == lineRecorded { // its charge may have committed before a crash
				var logs []models.UsageLog
				if err := s.DB.WithContext(ctx).Where("id = ?", lines[i].GenerationID).Limit(1).Find(&logs).Error; err != nil {
					return err
				}
				if len(logs) == 1 {
					b, err := s.batch(ctx, id)
					if err != nil {
						return err
					}
					if err := s.finishSettled(ctx, b, &lines[i], &logs[0]); err != nil {
						return err
					}
					continue
				}
			}
			out := outputLine{Error: &outputError{Code: "batch_expired",
				Message: "This request could not be executed before the completion window expired."}}
			if err := s.finish(ctx, &lines[i], lineExpired, out); err != nil {
				return err
			}
		}
	}
}

// writeFile writes the output lines of b's lines in statuses, in input
// order, as a file of b's owner, and sets column to its id; no such line,
// no file.
func (s *Service) writeFile(ctx context.Context, b *models.Batch, column, kind string, statuses []string) error {
	var n int64
	if err := s.DB.WithContext(ctx).Model(&models.BatchLine{}).Where("batch_id = ? AND status IN ?", b.ID, statuses).
		Count(&n).Error; err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 64<<10)
		err := s.streamLines(ctx, b.ID, statuses, w)
		if err == nil {
			err = w.Flush()
		}
		pw.CloseWithError(err)
	}()
	f, err := s.Files.Create(ctx, b.AccountID, files.PurposeBatchOutput, fmt.Sprintf("%s_%s.jsonl", b.ID, kind), pr)
	_ = pr.CloseWithError(io.ErrClosedPipe) // stops the writer if Create gave up early
	if err != nil {
		return fmt.Errorf("batch %s %s file: %w", b.ID, kind, err)
	}
	res := s.DB.WithContext(ctx).Model(&models.Batch{}).Where("id = ? AND "+column+" IS NULL", b.ID).Update(column, f.ID)
	if res.Error != nil || res.RowsAffected == 0 {
		_ = s.Files.Delete(context.WithoutCancel(ctx), b.AccountID, f.ID) // another run wrote it first
	}
	return res.Error
}

func (s *Service) streamLines(ctx context.Context, id string, statuses []string, w io.Writer) error {
	from := int64(0)
	for {
		var lines []models.BatchLine
		if err := s.DB.WithContext(ctx).Select("line_index", "output").
			Where("batch_id = ? AND status IN ? AND line_index >= ?", id, statuses, from).
			Order("line_index").Limit(500).Find(&lines).Error; err != nil {
			return err
		}
		if len(lines) == 0 {
			return nil
		}
		for _, l := range lines {
			if l.Output == nil {
				continue
			}
			if !json.Valid([]byte(*l.Output)) {
				return fmt.Errorf("batch %s line %d: bad output", id, l.LineIndex)
			}
			if _, err := io.WriteString(w, *l.Output+"\n"); err != nil {
				return err
			}
		}
		from = lines[len(lines)-1].LineIndex + 1
	}
}
