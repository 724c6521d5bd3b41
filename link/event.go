package link

import (
	"fmt"
	"time"
)

// Cause says why the link went down or up.
type Cause string

// Causes of link events.
const (
	CauseInitialized      Cause = "initialized"       // up: the device's function started (RNDIS: INITIALIZE answered, filter set)
	CauseReinitialized    Cause = "reinitialized"     // up: started again after a halt, a failed reset or a replug
	CauseReset            Cause = "reset"             // up: an RNDIS RESET brought the device back
	CauseMediaConnect     Cause = "media connect"     // up: RNDIS MEDIA_CONNECT, CDC NETWORK_CONNECTION 1
	CauseNoDevice         Cause = "no device"         // down: Open found no device yet (Options.WaitForDevice)
	CauseDeviceHalt       Cause = "device halt"       // down: the device sent REMOTE_NDIS_HALT_MSG
	CauseMediaDisconnect  Cause = "media disconnect"  // down: RNDIS MEDIA_DISCONNECT, CDC NETWORK_CONNECTION 0
	CauseKeepAliveTimeout Cause = "keepalive timeout" // down: an RNDIS KEEPALIVE went unanswered or failed
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
