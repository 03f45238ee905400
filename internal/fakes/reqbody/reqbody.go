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
	if r.Header.Get("Content-Encoding") != "gzip" {
		return io.ReadAll(r.Body)
	}
	gz, err := gzip.NewReader(r.Body)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(gz)
	if cerr := gz.Close(); err == nil {
		err = cerr
	}
	return b, err
}
