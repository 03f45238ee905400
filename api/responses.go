package api

import (
	"context"
	"github.com/gin-gonic/gin"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/auth"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/gateway"
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
	ctx := c.Request.Context()
	serveDialect(s, c, chatDialect[*responses.Request]{
		fail: s.fail,
		parse: func(p *auth.Principal, b []byte) (*responses.Request, error) {
			return s.parseResponsesRequest(ctx, p)(b)
		},
		call: func(req *responses.Request) (*chat.Request, string, error) {
			if req.Chat.Model == "" {
				return nil, "", apierr.Invalid("model is required").WithParam("model")
			}
			return req.Chat, req.Chat.Model, nil
		},
		sink: func(w streamWriter, ctx context.Context, p *auth.Principal, req *responses.Request) (gateway.Sink, func()) {
			sink := responses.NewStream(req, &sseEvents{w: w})
			sink.OnFinal = func(resp *responses.Response) { s.storeResponse(ctx, p, req, resp) }
			return sink, func() {
				if ctx.Err() == nil {
					sink.Close() // ends a stream the gateway could not finish; the client left otherwise
				}
			}
		},
		render: func(p *auth.Principal, req *responses.Request, done *gateway.Completion) (any, string) {
			resp := responses.FromChat(req, done.Response)
			s.storeResponse(ctx, p, req, resp) // before answering: the client may GET it at once
			return resp, responses.GenerationID(resp.ID)
		},
		// Background mode is served by a workflow (background_responses.go).
		divert: func(p *auth.Principal, req *responses.Request) bool {
			if req.Background {
				s.createBackgroundResponse(c, p, req)
			}
			return req.Background
		},
		runError: responsesError,
	})
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
