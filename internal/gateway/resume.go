package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"gorm.io/gorm"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/chat"
	"github.com/beaver-gateway/beaver/internal/embedding"
	"github.com/beaver-gateway/beaver/internal/money"
	"github.com/beaver-gateway/beaver/internal/pricing"
	"github.com/beaver-gateway/beaver/models"
)

// The one home of how a durable job (a batch line, a background response)
// picks up what an earlier attempt left. The job keeps its answer before
// it is charged (Durable.Record) next to its generation id; a run looks
// first for the generation's usage log:
//   - found: the charge committed; the job ends with its kept answer
//     charged as the usage log says (ChargedAnswer, ChargedEmbeddings) or,
//     with no kept answer, failed as the usage log says (SettledFailure);
//   - not found, an answer kept: it is charged now without asking the
//     provider again (ResumeDurable: Replay);
//   - neither: the request is run, its answer kept before its charge
//     (ResumeDurable: Record).

// Settled is generation genID's usage log when its charge committed; nil
// when it did not.
func Settled(ctx context.Context, d *gorm.DB, genID string) (*models.UsageLog, error) {
	var ul models.UsageLog
	err := d.WithContext(ctx).Where("id = ?", genID).Take(&ul).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("usage log %s: %w", genID, err)
	}
	return &ul, nil
}

// SettledFailure is what a job whose charge committed without a kept
// answer (a failure's usage log: nothing or the prompt charged) ends with.
func SettledFailure(ul *models.UsageLog) *apierr.Error {
	msg := "the request failed"
	if ul.Error != nil {
		msg = *ul.Error
	}
	return &apierr.Error{Status: http.StatusBadGateway, Type: "api_error", Code: "upstream_error", Message: msg}
}

// Kept is an answer a job kept (JSON) and the model that gave it.
type Kept struct {
	Answer *string
	Model  *string
}

// ResumeDurable is the Durable for a run of genID that found no usage log:
// a Replay of the kept answer, charged as from its model (returned: the
// call's Model), or, with none kept, record to keep the answer.
func ResumeDurable(genID string, kept Kept, record func(ctx context.Context, resp *chat.Response, model string) error) (Durable, string, error) {
	if kept.Answer == nil {
		return Durable{GenerationID: genID, Record: record}, "", nil
	}
	var resp chat.Response
	if err := json.Unmarshal([]byte(*kept.Answer), &resp); err != nil {
		return Durable{}, "", fmt.Errorf("kept answer of %s: %w", genID, err)
	}
	if kept.Model == nil {
		return Durable{}, "", fmt.Errorf("kept answer of %s: its model was not kept", genID)
	}
	return Durable{GenerationID: genID, Replay: &resp}, *kept.Model, nil
}

// ResumeEmbedDurable is ResumeDurable for an embeddings call (its model
// is the request's).
func ResumeEmbedDurable(genID string, kept *string, record func(ctx context.Context, resp *embedding.Response, model string) error) (EmbedDurable, error) {
	if kept == nil {
		return EmbedDurable{GenerationID: genID, Record: record}, nil
	}
	var resp embedding.Response
	if err := json.Unmarshal([]byte(*kept), &resp); err != nil {
		return EmbedDurable{}, fmt.Errorf("kept answer of %s: %w", genID, err)
	}
	return EmbedDurable{GenerationID: genID, Replay: &resp}, nil
}

// ChargedAnswer is a kept chat answer as Complete returns it once
// charged: its usage (the provider's, or the counts billed when they
// were estimated) with the charge of its usage log.
func ChargedAnswer(kept string, ul *models.UsageLog) (*chat.Response, error) {
	var resp chat.Response
	if err := json.Unmarshal([]byte(kept), &resp); err != nil {
		return nil, fmt.Errorf("kept answer of %s: %w", ul.ID, err)
	}
	u := resp.Usage
	if u == nil || ul.UsageEstimated {
		u = &chat.Usage{PromptTokens: int(ul.PromptTokens), CompletionTokens: int(ul.CompletionTokens)}
	}
	cost, micros := money.USD(ul.ChargedMicros), ul.ChargedMicros
	u.Cost, u.CostMicros = &cost, &micros
	if ul.CostDetails != nil {
		var d pricing.Details
		if json.Unmarshal([]byte(*ul.CostDetails), &d) == nil {
			u.CostDetails = &d
		}
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	resp.Usage = u
	resp.ID, resp.Model, resp.Object = ul.ID, ul.Model, chat.ObjectCompletion
	return &resp, nil
}

// ChargedEmbeddings is ChargedAnswer for a kept embeddings answer.
func ChargedEmbeddings(kept string, ul *models.UsageLog) (*embedding.Response, error) {
	var r embedding.Response
	if err := json.Unmarshal([]byte(kept), &r); err != nil {
		return nil, fmt.Errorf("kept answer of %s: %w", ul.ID, err)
	}
	cost, micros := money.USD(ul.ChargedMicros), ul.ChargedMicros
	r.ID, r.Object, r.Model = ul.ID, embedding.ObjectList, ul.Model
	r.Usage = &embedding.Usage{PromptTokens: int(ul.PromptTokens), TotalTokens: int(ul.PromptTokens), Cost: &cost, CostMicros: &micros}
	return &r, nil
}
