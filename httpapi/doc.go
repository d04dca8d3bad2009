// Package httpapi is a node's HTTP API: JSON over net/http with Go 1.22
// routing patterns, bearer tokens with roles, JSON errors, request limits,
// health, readiness and Prometheus metrics.
//
// Every route is declared once, as data, in routes(): method, pattern, the
// roles it admits and its handler. The same table feeds the mux, the
// OpenAPI conformance test (openapi.yaml must describe exactly these
// routes) and the metrics labels.
package httpapi
