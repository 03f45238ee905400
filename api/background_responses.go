package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/ids"
	"github.com/beaver-gateway/beaver/internal/responses"
	"github.com/beaver-gateway/beaver/models"
)

// Background responses (POST /v1/responses with background true), as
// OpenAI runs them: the POST answers at once with the Response queued, a
// durable workflow (workflows.BackgroundResponseWorkflow, on the worker)
// runs it through the gateway and stores the outcome, GET
// /v1/responses/{id} polls it (queued → in_progress → completed,
// incomplete, failed or cancelled) and POST /v1/responses/{id}/cancel
// cancels it. The POST itself holds nothing: it checks the request, the
// rate limit (done before) and that the account has money; the run holds,
// answers and charges exactly like a direct request, exactly once across
// worker crashes (activities.RunBackgroundResponse). Background responses
// are stored responses: same owner rules, same retention.

// createBackgroundResponse serves a background request (req.Background).
func (s *Server) createBackgroundResponse(c *gin.Context, p *auth.Principal, req *responses.Request) {
	if req.Store != nil && !*req.Store {
		s.fail(c, apierr.Invalid("background responses are stored: send store true (or leave it out) with background true").
			WithParam("store"))
		return
	}
	if req.Chat.Stream {
		s.fail(c, apierr.Invalid("background responses are not streamed by Beaver: send stream false and poll "+
			"GET /v1/responses/{id} until the response is no longer queued or in_progress").WithParam("stream"))
		return
	}
	if !s.Workflows.Available() {
		s.fail(c, apierr.Unavailable("Temporal is not available; background responses cannot be run right now"))
		return
	}
	ctx := c.Request.Context()
	if err := s.checkFunds(ctx, p.Account.ID); err != nil {
		s.fail(c, err)
		return
	}
	id := "resp_" + strings.TrimPrefix(ids.New("g"), "g_")
	now := time.Now().UTC()
	resp := responses.Queued(req, id, now.Unix())
	if err := s.insertBackgroundResponse(ctx, p, req, resp, now, clientIP(c), requestID(c)); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.Workflows.StartBackgroundResponse(ctx, id); err != nil {
		// Not taken: nothing stays stored (nothing was held).
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		defer cancel()
		if derr := s.DB.WithContext(dctx).Where("id = ? AND status = ?", id, responses.StatusQueued).
			Delete(&models.StoredResponse{}).Error; derr != nil {
			s.log.ErrorContext(ctx, "removing a background response that could not start failed", "response_id", id, "error", derr)
		}
		s.fail(c, err)
		return
	}
	c.Header("X-Beaver-Generation-Id", responses.GenerationID(id))
	c.JSON(http.StatusOK, resp)
}

// checkFunds refuses an account with nothing left to spend, as admission
// would: the run holds the real bound when it starts.
func (s *Server) checkFunds(ctx context.Context, accountID string) error {
	var a models.Account
	if err := s.DB.WithContext(ctx).Select("balance_micros", "reserved_micros").Where("id = ?", accountID).Take(&a).Error; err != nil {
		return fmt.Errorf("account %s: %w", accountID, err)
	}
	if a.BalanceMicros-a.ReservedMicros <= 0 {
		return apierr.InsufficientBalance("insufficient balance: top up your account to run this request")
	}
	return nil
}

func (s *Server) insertBackgroundResponse(ctx context.Context, p *auth.Principal, req *responses.Request, resp *responses.Response,
	now time.Time, ip, requestID string) error {
	row, err := s.storedRow(p, req, resp, now)
	if err != nil {
		return err
	}
	job, err := json.Marshal(responses.NewJob(req, ip, requestID))
	if err != nil {
		return fmt.Errorf("encode background request: %w", err)
	}
	jobText := string(job)
	row.Background, row.Job = true, &jobText
	if err := s.DB.WithContext(ctx).Create(row).Error; err != nil {
		return fmt.Errorf("store background response: %w", err)
	}
	return nil
}

// cancelResponse serves POST /v1/responses/{id}/cancel: a queued or
// in-progress background response turns cancelled at once, and its run is
// stopped (the workflow is cancelled; the run also watches its row). A
// queued response was never run and costs nothing; one in flight is billed
// as a request whose client left (the gateway reads its answer to the end
// and bills it by its usage, or bills the prompt when it has to cut it
// off): its charge is in the usage log of its generation. Cancelling a
// cancelled response answers it again; a finished one, or one not made in
// the background, is 400; another account's id is 404.
func (s *Server) cancelResponse(c *gin.Context) {
	ctx := c.Request.Context()
	for range 3 {
		row, err := s.storedResponse(ctx, principal(c).Account.ID, c.Param("id"))
		if err != nil {
			s.fail(c, err)
			return
		}
		if !row.Background {
			s.fail(c, apierr.Invalid("only responses created with background true can be cancelled: this response was answered in full"))
			return
		}
		switch row.Status {
		case responses.StatusCancelled:
			c.Data(http.StatusOK, "application/json; charset=utf-8", []byte(row.Response))
			return
		case responses.StatusQueued, responses.StatusInProgress:
		default:
			s.fail(c, apierr.Invalid("cannot cancel a %s response: only a queued or in_progress background response can be cancelled", row.Status))
			return
		}
		cancelled, err := responses.WithStatus(json.RawMessage(row.Response), responses.StatusCancelled, nil)
		if err != nil {
			s.fail(c, err)
			return
		}
		r := s.DB.WithContext(ctx).Model(&models.StoredResponse{}).Where("id = ? AND status = ?", row.ID, row.Status).
			Updates(map[string]any{"status": responses.StatusCancelled, "response": string(cancelled)})
		if r.Error != nil {
			s.fail(c, fmt.Errorf("cancel background response %s: %w", row.ID, r.Error))
			return
		}
		if r.RowsAffected == 0 {
			continue // its run moved it on meanwhile: look again
		}
		// The row is the truth (a run that has not started will not, and
		// one in flight sees it within a second); the workflow is cancelled
		// so that it ends now.
		if err := s.Workflows.CancelBackgroundResponse(ctx, row.ID); err != nil {
			var e *apierr.Error
			if !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable {
				s.log.WarnContext(ctx, "cancelling a background response's workflow failed; its run stops on its own",
					"response_id", row.ID, "error", err)
			}
		}
		c.Data(http.StatusOK, "application/json; charset=utf-8", cancelled)
		return
	}
	s.fail(c, apierr.Conflict("the response changed while it was being cancelled; try again"))
}
