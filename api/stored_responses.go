package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/responses"
	"github.com/beaver-gateway/beaver/models"
)

// Stored responses (store true, the default): each answered /v1/responses
// turn is kept for its account — any key of the account reads it, another
// account's id is 404 as if it did not exist — until its expires_at
// (BEAVER_RESPONSES_RETENTION_DAYS after it was made). Reads ignore
// expired rows; the worker's lease sweep purges them
// (activities.PurgeStoredResponses).

// maxChainDepth bounds the turns previous_response_id rebuilds; the
// chain's total size is bounded by the request body limit, as if the
// caller had sent the whole conversation.
const maxChainDepth = 100

// storeTimeout bounds the write of a stored response, which happens after
// the answer is charged.
const storeTimeout = 5 * time.Second

// parseResponsesRequest parses a /v1/responses body for principal p: a
// request naming previous_response_id is parsed again after its stored
// chain's items, and store left out takes the server's default.
func (s *Server) parseResponsesRequest(ctx context.Context, p *auth.Principal) func([]byte) (*responses.Request, error) {
	return func(body []byte) (*responses.Request, error) {
		req, err := responses.ParseRequest(body)
		if err != nil {
			return nil, err
		}
		if req.PreviousResponseID != "" {
			history, err := s.responseChain(ctx, p.Account.ID, req.PreviousResponseID)
			if err != nil {
				return nil, err
			}
			if req, err = responses.ParseRequestAfter(body, history); err != nil {
				return nil, err
			}
		}
		if req.Store == nil {
			store := s.cfg.ResponsesStoreDefault
			req.Store = &store
		}
		return req, nil
	}
}

// storedResponse is account's unexpired stored response id, or 404.
func (s *Server) storedResponse(ctx context.Context, accountID, id string) (*models.StoredResponse, error) {
	var row models.StoredResponse
	err := s.DB.WithContext(ctx).Where("id = ? AND account_id = ? AND expires_at > ?", id, accountID, time.Now().UTC()).
		Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, apierr.NotFound("response %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("stored response %s: %w", id, err)
	}
	return &row, nil
}

// responseChain is the input items that previous_response_id id stands
// for: its chain's turns, oldest first (see responses.History). The chain
// ends at its first turn, or at an ancestor that was deleted or expired.
func (s *Server) responseChain(ctx context.Context, accountID, id string) ([]json.RawMessage, error) {
	var turns []responses.Turn
	size := 0
	for next := &id; next != nil; {
		if len(turns) == maxChainDepth {
			return nil, apierr.Invalid("previous_response_id: the conversation is longer than %d turns; "+
				"send it in input instead", maxChainDepth).WithParam("previous_response_id")
		}
		row, err := s.storedResponse(ctx, accountID, *next)
		if e, ok := apierr.As(err); ok && e.Status == http.StatusNotFound {
			if len(turns) == 0 {
				return nil, apierr.NotFound("previous response with id %q not found", id).WithParam("previous_response_id")
			}
			break
		}
		if err != nil {
			return nil, err
		}
		if size += len(row.Input) + len(row.Response); size > int(s.cfg.MaxBodyBytes) {
			return nil, apierr.Invalid("previous_response_id: the conversation is larger than the request body limit (%d bytes); "+
				"send what matters in input instead", s.cfg.MaxBodyBytes).WithParam("previous_response_id")
		}
		var input []json.RawMessage
		if err := json.Unmarshal([]byte(row.Input), &input); err != nil {
			return nil, fmt.Errorf("stored response %s input: %w", row.ID, err)
		}
		turns = append(turns, responses.Turn{Input: input, Response: json.RawMessage(row.Response)})
		next = row.PreviousResponseID
	}
	for i, j := 0, len(turns)-1; i < j; i, j = i+1, j-1 {
		turns[i], turns[j] = turns[j], turns[i]
	}
	items, err := responses.History(turns)
	if err != nil {
		return nil, fmt.Errorf("previous response %s: %w", id, err)
	}
	return items, nil
}

