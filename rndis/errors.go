package rndis

import (
	"errors"
	"fmt"
)

// FormatError reports a malformed message: which message, which field, and why.
type FormatError struct {
	Type   MessageType // the message's type, 0 when even that could not be read
	Field  string      // the offending field, e.g. "MessageLength"
	Reason string
}

func (e *FormatError) Error() string {
	if e.Type == 0 {
		return fmt.Sprintf("rndis: malformed message: %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("rndis: malformed %v: %s: %s", e.Type, e.Field, e.Reason)
}

func formatErr(t MessageType, field, format string, args ...any) error {
	return &FormatError{Type: t, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ErrUnknownType is wrapped by the error Parse returns for a message type it
// does not know.
var ErrUnknownType = errors.New("unknown message type")
