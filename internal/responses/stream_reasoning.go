package responses

import "github.com/beaver-gateway/beaver/internal/reasoning"

// The reasoning item of a stream. Its text is streamed as OpenAI streams a
// reasoning summary: one summary part (response.reasoning_summary_part.added),
// its deltas (response.reasoning_summary_text.delta), then .done and
// response.reasoning_summary_part.done as the item closes.
//
// A call's Gemini thought signature comes with the call, when the
// reasoning before it may be over: sign puts it, as Beaver's reasoning
// token, in the encrypted_content of the reasoning item just before the
// call's function_call item (the open one, or an empty one opened for it),
// where OpenAI puts the reasoning a call came from. A signature that comes
// on a later fragment of a call already streaming is carried by a
// reasoning item after the calls. Either way the final output, sent back as
// input, gives readReasoning every signature again.

// reasoningDelta adds reasoning text to the open reasoning item, starting
// the item and its summary part when needed.
func (s *Stream) reasoningDelta(text string) bool {
	it := s.item(ItemReasoning)
	if it == nil {
		if !s.openItem(reasoningItem("", "")) {
			return false
		}
		it = &s.resp.Output[s.open]
	}
	if len(it.Summary) == 0 {
		it.Summary = []Part{{Type: PartSummaryText}}
		if !s.emit(EventSummaryPartAdded, &summaryPartEvent{ItemID: it.ID, OutputIndex: s.open, Part: it.Summary[0]}) {
			return false
		}
	}
	it.Summary[0].Text += text
	return s.emit(EventSummaryTextDelta, &summaryTextDeltaEvent{ItemID: it.ID, OutputIndex: s.open, Delta: text})
}

// closeSummary writes the done events of the open reasoning item's
// summary part, if it has one.
func (s *Stream) closeSummary(it *Item) bool {
	if len(it.Summary) == 0 {
		return true
	}
	p := it.Summary[0]
	return s.emit(EventSummaryTextDone, &summaryTextDoneEvent{ItemID: it.ID, OutputIndex: s.open, Text: p.Text}) &&
		s.emit(EventSummaryPartDone, &summaryPartEvent{ItemID: it.ID, OutputIndex: s.open, Part: p})
}

// sign ends the reasoning before a function call with state as its
// encrypted_content: the open reasoning item's, or a new, empty one's.
// Nothing to carry, nothing sent.
func (s *Stream) sign(state reasoning.State) bool {
	token := state.Token()
	if token == "" {
		return true
	}
	if it := s.item(ItemReasoning); it != nil {
		it.EncryptedContent = token
		return s.closeItem(StatusCompleted)
	}
	return s.openItem(reasoningItem("", token)) && s.closeItem(StatusCompleted)
}

// summaryPartEvent is response.reasoning_summary_part.added and .done.
// Beaver's reasoning items have one summary part: summary_index 0.
type summaryPartEvent struct {
	header
	ItemID       string `json:"item_id"`
	OutputIndex  int    `json:"output_index"`
	SummaryIndex int    `json:"summary_index"`
	Part         Part   `json:"part"`
}

type summaryTextDeltaEvent struct {
	header
	ItemID       string `json:"item_id"`
	OutputIndex  int    `json:"output_index"`
	SummaryIndex int    `json:"summary_index"`
	Delta        string `json:"delta"`
}

type summaryTextDoneEvent struct {
	header
	ItemID       string `json:"item_id"`
	OutputIndex  int    `json:"output_index"`
	SummaryIndex int    `json:"summary_index"`
	Text         string `json:"text"`
}
