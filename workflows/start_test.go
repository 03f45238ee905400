package workflows_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/config"
	"github.com/beaver-gateway/beaver/internal/payments/stripe"
	"github.com/beaver-gateway/beaver/internal/temporalx"
	"github.com/beaver-gateway/beaver/workflows"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func want503(t *testing.T, what string, err error) {
	t.Helper()
	e, ok := apierr.As(err)
	if !ok || e.Status != 503 {
		t.Errorf("%s: want apierr 503, got %v", what, err)
	}
}

func TestStarterAnswers503WithoutTemporal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	_ = ln.Close()
	cfg, err := config.FromLookup(func(k string) (string, bool) {
		if k == "TEMPORAL_ADDRESS" {
			return "127.0.0.1:" + port, true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	conn := temporalx.NewConn(cfg, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go conn.Run(ctx) // keeps failing to dial
	reg := prometheus.NewRegistry()
	s := workflows.NewStarter(workflows.StarterOptions{Conn: conn, Log: quiet, Registerer: reg})
	if s.Available() {
		t.Fatal("Available with nothing listening")
	}
	_, err = s.StartRepricing(ctx, "test")
	want503(t, "StartRepricing", err)
	_, err = s.StartModelDiscovery(ctx, "test")
	want503(t, "StartModelDiscovery", err)
	want503(t, "StartEmailVerification", s.StartEmailVerification(ctx, "acct_1"))
	want503(t, "CompleteEmailVerification", s.CompleteEmailVerification(ctx, "acct_1", "bve_x"))
	want503(t, "StartPasswordReset", s.StartPasswordReset(ctx, "acct_1"))
	want503(t, "CompletePasswordReset", s.CompletePasswordReset(ctx, "acct_1", "bpr_x", argonHash))
	want503(t, "SignalLowBalance", s.SignalLowBalance(ctx, "acct_1", 0, 1))
	want503(t, "StartTopUpSettlement", s.StartTopUpSettlement(ctx, workflows.TopUpSettlementInput{SessionID: "cs_1"}))
	_, err = s.StartRefund(ctx, "k", workflows.RefundInput{TopUpID: "tu_1", AmountMicros: 1})
	want503(t, "StartRefund", err)
	want503(t, "StartAutoRecharge", s.StartAutoRecharge(ctx, "acct_1"))
	// Immediate: every answer came from the availability check, none from
	// a call that went looking for Temporal and timed out.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var unavailable, other float64
	for _, f := range families {
		if f.GetName() != "beaver_workflow_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == "unavailable" {
					unavailable += m.GetCounter().GetValue()
				} else if l.GetName() == "outcome" {
					other += m.GetCounter().GetValue()
				}
			}
		}
	}
	if unavailable == 0 || other != 0 {
		t.Errorf("outcomes: %v unavailable, %v other; want every answer given without calling Temporal", unavailable, other)
	}
	// Without any connection at all, the same.
	want503(t, "no conn", workflows.NewStarter(workflows.StarterOptions{Log: quiet}).StartAutoRecharge(ctx, "acct_1"))
}

func TestCompletePasswordResetRefusesAPlainPassword(t *testing.T) {
	s := workflows.NewStarter(workflows.StarterOptions{Log: quiet})
	err := s.CompletePasswordReset(context.Background(), "acct_1", "bpr_x", "correct horse battery")
	if err == nil {
		t.Fatal("a plain password must never be sent")
	}
	if _, ok := apierr.As(err); ok {
		t.Errorf("a programming error, not a client error: %v", err)
	}
}

func TestStartTopUpSettlementDuplicateIsSuccess(t *testing.T) {
	const sid = "cs_test_123"
	c := &mocks.Client{}
	in := workflows.TopUpSettlementInput{SessionID: sid, EventType: stripe.EventCheckoutSessionCompleted}
	c.On("SignalWithStartWorkflow", mock.Anything, "topup:"+sid, workflows.SignalTopUpEvent, in.EventType,
		mock.MatchedBy(func(o client.StartWorkflowOptions) bool {
			return o.ID == "topup:"+sid && o.TaskQueue == workflows.TaskQueue &&
				o.WorkflowIDReusePolicy == enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE &&
				o.WorkflowIDConflictPolicy == enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
		}), mock.Anything, in).
		Return(nil, serviceerror.NewWorkflowExecutionAlreadyStarted("closed", "", "")).Once()
	c.On("SignalWithStartWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Return(nil, serviceerror.NewUnavailable("temporal down")).Once()
	s := workflows.NewStarter(workflows.StarterOptions{Conn: temporalx.ConnFor(c, quiet), Log: quiet})
	if err := s.StartTopUpSettlement(context.Background(), in); err != nil {
		t.Fatalf("already started: %v, want nil", err)
	}
	want503(t, "temporal down", s.StartTopUpSettlement(context.Background(), in))
	c.AssertExpectations(t)
	if s.Available() {
		t.Error("an Unavailable answer must mark the connection down")
	}
	if got := workflows.TopUpWorkflowID("cs_x"); got != "topup:cs_x" {
		t.Fatalf("TopUpWorkflowID = %q", got)
	}
}

func TestStartRefundAndAutoRechargeIDs(t *testing.T) {
	c := &mocks.Client{}
	c.On("ExecuteWorkflow", mock.Anything, mock.MatchedBy(func(o client.StartWorkflowOptions) bool {
		return o.ID == "refund:tu_1:key1" && o.WorkflowIDReusePolicy == enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE &&
			o.WorkflowIDConflictPolicy == enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
	}), mock.Anything, workflows.RefundInput{TopUpID: "tu_1", AmountMicros: 5_000_000}).
		Return(nil, serviceerror.NewWorkflowExecutionAlreadyStarted("running", "", "")).Once()
	c.On("ExecuteWorkflow", mock.Anything, mock.MatchedBy(func(o client.StartWorkflowOptions) bool {
		return o.ID == "autorecharge:acct_1" && o.WorkflowIDReusePolicy == enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE &&
			o.WorkflowIDConflictPolicy == enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
	}), mock.Anything, workflows.AutoRechargeInput{AccountID: "acct_1"}).Return(nil, nil).Once()
	s := workflows.NewStarter(workflows.StarterOptions{Conn: temporalx.ConnFor(c, quiet), Log: quiet})
	id, err := s.StartRefund(context.Background(), "key1", workflows.RefundInput{TopUpID: "tu_1", AmountMicros: 5_000_000})
	if err != nil || id != "refund:tu_1:key1" {
		t.Fatalf("StartRefund = %q, %v (the same key again is the same refund)", id, err)
	}
	if err := s.StartAutoRecharge(context.Background(), "acct_1"); err != nil {
		t.Fatal(err)
	}
	c.AssertExpectations(t)
}
