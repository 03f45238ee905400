package gateway

import (
	"errors"
	"net/http"
	"time"

	"github.com/beaver-gateway/beaver/internal/billing"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/opsstats"
	"github.com/beaver-gateway/beaver/internal/providers"
)

// observe tells the operations aggregates (opsstats) of a request once it
// is settled (run.settle: every request that was admitted ends there,
// once): its outcome, the latency Beaver added and the upstream's, and
// what it was charged. settling is when the charge started; st is nil
// when the charge failed.
//
// Upstream latency is the time the provider took to answer (every
// attempt of every model tried, routing.go's try), to open the stream for
// a stream; added latency is the rest of the request's time, without the
// relay of a stream's chunks (from when it opened to when its charge
// started), which is the upstream generating.
func (r *run) observe(o billing.Outcome, st *billing.Settlement, settling time.Time) {
	ops := r.g.ops
	if ops == nil {
		return
	}
	end := time.Now()
	total := end.Sub(r.began)
	added := total - r.upstream
	if o.Streamed && !r.opened.IsZero() {
		added -= settling.Sub(r.opened)
	}
	ob := opsstats.Observation{Provider: r.entry.Provider, Model: r.entry.ID, Added: max(added, 0), Upstream: r.upstream}
	switch {
	case o.Cancelled:
		ob.Outcome = opsstats.Cancelled
	case o.Error != "":
		ob.Outcome = failureClass(r.failErr)
	}
	if st != nil {
		ob.ChargedMicros, ob.ProviderCostMicros = st.ChargedMicros, st.ProviderCostMicros
	}
	ops.Observe(ob)
}

// failureClass is the error class of a failed request: the request's own
// (a 4xx other than 408, 409, 429 and the key's 401/403; a request the
// format cannot express) or the upstream's (everything else).
func failureClass(err error) opsstats.Outcome {
	var ie *chat.InvalidError
	if errors.As(err, &ie) {
		return opsstats.ClientError
	}
	var pe *providers.Error
	if errors.As(err, &pe) && pe.Status >= 400 && pe.Status < 500 && !pe.Retryable() && !pe.KeyRejected() &&
		pe.Status != http.StatusRequestTimeout {
		return opsstats.ClientError
	}
	return opsstats.UpstreamError
}
