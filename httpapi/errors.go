package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/sellers"
	"github.com/imtgt/imtgt-node/store"
	"github.com/imtgt/imtgt-node/validation"
)

// errorBody is the JSON body of every error reply.
type errorBody struct {
	Error apiError `json:"error"`
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// httpError is an error with its HTTP status, code and field.
type httpError struct {
	status int
	apiError
}

func (e *httpError) Error() string { return e.Message }

func errorf(status int, code, format string, args ...any) *httpError {
	return &httpError{status: status, apiError: apiError{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// classify maps an error from the domain packages to a status, code and field.
func classify(err error) *httpError {
	var he *httpError
	if errors.As(err, &he) {
		return he
	}
	if he := orderError(err); he != nil {
		return he
	}
	if he := issueError(err); he != nil {
		return he
	}
	if ve, ok := validation.As(err); ok {
		return &httpError{status: http.StatusUnprocessableEntity, apiError: apiError{Code: ve.Code, Message: ve.Error(), Field: ve.Field}}
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return errorf(http.StatusRequestEntityTooLarge, "body_too_large", "request body is larger than %d bytes", mbe.Limit)
	case errors.Is(err, errBodyTimeout):
		return errorf(http.StatusRequestTimeout, "body_timeout", "%s", errBodyTimeout.Error())
	case errors.Is(err, errBodyRead):
		return errorf(http.StatusBadRequest, "body_incomplete", "%s", errBodyRead.Error())
	case errors.Is(err, store.ErrNoSpace), errors.Is(err, syscall.ENOSPC):
		// Nothing of the request was stored (a failed bbolt commit rolls
		// back whole): the client may retry once the operator has freed
		// space, with the same Idempotency-Key where it sent one.
		return errorf(http.StatusInsufficientStorage, "insufficient_storage", "the node's disk is full: nothing of this request was stored; retry later (the operator has been told by /readyz)")
	case errors.Is(err, store.ErrCommitUnknown):
		// The connection went while the COMMIT was in flight: the write
		// may have been stored. A blind retry could do it twice, so the
		// client retries with the same Idempotency-Key or reads first.
		return &httpError{status: http.StatusServiceUnavailable, apiError: apiError{Code: "store_unavailable",
			Message: "the node lost its database while committing this request: whether it was stored is unknown; retry with the same Idempotency-Key, or read before retrying"}}
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrFenced):
		// The database did not answer (or this replica lost the
		// federation lease mid-write): the transaction was rolled back or
		// never began, so nothing of the request is half-stored. Retry, on
		// any replica, with the same Idempotency-Key where one was sent.
		return &httpError{status: http.StatusServiceUnavailable, apiError: apiError{Code: "store_unavailable",
			Message: "the node's database is unavailable: nothing of this request was stored; retry shortly"}}
	case errors.Is(err, catalog.ErrStale):
		// A listing kept changing under the request on other replicas.
		return &httpError{status: http.StatusConflict, apiError: apiError{Code: "conflict", Message: err.Error()}}
	case errors.Is(err, sellers.ErrNotFound), errors.Is(err, catalog.ErrNotFound):
		return errorf(http.StatusNotFound, "not_found", "%s", err.Error())
	case errors.Is(err, sellers.ErrDuplicate):
		return &httpError{status: http.StatusConflict, apiError: apiError{Code: "duplicate", Message: err.Error(), Field: "business_id"}}
	case errors.Is(err, catalog.ErrNotOwner):
		return errorf(http.StatusForbidden, "not_owner", "%s", err.Error())
	case errors.Is(err, catalog.ErrSellerInactive):
		return errorf(http.StatusForbidden, "seller_inactive", "%s", err.Error())
	case errors.Is(err, catalog.ErrBadCursor):
		return &httpError{status: http.StatusBadRequest, apiError: apiError{Code: "bad_cursor", Message: err.Error(), Field: "cursor"}}
	case errors.Is(err, catalog.ErrReconciling):
		return errorf(http.StatusServiceUnavailable, "reconciling", "%s (GET /v1/peers shows the progress)", err.Error())
	case errors.Is(err, catalog.ErrIdempotency):
		return &httpError{status: http.StatusConflict, apiError: apiError{Code: "idempotency_key_reused", Message: err.Error(), Field: "Idempotency-Key"}}
	case errors.Is(err, catalog.ErrImportFile):
		return errorf(http.StatusBadRequest, "bad_import_file", "%s", err.Error())
	}
	return errorf(http.StatusInternalServerError, "internal", "internal error")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	// Encoded whole first, then written once with its length: encoding
	// straight into the response cost a write system call per 4 KiB of a
	// page and chunked framing (BenchmarkSearchHTTP).
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only a value the API builds can get here (no channel or func
		// fields): a bug, answered as one.
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":{"code":"internal","message":"the response could not be encoded"}}`+"\n")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w) // the client may be gone; nothing useful to do
}

// decodeJSON reads one JSON object from the body into v, refusing unknown
// fields, trailing data, invalid UTF-8 and lone surrogate escapes in strings,
// and bodies over the route's limit. Errors are 400 (naming the field where
// there is one) or 413.
func decodeJSON(r *http.Request, v any) error {
	// The raw bytes are kept beside the decoder: encoding/json replaces
	// invalid UTF-8 and lone surrogates with U+FFFD without an error, so
	// only the bytes the client sent can tell.
	var raw bytes.Buffer
	dec := json.NewDecoder(io.TeeReader(r.Body, &raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonError(err)
		}
		return errorf(http.StatusBadRequest, "malformed_json", "request body must hold exactly one JSON object")
	}
	if err := validation.JSONStrings(raw.Bytes()); err != nil {
		ve, _ := validation.As(err)
		return &httpError{status: http.StatusBadRequest, apiError: apiError{Code: ve.Code, Message: ve.Error(), Field: ve.Field}}
	}
	return nil
}

func jsonError(err error) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe), errors.Is(err, errBodyRead), errors.Is(err, errBodyTimeout):
		return err
	case errors.Is(err, io.EOF):
		return errorf(http.StatusBadRequest, "malformed_json", "request body is empty; a JSON object is required")
	case errors.As(err, &se):
		return errorf(http.StatusBadRequest, "malformed_json", "malformed JSON at byte %d: %v", se.Offset, err)
	case errors.As(err, &te):
		he := errorf(http.StatusBadRequest, "wrong_type", "field %q must be %s, not %s", te.Field, jsonType(te.Type.Kind().String()), te.Value)
		he.Field = te.Field
		return he
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		he := errorf(http.StatusBadRequest, "unknown_field", "unknown field %q", field)
		he.Field = field
		return he
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, "malformed_json", "request body ends in the middle of the JSON")
	}
	return errorf(http.StatusBadRequest, "malformed_json", "malformed JSON: %v", err)
}

func jsonType(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "a whole number"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	}
	return "a " + kind
}
