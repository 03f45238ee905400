package api

import (
	"net/http"
	"time"

	"github.com/beaver-gateway/beaver/internal/config"
)

// Connection-level limits of the API's HTTP server. A request body's own
// deadline is BEAVER_BODY_READ_TIMEOUT, enforced per request by
// bodyLimitMiddleware.
const (
	readHeaderTimeout = 10 * time.Second  // from accept (or the end of the previous request) to the last header line
	idleTimeout       = 120 * time.Second // a keep-alive connection waiting for its next request
	maxHeaderBytes    = 64 << 10          // request line and headers
)

// NewHTTPServer is the http.Server that `beaver api` and `beaver dev` serve
// h with (tests build the same one). It sets no ReadTimeout, because the
// body has its own deadline, and no WriteTimeout, because a streamed
// completion may last minutes and must never be cut by the server.
func NewHTTPServer(cfg *config.Config, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              cfg.Addr,
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}
