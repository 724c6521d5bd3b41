package ncm

import (
	"errors"
	"fmt"
)

// FormatError reports a malformed structure: which one, where, which field,
// and why.
type FormatError struct {
	Structure string // "NTH16", "NDP32", "NTB parameters", "notification", …
	Offset    int    // where the structure starts in the buffer it was read from
	Field     string // the offending field, e.g. "wNextNdpIndex" or "wDatagramLength[2]"
	Reason    string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("ncm: malformed %s at byte %d: %s: %s", e.Structure, e.Offset, e.Field, e.Reason)
}

func formatErr(structure string, offset int, field, format string, args ...any) error {
	return &FormatError{Structure: structure, Offset: offset, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ErrFrameTooLarge is wrapped by the error Writer.Reserve returns for a frame
// that does not fit even in an empty block.
var ErrFrameTooLarge = errors.New("ncm: frame larger than the NTB limits allow")

// ErrFinished is returned by Writer.Reserve between Finish and Reset.
var ErrFinished = errors.New("ncm: the NTB is finished; Reset before adding to it")
