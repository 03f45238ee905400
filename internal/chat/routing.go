package chat

import (
	"encoding/json"
	"strings"
)

// MaxModels is the most models a request's models list may name.
const MaxModels = 5

// decodeRouting reads OpenRouter's routing fields: models, the models to
// try in order (the first is the primary when model is absent; after
// model otherwise), each a non-empty model id, at most MaxModels; and
// route, whose only value is "fallback" (what models does anyway). Whether
// each model exists is the gateway's to check (400 with param models).
func (r *Request) decodeRouting(fields map[string]json.RawMessage) error {
	if raw, ok := fields["models"]; ok && !isNull(raw) {
		var models []string
		if json.Unmarshal(raw, &models) != nil {
			return invalidField("models", "models must be an array of model ids")
		}
		if len(models) > MaxModels {
			return invalidField("models", "models may name at most %d models", MaxModels)
		}
		for i, m := range models {
			if strings.TrimSpace(m) == "" {
				return invalidField("models", "models[%d] must be a model id", i)
			}
		}
		if len(models) > 0 {
			r.Models = models
		}
	}
	if raw, ok := fields["route"]; ok && !isNull(raw) {
		var route string
		if json.Unmarshal(raw, &route) != nil || route != "fallback" {
			return invalidField("route", `route must be "fallback"`)
		}
	}
	return nil
}
