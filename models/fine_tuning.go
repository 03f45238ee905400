package models

import "time"

// FineTuningJob is a fine-tuning job relayed to OpenAI with its durable
// hold (migrations/00018_fine_tuning.sql). ID is the upstream job's id.
type FineTuningJob struct {
	ID                  string `gorm:"primaryKey"`
	AccountID           string
	APIKeyID            *string `gorm:"column:api_key_id"`
	Model               string  // the base model's catalog id, or the provider's name when the catalog has none
	BaseModel           string  // the provider's model name sent upstream
	TrainingFile        string
	Status              string
	HoldTokens          int64
	HeldMicros          int64
	TrainingBaseMicros  int64
	TrainingPriceMicros int64
	MarkupPermille      int64
	PriceVersion        int64
	TrainedTokens       *int64
	FineTunedModel      *string
	ChargedMicros       int64
	UncollectedMicros   int64
	Upstream            string // the last job object OpenAI answered (JSON)
	CreatedAt           time.Time
	UpdatedAt           time.Time
	SettledAt           *time.Time
}

// FineTuningFile is a training file uploaded to OpenAI through Beaver
// (migrations/00018_fine_tuning.sql). ID is the upstream file's id.
type FineTuningFile struct {
	ID         string `gorm:"primaryKey"`
	AccountID  string
	Filename   string
	Bytes      int64
	Examples   int64
	TokenBound int64
	Upstream   string // the file object OpenAI answered (JSON)
	CreatedAt  time.Time
}
