package billing

import (
	"fmt"

	"github.com/beaver-gateway/beaver/internal/pricing"
)

// Reprice sets the price (and its version) a hold is charged at when it
// finishes. A request that may be answered by any of several models (a
// fallback chain) is admitted at a price no lower than any of theirs in
// each component (input, output, request fee), so that its hold covers
// whichever answers; before Finish it is repriced to the price of the
// model that answered. A price above the hold's current one in any
// component is refused: repricing only ever lowers what the hold may
// charge, so the hold taken at admission still bounds the charge.
func (h *Hold) Reprice(p pricing.Price, version int64) error {
	if h.finished {
		return ErrAlreadyFinished
	}
	cur := h.Price
	if p.Input > cur.Input || p.Output > cur.Output || p.Fee > cur.Fee || p.CachedInput > cur.CachedInput || p.Reasoning > cur.Reasoning ||
		p.CacheWrite > cur.CacheWrite || p.CacheWrite1h > cur.CacheWrite1h || p.AudioInput > cur.AudioInput ||
		p.CachedAudioInput > cur.CachedAudioInput || p.AudioOutput > cur.AudioOutput || imagesAbove(p.Rates(), cur.Rates()) {
		return fmt.Errorf("billing: price (in %d, out %d, fee %d, cached %d, reasoning %d) of %s exceeds the held price (in %d, out %d, fee %d, cached %d, reasoning %d)",
			p.Input, p.Output, p.Fee, p.CachedInput, p.Reasoning, p.ModelID, cur.Input, cur.Output, cur.Fee, cur.CachedInput, cur.Reasoning)
	}
	h.Price, h.PriceVersion = p, version
	return nil
}

// imagesAbove reports whether p prices image tokens or images above cur.
func imagesAbove(p, cur pricing.Rates) bool {
	return p.ImageInput > cur.ImageInput || p.ImageOutput > cur.ImageOutput || p.Image > cur.Image
}
