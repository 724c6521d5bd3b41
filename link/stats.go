package link

import "sync/atomic"

// Stats are the link's counters. Read them with Link.Stats.
type Stats struct {
	RxFrames, RxBytes, RxTransfers uint64
	TxFrames, TxBytes, TxTransfers uint64

	RxMalformed uint64 // transfers with a malformed PACKET_MSG (frames after it dropped)
	RxEmpty     uint64 // zero-length bulk-IN transfers
	RxOversize  uint64 // frames longer than the MTU allows (dropped)
	RxRunt      uint64 // frames shorter than an Ethernet header (dropped)
	RxLinkDown  uint64 // frames dropped because the link was down
	RxErrors    uint64 // failed bulk-IN reads
	TxLinkDown  uint64 // frames dropped because the link was closed (queued ones included); while it is down they wait
	TxQueueFull uint64 // frames dropped because the transmit queue was full (bulk OUT slower than the stack, or a long link-down)
	TxTooLarge  uint64 // frames larger than the device accepts
	TxErrors    uint64 // frames of bulk-OUT writes that failed with the link up (dropped; those of a link-down wait)
	Stalls      uint64 // bulk transfers the device stalled (the endpoint cleared again)

	ControlRequests  uint64
	ControlRTTNanos  uint64 // sum over ControlRequests
	ControlMalformed uint64 // control messages that did not parse
	ControlUnmatched uint64 // completions matching no outstanding request
	ControlTimeouts  uint64 // requests the device left unanswered for ControlTimeout
	NotifyMalformed  uint64 // interrupt notifications other than RESPONSE_AVAILABLE
	LimitsClamped    uint64 // INITIALIZE_CMPLTs whose limits were out of range and clamped
	InitFailures     uint64 // initializations that failed with the device present
	Indications      uint64 // RNDIS INDICATE_STATUS messages
	MediaConnects    uint64 // the device said its medium is connected (RNDIS MEDIA_CONNECT, CDC NETWORK_CONNECTION 1)
	MediaDisconnects uint64 // ... or disconnected
	DeviceKeepAlives uint64
	// Frames per transfer, counted in buckets whose upper bounds are
	// BatchBuckets (the last bucket takes the rest).
	TxBatches, RxBatches [len(BatchBuckets) + 1]uint64

	Halts              uint64 // device-sent HALTs
	Resets             uint64
	Reinits            uint64
	LinkDowns, LinkUps uint64
}

// Faults returns the counters of device misbehaviour by cause: what a
// hostile or broken device did, each counted where the host caught it.
func (s Stats) Faults() map[string]uint64 {
	return map[string]uint64{
		"malformed control message": s.ControlMalformed,
		"unmatched completion":      s.ControlUnmatched,
		"control timeout":           s.ControlTimeouts,
		"malformed notification":    s.NotifyMalformed,
		"malformed transfer":        s.RxMalformed,
		"empty transfer":            s.RxEmpty,
		"oversize frame":            s.RxOversize,
		"runt frame":                s.RxRunt,
		"clamped limits":            s.LimitsClamped,
		"failed initialization":     s.InitFailures,
		"stalled endpoint":          s.Stalls,
	}
}

// BatchBuckets are the upper bounds of the frames-per-transfer buckets.
var BatchBuckets = [...]int{1, 2, 4, 8, 16}

func batchBucket(n int) int {
	for i, b := range BatchBuckets {
		if n <= b {
			return i
		}
	}
	return len(BatchBuckets)
}

// TxPacketsPerTransfer is the mean number of frames per bulk-OUT transfer.
func (s Stats) TxPacketsPerTransfer() float64 { return ratio(s.TxFrames, s.TxTransfers) }

// RxPacketsPerTransfer is the mean number of frames per bulk-IN transfer.
func (s Stats) RxPacketsPerTransfer() float64 { return ratio(s.RxFrames, s.RxTransfers) }

func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// counters is Stats with atomic fields.
type counters struct {
	rxFrames, rxBytes, rxTransfers     atomic.Uint64
	txFrames, txBytes, txTransfers     atomic.Uint64
	rxMalformed, rxLinkDown, rxErrors  atomic.Uint64
	rxEmpty, rxOversize, rxRunt        atomic.Uint64
	controlTimeouts, notifyMalformed   atomic.Uint64
	limitsClamped, initFailures        atomic.Uint64
	txLinkDown, txTooLarge, txErrors   atomic.Uint64
	txQueueFull, stalls                atomic.Uint64
	mediaConnects, mediaDisconnects    atomic.Uint64
	controlRequests, controlRTT        atomic.Uint64
	controlMalformed, controlUnmatched atomic.Uint64
	indications, deviceKeepAlives      atomic.Uint64
	halts, resets, reinits             atomic.Uint64
	linkDowns, linkUps                 atomic.Uint64
	txBatches, rxBatches               [len(BatchBuckets) + 1]atomic.Uint64
}

func (c *counters) snapshot() Stats {
	s := Stats{
		RxFrames: c.rxFrames.Load(), RxBytes: c.rxBytes.Load(), RxTransfers: c.rxTransfers.Load(),
		TxFrames: c.txFrames.Load(), TxBytes: c.txBytes.Load(), TxTransfers: c.txTransfers.Load(),
		RxMalformed: c.rxMalformed.Load(), RxLinkDown: c.rxLinkDown.Load(), RxErrors: c.rxErrors.Load(),
		RxEmpty: c.rxEmpty.Load(), RxOversize: c.rxOversize.Load(), RxRunt: c.rxRunt.Load(),
		ControlTimeouts: c.controlTimeouts.Load(), NotifyMalformed: c.notifyMalformed.Load(),
		LimitsClamped: c.limitsClamped.Load(), InitFailures: c.initFailures.Load(),
		TxLinkDown: c.txLinkDown.Load(), TxTooLarge: c.txTooLarge.Load(), TxErrors: c.txErrors.Load(),
		TxQueueFull: c.txQueueFull.Load(), Stalls: c.stalls.Load(),
		MediaConnects: c.mediaConnects.Load(), MediaDisconnects: c.mediaDisconnects.Load(),
		ControlRequests: c.controlRequests.Load(), ControlRTTNanos: c.controlRTT.Load(),
		ControlMalformed: c.controlMalformed.Load(), ControlUnmatched: c.controlUnmatched.Load(),
		Indications: c.indications.Load(), DeviceKeepAlives: c.deviceKeepAlives.Load(),
		Halts: c.halts.Load(), Resets: c.resets.Load(), Reinits: c.reinits.Load(),
		LinkDowns: c.linkDowns.Load(), LinkUps: c.linkUps.Load(),
	}
	for i := range s.TxBatches {
		s.TxBatches[i], s.RxBatches[i] = c.txBatches[i].Load(), c.rxBatches[i].Load()
	}
	return s
}
