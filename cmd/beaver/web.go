package main

import (
	"net/http"

	"github.com/beaver-gateway/beaver/web"
)

// webHandler serves the dashboard (or a page saying how to build it).
func webHandler() http.Handler { return web.Handler() }
