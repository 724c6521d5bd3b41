package sim

import (
	"encoding/binary"

	"github.com/rndis-netd/rndis-netd/rndis"
)

// supportedOIDs is what OID_GEN_SUPPORTED_LIST reports, as Linux's gadget does.
var supportedOIDs = []rndis.OID{
	rndis.OIDGenSupportedList, rndis.OIDGenHardwareStatus, rndis.OIDGenMediaSupported, rndis.OIDGenMediaInUse,
	rndis.OIDGenMaximumFrameSize, rndis.OIDGenLinkSpeed, rndis.OIDGenVendorID, rndis.OIDGenVendorDescription,
	rndis.OIDGenCurrentPacketFilter, rndis.OIDGenMaximumTotalSize, rndis.OIDGenMediaConnectStatus,
	rndis.OIDGenPhysicalMedium, rndis.OIDGenXmitOK, rndis.OIDGenRcvOK, rndis.OIDGenXmitError, rndis.OIDGenRcvError,
	rndis.OIDGenRcvNoBuffer, rndis.OID8023PermanentAddress, rndis.OID8023CurrentAddress,
	rndis.OID8023MulticastList, rndis.OID8023MaximumListSize,
}

// command handles one control message from the host.
func (r *rndisFunction) command(msg []byte) {
	p := r.p
	if p.faults.silent {
		return
	}
	m, err := rndis.Parse(msg)
	if err != nil {
		p.stats.MalformedCommands++
		return
	}
	switch m := m.(type) {
	case rndis.Initialize:
		r.reset()
		p.resetLocked()
		p.stats.Initializes++
		r.initialized = true
		r.hostMaxXfer = int(m.MaxTransferSize)
		r.queue(rndis.InitializeComplete{
			RequestID: m.RequestID, Status: rndis.StatusSuccess,
			MajorVersion: rndis.MajorVersion, MinorVersion: rndis.MinorVersion,
			DeviceFlags: rndis.DeviceFlagConnectionless, Medium: rndis.Medium8023,
			MaxPacketsPerTransfer: uint32(p.cfg.MaxPacketsPerTransfer),
			MaxTransferSize:       uint32(p.cfg.MaxTransferSize),
			PacketAlignmentFactor: uint32(p.cfg.AlignmentShift),
		})
	case rndis.Halt:
		p.stats.HostHalts++
		r.reset()
		p.resetLocked()
	case rndis.Query:
		buf, status := r.query(m.OID)
		r.queue(rndis.QueryComplete{RequestID: m.RequestID, Status: status, Buffer: buf})
	case rndis.Set:
		r.queue(rndis.SetComplete{RequestID: m.RequestID, Status: r.set(m.OID, m.Buffer)})
	case rndis.Reset:
		p.stats.HostResets++
		r.responses = nil
		r.filter = 0
		r.queue(rndis.ResetComplete{Status: rndis.StatusSuccess, AddressingReset: 1})
	case rndis.KeepAlive:
		p.stats.HostKeepAlives++
		r.queue(rndis.KeepAliveComplete{RequestID: m.RequestID, Status: rndis.StatusSuccess})
	case rndis.KeepAliveComplete:
		p.stats.KeepAliveCompletes++
	default:
		p.stats.MalformedCommands++
	}
}

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func (r *rndisFunction) query(oid rndis.OID) ([]byte, rndis.Status) {
	p := r.p
	if !r.initialized {
		return nil, rndis.StatusFailure
	}
	s := p.stats
	switch oid {
	case rndis.OIDGenSupportedList:
		var b []byte
		for _, o := range supportedOIDs {
			b = binary.LittleEndian.AppendUint32(b, uint32(o))
		}
		return b, rndis.StatusSuccess
	case rndis.OIDGenHardwareStatus, rndis.OIDGenMediaSupported, rndis.OIDGenMediaInUse:
		return u32(0), rndis.StatusSuccess // ready; 802.3
	case rndis.OIDGenMaximumFrameSize:
		return u32(uint32(p.cfg.MTU)), rndis.StatusSuccess
	case rndis.OIDGenMaximumTotalSize:
		return u32(uint32(p.cfg.MTU + 14 + rndis.PacketHeaderSize)), rndis.StatusSuccess
	case rndis.OIDGenLinkSpeed:
		return u32(uint32(p.cfg.LinkSpeed / 100)), rndis.StatusSuccess
	case rndis.OIDGenVendorID:
		return u32(uint32(p.cfg.VendorID)), rndis.StatusSuccess
	case rndis.OIDGenVendorDescription:
		return append([]byte("rndis-netd simulated phone ("+p.cfg.Name+")"), 0), rndis.StatusSuccess
	case rndis.OIDGenCurrentPacketFilter:
		return u32(r.filter), rndis.StatusSuccess
	case rndis.OIDGenMediaConnectStatus:
		if p.media {
			return u32(rndis.MediaStateConnected), rndis.StatusSuccess
		}
		return u32(rndis.MediaStateDisconnected), rndis.StatusSuccess
	case rndis.OIDGenPhysicalMedium:
		return u32(rndis.PhysicalMediumUnspecified), rndis.StatusSuccess
	case rndis.OIDGenXmitOK:
		return u32(uint32(s.FramesToHost)), rndis.StatusSuccess
	case rndis.OIDGenRcvOK:
		return u32(uint32(s.FramesFromHost)), rndis.StatusSuccess
	case rndis.OIDGenXmitError, rndis.OIDGenRcvError:
		return u32(0), rndis.StatusSuccess
	case rndis.OIDGenRcvNoBuffer:
		return u32(uint32(s.DroppedFromHost)), rndis.StatusSuccess
	case rndis.OID8023PermanentAddress, rndis.OID8023CurrentAddress:
		return append([]byte(nil), p.cfg.HostMAC...), rndis.StatusSuccess
	case rndis.OID8023MulticastList:
		return nil, rndis.StatusSuccess
	case rndis.OID8023MaximumListSize:
		return u32(32), rndis.StatusSuccess
	}
	return nil, rndis.StatusNotSupported
}

func (r *rndisFunction) set(oid rndis.OID, buf []byte) rndis.Status {
	p := r.p
	switch oid {
	case rndis.OIDGenCurrentPacketFilter:
		if len(buf) < 4 {
			return rndis.StatusInvalidLength
		}
		r.filter = binary.LittleEndian.Uint32(buf)
		p.stats.PacketFilter = r.filter
		if r.filter != 0 {
			p.advertiseSoon()
		}
		return rndis.StatusSuccess
	case rndis.OID8023MulticastList:
		return rndis.StatusSuccess
	}
	return rndis.StatusNotSupported
}
