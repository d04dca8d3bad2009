package httpapi

import (
	_ "embed"
	"slices"
)

//go:embed openapi.yaml
var openAPIDocument []byte

// OpenAPIDocument returns the OpenAPI 3.1 description of the routes the
// server serves (openapi.yaml). The caller owns the returned slice.
func OpenAPIDocument() []byte { return slices.Clone(openAPIDocument) }
