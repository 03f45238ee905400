package workflows

import (
	"context"
	"fmt"
	"sort"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
)

// FailedWorkflow is one workflow execution that failed or timed out.
type FailedWorkflow struct {
	WorkflowID string    `json:"workflow_id"`
	RunID      string    `json:"run_id"`
	Type       string    `json:"type"`
	Status     string    `json:"status"` // "failed" or "timed_out"
	ClosedAt   time.Time `json:"closed_at"`
}

// FailedWorkflows counts the executions that failed or timed out since a
// time and lists the latest of them.
type FailedWorkflows struct {
	Failed   int64            `json:"failed"`
	TimedOut int64            `json:"timed_out"`
	Recent   []FailedWorkflow `json:"recent"`
}

// FailedWorkflows asks Temporal's visibility store for the executions of
// Beaver's namespace that closed failed or timed out since since: their
// counts and the latest limit of them (the operations view). It answers
// apierr 503 at once while Temporal is unreachable.
func (s *Starter) FailedWorkflows(ctx context.Context, since time.Time, limit int) (FailedWorkflows, error) {
	var out FailedWorkflows
	c, err := s.client("failed_workflows")
	if err != nil {
		return out, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.CallTimeout)
	defer cancel()
	closed := fmt.Sprintf("CloseTime > '%s'", since.UTC().Format(time.RFC3339))
	for _, q := range []struct {
		status string
		n      *int64
	}{{"Failed", &out.Failed}, {"TimedOut", &out.TimedOut}} {
		res, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Query: fmt.Sprintf("ExecutionStatus = '%s' AND %s", q.status, closed)})
		if err != nil {
			return out, fmt.Errorf("count %s workflows: %w", q.status, err)
		}
		*q.n = res.GetCount()
	}
	if out.Failed+out.TimedOut == 0 || limit <= 0 {
		out.Recent = []FailedWorkflow{}
		return out, nil
	}
	res, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: int32(limit),
		Query: fmt.Sprintf("(ExecutionStatus = 'Failed' OR ExecutionStatus = 'TimedOut') AND %s", closed)})
	if err != nil {
		return out, fmt.Errorf("list failed workflows: %w", err)
	}
	out.Recent = make([]FailedWorkflow, 0, len(res.GetExecutions()))
	for _, e := range res.GetExecutions() {
		if len(out.Recent) == limit {
			break
		}
		status := "failed"
		if e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT {
			status = "timed_out"
		}
		out.Recent = append(out.Recent, FailedWorkflow{WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(),
			Type: e.GetType().GetName(), Status: status, ClosedAt: e.GetCloseTime().AsTime().UTC()})
	}
	// Visibility stores list closed executions latest first; ORDER BY is
	// not supported by all of them (the dev server's SQLite).
	sort.SliceStable(out.Recent, func(i, j int) bool { return out.Recent[i].ClosedAt.After(out.Recent[j].ClosedAt) })
	return out, nil
}
