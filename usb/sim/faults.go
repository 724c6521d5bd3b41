package sim

import (
	"slices"

	"github.com/rndis-netd/rndis-netd/usb"
)

// Fault is one kind of misbehaviour a Hostile device injects.
type Fault string

// RNDIS faults added beside the genuine traffic: the host must count and
// drop each one and keep the link running.
const (
	// Control pipe: messages returned by GET_ENCAPSULATED_RESPONSE.
	ControlGarbage   Fault = "control garbage"    // random bytes that are no message
	ControlBadLength Fault = "control bad length" // a completion whose MessageLength lies
	ControlBadOffset Fault = "control bad offset" // a QUERY_CMPLT whose buffer points past the message
	ControlBadType   Fault = "control bad type"   // a message of a type RNDIS does not have
	ControlOrphan    Fault = "control orphan"     // a completion (any status) whose RequestId matches nothing
	ResetOrphan      Fault = "reset orphan"       // a RESET_CMPLT for a RESET never sent
	IndicationFlood  Fault = "indication flood"   // INDICATE_STATUS after INDICATE_STATUS (no media change)
	// Interrupt pipe, every protocol: RNDIS, a notification that is not
	// RESPONSE_AVAILABLE; NCM and ECM, bytes that ncm.NotificationReader
	// rejects (a short header, a bmRequestType other than 0xA1, a speed
	// change whose wLength is not 8).
	NotifyGarbage Fault = "notify garbage"
	// Bulk IN: transfers returned by ReadBulk. BulkGarbage and BulkEmpty
	// serve NCM too (random bytes that are no NTB, an empty transfer), and
	// BulkOversize, BulkRunt and BulkEmpty ECM (a transfer of more than
	// wMaxSegmentSize and a byte, one shorter than an Ethernet header, an
	// empty one).
	BulkGarbage   Fault = "bulk garbage"    // random bytes that are no PACKET_MSG
	BulkOverlap   Fault = "bulk overlap"    // a frame running into the next message
	BulkOverflow  Fault = "bulk overflow"   // DataOffset + DataLength wrapping around 32 bits
	BulkPastEnd   Fault = "bulk past end"   // a MessageLength beyond the transfer
	BulkWrongType Fault = "bulk wrong type" // a control message on the data pipe
	BulkOversize  Fault = "bulk oversize"   // a well-formed PACKET_MSG with a 9000-byte frame
	BulkRunt      Fault = "bulk runt"       // a well-formed PACKET_MSG with a 6-byte frame
	BulkEmpty     Fault = "bulk empty"      // a zero-length transfer
)

// NCM faults added beside the genuine traffic, each an NTB of the
// negotiated format whose walk ncm.Reader ends with an error, but for two:
// NTBZeroLengthDatagram, which the spec makes the null entry that ends the
// NDP, so the Reader yields no datagram and no error (the host must count
// an NTB that carries nothing), and NTBTooLong, a well-formed NTB that the
// host must refuse by its length.
const (
	NTBBadNTHSignature    Fault = "ntb bad nth signature"    // random, or the other format's
	NTBBadHeaderLength    Fault = "ntb bad header length"    // wHeaderLength other than the NTH's size
	NTBBadBlockLength     Fault = "ntb bad block length"     // wBlockLength past the transfer, inside the NTH, or cutting off the NDP
	NTBBadNDPSignature    Fault = "ntb bad ndp signature"    // random, or the other format's
	NTBBadNDPLength       Fault = "ntb bad ndp length"       // the NDP's wLength too short for an entry and the null one, or past the block
	NTBNDPOutside         Fault = "ntb ndp outside"          // wNdpIndex 0 or past the block
	NTBNDPOverlap         Fault = "ntb ndp overlap"          // wNdpIndex into the NTH
	NTBNDPLoop            Fault = "ntb ndp loop"             // wNextNdpIndex back to the NDP itself, or to the one before
	NTBDatagramOutside    Fault = "ntb datagram outside"     // a datagram starting or ending past the block
	NTBDatagramOverlap    Fault = "ntb datagram overlap"     // a datagram in the NTH, or running into the NDP
	NTBRuntDatagram       Fault = "ntb runt datagram"        // a datagram of 1 to 13 bytes
	NTBZeroLengthDatagram Fault = "ntb zero-length datagram" // the only entry with wDatagramLength 0: an NTB with no datagram
	NTBTooLong            Fault = "ntb too long"             // a well-formed NTB longer than the negotiated input size and a byte
)

// NCM and ECM interrupt faults.
const (
	// SpeedWithoutData is a CONNECTION_SPEED_CHANGE header whose 8 bytes
	// of data never come: the next transfer is a whole NETWORK_CONNECTION
	// (the last state the device reported), which ncm.NotificationReader
	// takes as such after reporting the broken speed change.
	SpeedWithoutData Fault = "speed without data"
)

// RNDIS faults that replace the genuine replies: the host must take the
// link down and bring it back once the device behaves.
const (
	AbsurdLimits  Fault = "absurd limits"  // every INITIALIZE_CMPLT: MaxTransferSize 0, 4 GiB, alignment 2^31, 0 packets in turn
	ErrorStatus   Fault = "error status"   // a genuine completion with an error status instead
	DropResponses Fault = "drop responses" // genuine responses lost
)

