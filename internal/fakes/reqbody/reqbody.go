// Package reqbody reads the bodies telemetry clients send the fakes of
// their backends (Sentry's ingest, an OTLP collector): gzip-compressed when
// Content-Encoding says so, as both SDKs may.
package reqbody

import (
	"compress/gzip"
	"io"
	"net/http"
)

// Read is r's body, decompressed.
func Read(r *http.Request) ([]byte, error) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		defer gz.Close()
		body = gz
	}
	return io.ReadAll(body)
}
