package link

import (
	"fmt"
	"time"
)

// Cause says why the link went down or up.
type Cause string

// Causes of link events.
const (
	CauseInitialized      Cause = "initialized"       // up: the device answered INITIALIZE and the filter is set
	CauseReinitialized    Cause = "reinitialized"     // up: after a halt, a failed reset or a replug
	CauseReset            Cause = "reset"             // up: a RESET brought the device back
	CauseMediaConnect     Cause = "media connect"     // up: INDICATE_STATUS MEDIA_CONNECT
	CauseDeviceHalt       Cause = "device halt"       // down: the device sent REMOTE_NDIS_HALT_MSG
	CauseMediaDisconnect  Cause = "media disconnect"  // down: INDICATE_STATUS MEDIA_DISCONNECT
	CauseKeepAliveTimeout Cause = "keepalive timeout" // down: a KEEPALIVE went unanswered or failed
	CauseControlTimeout   Cause = "control timeout"   // down: a control request went unanswered
	CauseDeviceGone       Cause = "device gone"       // down: unplugged
	CauseClosed           Cause = "closed"            // down: Close was called
)

// Event is a change of the link's state.
type Event struct {
	Up    bool
	Cause Cause
	Err   error // what went wrong, for some down events
	Time  time.Time
}

func (e Event) String() string {
	state := "down"
	if e.Up {
		state = "up"
	}
	if e.Err != nil {
		return fmt.Sprintf("link %s: %s: %v", state, e.Cause, e.Err)
	}
	return fmt.Sprintf("link %s: %s", state, e.Cause)
}