// storeResponse keeps resp, the charged answer to req, when req asked for
// it. It runs after the charge and never fails the answer: the client paid
// for it whether or not it could be stored, so a failure is logged.
func (s *Server) storeResponse(ctx context.Context, p *auth.Principal, req *responses.Request, resp *responses.Response) {
	if req.Store == nil || !*req.Store || resp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := s.writeStoredResponse(ctx, p, req, resp); err != nil {
		s.log.ErrorContext(ctx, "storing a response failed; it was answered and charged", "response_id", resp.ID, "error", err)
	}
}

func (s *Server) writeStoredResponse(ctx context.Context, p *auth.Principal, req *responses.Request, resp *responses.Response) error {
	row, err := s.storedRow(p, req, resp, time.Now().UTC())
	if err != nil {
		return err
	}
	if err := s.DB.WithContext(ctx).Create(row).Error; err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	return nil
}

// storedRow is the row that keeps resp, answered to req, for p's account
// until the retention ends.
func (s *Server) storedRow(p *auth.Principal, req *responses.Request, resp *responses.Response, now time.Time) (*models.StoredResponse, error) {
	input, err := json.Marshal(responses.WithIDs(req.Input))
	if err != nil {
		return nil, fmt.Errorf("encode input: %w", err)
	}
	answer, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	row := &models.StoredResponse{ID: resp.ID, AccountID: p.Account.ID, Model: resp.Model, Status: resp.Status,
		PreviousResponseID: resp.PreviousResponseID, Input: string(input), Response: string(answer),
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.ResponsesRetention)}
	if p.Key != nil {
		row.APIKeyID = &p.Key.ID
	}
	return row, nil
}

// getResponse serves GET /v1/responses/{id}: the Response object as it
// was answered.
func (s *Server) getResponse(c *gin.Context) {
	row, err := s.storedResponse(c.Request.Context(), principal(c).Account.ID, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", []byte(row.Response))
}

// deleteResponse serves DELETE /v1/responses/{id}. A later turn that names
// it as previous_response_id no longer sees it (nor what came before it).
func (s *Server) deleteResponse(c *gin.Context) {
	id := c.Param("id")
	r := s.DB.WithContext(c.Request.Context()).Where("id = ? AND account_id = ? AND expires_at > ?",
		id, principal(c).Account.ID, time.Now().UTC()).Delete(&models.StoredResponse{})
	if r.Error != nil {
		s.fail(c, fmt.Errorf("delete stored response %s: %w", id, r.Error))
		return
	}
	if r.RowsAffected == 0 {
		s.fail(c, apierr.NotFound("response %q not found", id))
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": id, "object": "response.deleted", "deleted": true})
}

// responseInputItems serves GET /v1/responses/{id}/input_items: the
// turn's own input items (not its chain's), paginated as OpenAI does
// (order asc|desc, default desc; after an item id; limit 1-100, default 20).
func (s *Server) responseInputItems(c *gin.Context) {
	order := c.DefaultQuery("order", "desc")
	if order != "asc" && order != "desc" {
		s.fail(c, apierr.Invalid(`order must be "asc" or "desc"`).WithParam("order"))
		return
	}
	limit, err := strconv.Atoi(c.DefaultQuery("limit", "20"))
	if err != nil || limit < 1 || limit > 100 {
		s.fail(c, apierr.Invalid("limit must be an integer from 1 to 100").WithParam("limit"))
		return
	}
	row, err := s.storedResponse(c.Request.Context(), principal(c).Account.ID, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	var items []json.RawMessage
	if err := json.Unmarshal([]byte(row.Input), &items); err != nil {
		s.fail(c, fmt.Errorf("stored response %s input: %w", row.ID, err))
		return
	}
	page, err := responses.Page(items, order, c.Query("after"), limit)
	if err != nil {
		s.fail(c, apierr.Invalid("after: %s", err.Error()).WithParam("after"))
		return
	}
	c.JSON(http.StatusOK, page)
}
