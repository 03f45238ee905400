package worker

import (
	"context"
	"errors"
	"strconv"

	"github.com/getsentry/sentry-go"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
)

// ErrorReports sends the failures of activities that will not be retried
// (a non-retryable error, or the last attempt its retry policy allows) to
// Sentry, tagged with the activity, its workflow and the attempt; a failure
// that Temporal retries is not an error yet. Only the error is sent: no
// input or result.
type ErrorReports struct {
	interceptor.WorkerInterceptorBase
	Hub *sentry.Hub
}

// InterceptActivity implements interceptor.WorkerInterceptor.
func (e *ErrorReports) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &activityErrors{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, hub: e.Hub}
}

type activityErrors struct {
	interceptor.ActivityInboundInterceptorBase
	hub *sentry.Hub
}

func (a *activityErrors) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	res, err := a.Next.ExecuteActivity(ctx, in)
	if err == nil || ctx.Err() != nil {
		return res, err
	}
	info := activity.GetInfo(ctx)
	if !final(info, err) {
		return res, err
	}
	hub := a.hub.Clone()
	hub.WithScope(func(scope *sentry.Scope) {
		scope.SetTags(map[string]string{"activity": info.ActivityType.Name, "workflow": info.WorkflowType.Name,
			"workflow_id": info.WorkflowExecution.ID, "attempt": strconv.Itoa(int(info.Attempt))})
		scope.SetFingerprint([]string{"{{ default }}", info.ActivityType.Name})
		hub.CaptureException(err)
	})
	return res, err
}

// final reports whether err ends the activity: Temporal will not retry it.
func final(info activity.Info, err error) bool {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.NonRetryable() {
		return true
	}
	rp := info.RetryPolicy
	return rp != nil && rp.MaximumAttempts > 0 && info.Attempt >= rp.MaximumAttempts
}
