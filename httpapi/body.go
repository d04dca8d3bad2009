package httpapi

import (
	"errors"
	"io"
	"net/http"
	"os"
)

// errBodyRead is a request body that could not be read to its end: the
// client stopped sending, the connection broke, or the read timed out.
var errBodyRead = errors.New("the request body could not be read to its end (the connection was closed or stopped sending)")

// errBodyTimeout is a request body that did not arrive within the
// server's read timeout.
var errBodyTimeout = errors.New("the request body did not arrive in time (the server's read timeout passed)")

// bodyReader stands between a handler's decoders and the connection, so
// that what a decoder reports of a failed read is the node's own sentence,
// never the socket error: net.OpError's text holds both endpoints'
// addresses, and decoders (JSON, CSV, NDJSON) copy their reader's error
// into theirs. End of body and the body limit pass through unchanged.
type bodyReader struct {
	r io.ReadCloser
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == nil || err == io.EOF {
		return n, err
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return n, err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return n, errBodyTimeout
	case errors.Is(err, io.ErrUnexpectedEOF):
		// net/http's body of a declared length that ended early.
		return n, io.ErrUnexpectedEOF
	}
	return n, errBodyRead
}

func (b *bodyReader) Close() error { return b.r.Close() }
