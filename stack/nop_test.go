package stack

import (
	"context"

	"github.com/rndis-netd/rndis-netd/usb"
)

// nopOpener is a device that is never there, for option checks that fail
// before any device is opened.
type nopOpener struct{}

func (*nopOpener) Open(context.Context) (usb.Transport, error) { return nil, usb.ErrNoDevice }
