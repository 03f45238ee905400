package main

import "github.com/beaver-gateway/beaver/web"

// webHandler serves the dashboard (or a page saying how to build it).
func webHandler() *web.App { return web.Handler() }
