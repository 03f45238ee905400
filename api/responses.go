package api

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/gateway"
	"github.com/beaver-gateway/beaver/internal/providers/sse"
	"github.com/beaver-gateway/beaver/internal/responses"
)

// createResponse serves POST /v1/responses, OpenAI's Responses API: the
// request is translated into a chat request and served exactly like
// /v1/chat/completions (same limits, hold, price and single charge), the
// answer translated back (internal/responses). A request naming
// previous_response_id is run after its stored chain, and the answer is
// stored when store is true (stored_responses.go): the provider is sent,
// and bills, the whole conversation.
func (s *Server) createResponse(c *gin.Context) {
	p, err := s.checkLimits(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	req, err := readRequest(c, s.parseResponsesRequest(c.Request.Context(), p))
	if err != nil {
		s.fail(c, err)
		return
	}
	if req.Chat.Model == "" {
		s.fail(c, apierr.Invalid("model is required").WithParam("model"))
		return
	}
	if req.Background {
		s.createBackgroundResponse(c, p, req) // background_responses.go
		return
	}
	call := gateway.Call{Principal: p, Request: req.Chat, Model: req.Chat.Model, ClientIP: clientIP(c), RequestID: requestID(c),
		OnAttempts: func(a gateway.Attempts) { c.Header("X-Beaver-Attempts", a.String()) }}
	if req.Chat.Stream {
		sink := responses.NewStream(req, &sseEvents{w: c.Writer})
		sink.OnFinal = func(resp *responses.Response) { s.storeResponse(c.Request.Context(), p, req, resp) }
		if err := s.gateway.Stream(c.Request.Context(), call, sink); err != nil {
			s.fail(c, responsesError(err))
			return
		}
		if c.Request.Context().Err() == nil {
			sink.Close() // ends a stream the gateway could not finish; the client left otherwise
		}
		return
	}
	done, err := s.gateway.Complete(c.Request.Context(), call)
	if err != nil {
		s.fail(c, responsesError(err))
		return
	}
	resp := responses.FromChat(req, done.Response)
	s.storeResponse(c.Request.Context(), p, req, resp) // before answering: the client may GET it at once
	setChargeHeaders(c, done.Settlement, responses.GenerationID(resp.ID))
	c.JSON(http.StatusOK, resp)
}

// responsesError names, in error.param, the Responses field a gateway or
// adapter error blames by its chat name (messages → input, ...).
func responsesError(err error) error {
	if e, ok := apierr.As(err); ok && e.Param != "" {
		if p := responses.Param(e.Param); p != e.Param {
			return e.WithParam(p)
		}
	}
	return err
}

// sseEvents writes Responses stream events as named server-sent events
// (event: <type>, data: <json>), flushing each.
type sseEvents struct {
	w    gin.ResponseWriter
	sse  *sse.Writer
	gone bool
}

func (e *sseEvents) Open(responseID string) {
	h := e.w.Header()
	sse.SetHeaders(h)
	h.Set("X-Beaver-Generation-Id", responses.GenerationID(responseID)) // the usage log's id, as on every endpoint
	e.w.WriteHeader(http.StatusOK)
	e.w.Flush()
	e.sse = sse.NewWriter(e.w)
}

func (e *sseEvents) Event(typ string, v any) bool {
	if e.gone || e.sse == nil {
		return false
	}
	b, err := json.Marshal(v)
	if err != nil {
		return true // cannot happen for the events' types; the event is skipped
	}
	if err := e.sse.Event(typ, b); err != nil {
		e.gone = true
		return false
	}
	return true
}
