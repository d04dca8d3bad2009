// Package pb holds the federation's wire messages, generated from
// federation.proto (the wire specification; see docs/PROTOCOL.md).
//
// Regenerate with protoc 3.21+ and protoc-gen-go v1.36:
//
//	go generate ./federation/pb
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative federation.proto
