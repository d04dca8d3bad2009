// Package validation is the error a domain package returns when outside
// input breaks one of its rules. The error names the offending field, so the
// HTTP API can answer 422 {"error": {"code", "message", "field"}} and the
// bulk importer can report it per line, without either knowing the rule.
package validation
