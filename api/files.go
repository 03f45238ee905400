package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/files"
)

// Files: OpenAI's Files API (internal/files). An upload is streamed to the
// store as it arrives (uploadBodies: not read into memory first), bounded
// by BEAVER_FILES_MAX_BYTES; a file belongs to its account, another
// account's id is 404.

// uploadFile serves POST /v1/files (multipart: file, purpose).
func (s *Server) uploadFile(c *gin.Context) {
	p := principal(c)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		s.fail(c, apierr.Invalid("the body must be multipart/form-data with fields file and purpose"))
		return
	}
	var purpose, filename, id, anchor, seconds string
	var n int64
	defer func() {
		if id != "" {
			s.files.Abort(c.Request.Context(), id)
		}
	}()
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.fail(c, uploadReadError(err))
			return
		}
		switch part.FormName() {
		case "purpose":
			b, err := io.ReadAll(io.LimitReader(part, 64))
			if err != nil {
				s.fail(c, uploadReadError(err))
				return
			}
			purpose = strings.TrimSpace(string(b))
			if err := files.CheckPurpose(purpose); err != nil {
				s.fail(c, err)
				return
			}
		case "expires_after[anchor]", "expires_after[seconds]":
			b, err := io.ReadAll(io.LimitReader(part, 64))
			if err != nil {
				s.fail(c, uploadReadError(err))
				return
			}
			if part.FormName() == "expires_after[anchor]" {
				anchor = strings.TrimSpace(string(b))
			} else {
				seconds = strings.TrimSpace(string(b))
			}
		case "file":
			if id != "" {
				s.fail(c, apierr.Invalid("one file per upload").WithParam("file"))
				return
			}
			filename = part.FileName()
			if id, n, err = s.files.Put(c.Request.Context(), part); err != nil {
				id = ""
				s.fail(c, uploadReadError(err))
				return
			}
		default:
			_, _ = io.Copy(io.Discard, io.LimitReader(part, 1<<20))
		}
	}
	if !s.streamedSignatureOK(c) { // the file read so far is removed (deferred Abort)
		return
	}
	if id == "" {
		s.fail(c, apierr.Invalid("file is required").WithParam("file"))
		return
	}
	if purpose == "" {
		s.fail(c, apierr.Invalid("purpose is required").WithParam("purpose"))
		return
	}
	expiresAfter, err := files.ParseExpiresAfter(anchor, seconds)
	if err != nil {
		s.fail(c, err)
		return
	}
	if purpose == "fine-tune" && s.FineTuning != nil {
		s.uploadTrainingFile(c, p.Account.ID, id, filename) // the local copy is removed (deferred Abort)
		return
	}
	f, err := s.files.Commit(c.Request.Context(), p.Account.ID, id, purpose, filename, n, expiresAfter)
	id = "" // committed, or removed by Commit
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, files.ObjectOf(f))
}

// uploadTrainingFile passes a fine-tune upload (stored as file id while it
// was read) on to OpenAI, which trains on its own copy: the answer is
// OpenAI's file object, and fine-tuning records whose it is
// (internal/finetune). Training files are read whole to count their token
// bound, so they are bounded by BEAVER_MAX_BODY_BYTES.
func (s *Server) uploadTrainingFile(c *gin.Context, accountID, id, filename string) {
	ctx := c.Request.Context()
	rc, err := s.files.Store.Open(ctx, id)
	if err != nil {
		s.fail(c, fmt.Errorf("read the uploaded training file: %w", err))
		return
	}
	defer func() { _ = rc.Close() }()
	limit := s.cfg.MaxBodyBytes
	content, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		s.fail(c, fmt.Errorf("read the uploaded training file: %w", err))
		return
	}
	if int64(len(content)) > limit {
		s.fail(c, tooLarge(limit))
		return
	}
	raw, err := s.FineTuning.UploadTrainingFile(ctx, accountID, filename, content)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json", raw)
}

func uploadReadError(err error) error {
	if _, ok := apierr.As(err); ok {
		return err
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(mbe.Limit)
	}
	return apierr.Invalid("could not read the upload: %v", err)
}

// listFiles serves GET /v1/files?purpose=&after=&limit=&order=.
func (s *Server) listFiles(c *gin.Context) {
	limit, _ := strconv.Atoi(c.Query("limit"))
	rows, more, err := s.files.List(c.Request.Context(), principal(c).Account.ID, files.ListQuery{Purpose: c.Query("purpose"),
		After: c.Query("after"), Limit: limit, Asc: c.Query("order") == "asc"})
	if err != nil {
		s.fail(c, err)
		return
	}
	data := make([]files.Object, len(rows))
	for i := range rows {
		data[i] = files.ObjectOf(&rows[i])
	}
	c.JSON(http.StatusOK, listPage(data, more, func(o files.Object) string { return o.ID }))
}

// listPage is OpenAI's cursor page.
func listPage[T any](data []T, more bool, id func(T) string) gin.H {
	page := gin.H{"object": "list", "data": data, "has_more": more, "first_id": nil, "last_id": nil}
	if len(data) > 0 {
		page["first_id"], page["last_id"] = id(data[0]), id(data[len(data)-1])
	}
	return page
}

// getFile serves GET /v1/files/{id}.
func (s *Server) getFile(c *gin.Context) {
	f, err := s.files.Get(c.Request.Context(), principal(c).Account.ID, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, files.ObjectOf(f))
}

// fileContent serves GET /v1/files/{id}/content: the bytes, streamed.
func (s *Server) fileContent(c *gin.Context) {
	f, rc, err := s.files.Open(c.Request.Context(), principal(c).Account.ID, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	defer func() { _ = rc.Close() }()
	c.Header("Content-Length", strconv.FormatInt(f.Bytes, 10))
	c.Header("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Filename}))
	c.Status(http.StatusOK)
	c.Writer.Header().Set("Content-Type", "application/octet-stream")
	if _, err := io.Copy(c.Writer, rc); err != nil {
		s.log.Error("send file", "file", f.ID, "err", err)
	}
}

// deleteFile serves DELETE /v1/files/{id}.
func (s *Server) deleteFile(c *gin.Context) {
	id := c.Param("id")
	if err := s.files.Delete(c.Request.Context(), principal(c).Account.ID, id); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": id, "object": "file", "deleted": true})
}
