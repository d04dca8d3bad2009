package validation

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every *Error, so callers can test with errors.Is.
var ErrInvalid = errors.New("invalid input")

// Error is a broken rule on one field of the input.
type Error struct {
	Field   string // JSON path of the field, e.g. "owner.national_id"
	Code    string // machine-readable reason, e.g. "invalid_business_id"
	Message string // for people
	Err     error  // the underlying sentinel, if any
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Unwrap lets errors.Is see both ErrInvalid and the underlying sentinel.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}

// Field builds an *Error for field with a formatted message.
func Field(field, code, format string, args ...any) *Error {
	return &Error{Field: field, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap builds an *Error for field from an underlying error, keeping it for
// errors.Is and using its text as the message.
func Wrap(field, code string, err error) *Error {
	return &Error{Field: field, Code: code, Message: err.Error(), Err: err}
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var ve *Error
	ok := errors.As(err, &ve)
	return ve, ok
}
