package providers

import "net/http"

// Realtimer is a Provider whose wire format speaks OpenAI's Realtime API
// over a WebSocket: the openai adapter ({base}/realtime?model=…).
type Realtimer interface {
	// Realtime returns the WebSocket URL of model's realtime session (model
	// is the provider's own name) and the headers to open it with (the
	// key among them: never log them).
	Realtime(model string) (url string, header http.Header)
}

// RealtimerOf returns p's realtime endpoint, if its format has one.
func RealtimerOf(p Provider) (Realtimer, bool) {
	r, ok := p.(Realtimer)
	return r, ok
}
