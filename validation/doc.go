// Package validation is the error a domain package returns when outside
// input breaks one of its rules. The error names the offending field, so the
// HTTP API can answer 422 {"error": {"code", "message", "field"}} and the
// bulk importer can report it per line, without either knowing the rule.
//
// It also holds the two rules every package that takes text from outside
// shares: [Text], what free text people read may contain (no controls, no
// bidirectional overrides, not blank), and [JSONStrings], which refuses
// the invalid UTF-8 and lone surrogate escapes that encoding/json would
// otherwise replace with U+FFFD without a word.
package validation
