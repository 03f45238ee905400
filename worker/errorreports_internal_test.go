package worker

import (
	"errors"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

func TestFinalAttempt(t *testing.T) {
	policy := func(max int32) *temporal.RetryPolicy { return &temporal.RetryPolicy{MaximumAttempts: max} }
	plain, fatal := errors.New("x"), temporal.NewNonRetryableApplicationError("x", "T", nil)
	for _, c := range []struct {
		info activity.Info
		err  error
		want bool
	}{
		{activity.Info{Attempt: 1}, plain, false},
		{activity.Info{Attempt: 1}, fatal, true},
		{activity.Info{Attempt: 1, RetryPolicy: policy(3)}, plain, false},
		{activity.Info{Attempt: 3, RetryPolicy: policy(3)}, plain, true},
		{activity.Info{Attempt: 9, RetryPolicy: policy(0)}, plain, false}, // 0 = unlimited
		{activity.Info{Attempt: 1, RetryPolicy: policy(1)}, temporal.NewApplicationError("x", "T"), true},
	} {
		if got := final(c.info, c.err); got != c.want {
			t.Errorf("attempt %d policy %+v err %v: final = %v", c.info.Attempt, c.info.RetryPolicy, c.err, got)
		}
	}
}
