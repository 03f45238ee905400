package responses

import (
	"encoding/json"
	"fmt"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/chat"
)

// Background responses (background: true): the API stores the request and
// answers at once with the Response queued; a durable workflow runs it
// (in_progress) and stores the outcome: completed, incomplete, failed, or
// cancelled when the caller cancelled it first.

// Job is what a background run needs of its request, stored with the
// response until it ran: the body as sent and the stored chain's items it
// continues (ParseRequestAfter), where the request came from, and whose
// key sent it.
type Job struct {
	Body      json.RawMessage   `json:"body"`
	History   []json.RawMessage `json:"history,omitempty"`
	ClientIP  string            `json:"client_ip,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
}

// NewJob is r's job.
func NewJob(r *Request, clientIP, requestID string) Job {
	return Job{Body: r.Body, History: r.History, ClientIP: clientIP, RequestID: requestID}
}

// Request parses the job's request again, as it was parsed when it came in
// (store is true: a background response is always stored).
func (j Job) Request() (*Request, error) {
	r, err := ParseRequestAfter(j.Body, j.History)
	if err != nil {
		return nil, fmt.Errorf("responses: background request: %w", err)
	}
	store := true
	r.Store = &store
	return r, nil
}

// Queued is the Response object of r, stored under id and not run yet:
// what POST answers for a background request.
func Queued(r *Request, id string, created int64) *Response {
	resp := r.newResponse(GenerationID(id), r.Chat.Model, created)
	resp.Status = StatusQueued
	return resp
}

// Answered is the Response object of a background run's charged answer,
// under the id and creation time the response was queued with.
func Answered(r *Request, id string, created int64, c *chat.Response) *Response {
	resp := FromChat(r, c)
	resp.ID, resp.CreatedAt = id, created
	return resp
}

// WithStatus is a stored background Response object (queued or in
// progress: no output, no usage yet) under a new status: in_progress as
// its run starts, cancelled, or failed with e (nothing was answered, and
// nothing is charged).
func WithStatus(stored json.RawMessage, status string, e *apierr.Error) (json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(stored, &fields); err != nil {
		return nil, fmt.Errorf("responses: stored background response: %w", err)
	}
	fields["status"], _ = json.Marshal(status)
	if e != nil {
		fields["error"], _ = json.Marshal(responseError(e))
	}
	out, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("responses: stored background response: %w", err)
	}
	return out, nil
}