// NCM and ECM faults that replace genuine replies, each of which a host
// cannot start past: it must fail the start and succeed once the device
// behaves.
const (
	// RefuseInputSize: GET_NTB_PARAMETERS offers 64 KiB blocks to the
	// host, and SET_NTB_INPUT_SIZE stalls, so the blocks stay larger than
	// a host reading 16 KiB can take.
	RefuseInputSize Fault = "refuse input size"
	// RefuseDataSetting: SET_INTERFACE to the data interface's setting
	// with the bulk pair stalls.
	RefuseDataSetting Fault = "refuse data setting"
	// NTBParametersGarbage: GET_NTB_PARAMETERS answers bytes that
	// ncm.ParseNTBParameters rejects (too few, or sizes that carry no
	// frame).
	NTBParametersGarbage Fault = "ntb parameters garbage"
	// MACGarbage: the iMACAddress string is not 12 hex digits.
	MACGarbage Fault = "mac garbage"
)

var (
	rndisAdditive = []Fault{ControlGarbage, ControlBadLength, ControlBadOffset, ControlBadType, ControlOrphan,
		ResetOrphan, IndicationFlood, NotifyGarbage, BulkGarbage, BulkOverlap, BulkOverflow, BulkPastEnd,
		BulkWrongType, BulkOversize, BulkRunt, BulkEmpty}
	ncmAdditive = []Fault{NotifyGarbage, SpeedWithoutData, BulkGarbage, BulkEmpty,
		NTBBadNTHSignature, NTBBadHeaderLength, NTBBadBlockLength, NTBBadNDPSignature, NTBBadNDPLength,
		NTBNDPOutside, NTBNDPOverlap, NTBNDPLoop, NTBDatagramOutside, NTBDatagramOverlap, NTBRuntDatagram,
		NTBZeroLengthDatagram, NTBTooLong}
	ecmAdditive = []Fault{NotifyGarbage, SpeedWithoutData, BulkOversize, BulkRunt, BulkEmpty}

	rndisDestructive = []Fault{AbsurdLimits, ErrorStatus, DropResponses}
	ncmDestructive   = []Fault{RefuseInputSize, RefuseDataSetting, NTBParametersGarbage, MACGarbage}
	ecmDestructive   = []Fault{RefuseDataSetting, MACGarbage}
)

// AdditiveFaults are all the RNDIS faults the link must survive while it
// carries traffic; AdditiveFaultsFor has those of every protocol.
var AdditiveFaults = slices.Clone(rndisAdditive)

// DestructiveFaults are the RNDIS faults that replace genuine replies;
// DestructiveFaultsFor has those of every protocol.
var DestructiveFaults = slices.Clone(rndisDestructive)

// AdditiveFaultsFor returns the faults a Hostile device injects beside the
// genuine traffic of a function of protocol p; nil for a protocol it does
// not know.
func AdditiveFaultsFor(p usb.Protocol) []Fault {
	additive, _ := faultsOf(p)
	return slices.Clone(additive)
}

// DestructiveFaultsFor returns the faults that replace genuine replies of a
// function of protocol p.
func DestructiveFaultsFor(p usb.Protocol) []Fault {
	_, destructive := faultsOf(p)
	return slices.Clone(destructive)
}

// faultsOf returns the lists of protocol p, which callers must not change.
func faultsOf(p usb.Protocol) (additive, destructive []Fault) {
	switch p {
	case usb.ProtocolRNDIS:
		return rndisAdditive, rndisDestructive
	case usb.ProtocolNCM:
		return ncmAdditive, ncmDestructive
	case usb.ProtocolECM:
		return ecmAdditive, ecmDestructive
	}
	return nil, nil
}

// appliesTo reports whether f is a fault of protocol p.
func appliesTo(f Fault, p usb.Protocol) bool {
	additive, destructive := faultsOf(p)
	return slices.Contains(additive, f) || slices.Contains(destructive, f)
}

// pipe is where a fault is injected.
type pipe int

const (
	pipeControl pipe = iota // RNDIS control messages
	pipeNotify
	pipeBulk
	pipeReplace // genuine replies replaced
)

func pipeOf(f Fault) pipe {
	switch f {
	case NotifyGarbage, SpeedWithoutData:
		return pipeNotify
	case BulkGarbage, BulkOverlap, BulkOverflow, BulkPastEnd, BulkWrongType, BulkOversize, BulkRunt, BulkEmpty,
		NTBBadNTHSignature, NTBBadHeaderLength, NTBBadBlockLength, NTBBadNDPSignature, NTBBadNDPLength,
		NTBNDPOutside, NTBNDPOverlap, NTBNDPLoop, NTBDatagramOutside, NTBDatagramOverlap, NTBRuntDatagram,
		NTBZeroLengthDatagram, NTBTooLong:
		return pipeBulk
	case AbsurdLimits, ErrorStatus, DropResponses, RefuseInputSize, RefuseDataSetting, NTBParametersGarbage, MACGarbage:
		return pipeReplace
	}
	return pipeControl
}
