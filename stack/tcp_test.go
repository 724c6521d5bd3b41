package stack

import (
	"strings"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	tcpipstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// tcpSettings reads back what the netstack's TCP was given.
func tcpSettings(t *testing.T, s *tcpipstack.Stack) (sack tcpip.TCPSACKEnabled, rec tcpip.TCPRecovery, cc tcpip.CongestionControlOption, rx tcpip.TCPReceiveBufferSizeRangeOption, tx tcpip.TCPSendBufferSizeRangeOption) {
	t.Helper()
	for _, o := range []tcpip.GettableTransportProtocolOption{&sack, &rec, &cc, &rx, &tx} {
		if err := s.TransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
			t.Fatalf("reading %T: %s", o, err)
		}
	}
	return
}

func newTunedNetstack(t *testing.T, opts TCP) *tcpipstack.Stack {
	t.Helper()
	if err := opts.defaults(); err != nil {
		t.Fatal(err)
	}
	s, err := newNetstack(nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// The zero TCP is SACK, no RACK, Reno, receive buffers up to 8 MiB and
// send buffers up to 6 MiB, each starting at 1 MiB.
func TestTCPDefaults(t *testing.T) {
	sack, rec, cc, rx, tx := tcpSettings(t, newTunedNetstack(t, TCP{}))
	if !bool(sack) || rec != 0 || cc != "reno" {
		t.Errorf("SACK %v, recovery %v, congestion control %q; want SACK, no RACK, reno", sack, rec, cc)
	}
	if rx != (tcpip.TCPReceiveBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 8 << 20}) ||
		tx != (tcpip.TCPSendBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 6 << 20}) {
		t.Errorf("receive buffers %+v, send buffers %+v", rx, tx)
	}
}

func TestTCPSettingsAreApplied(t *testing.T) {
	_, rec, cc, rx, tx := tcpSettings(t, newTunedNetstack(t, TCP{
		Recovery: RecoveryRACK, CongestionControl: "cubic", ReceiveBufferMax: 512 << 10, SendBufferMax: 16 << 20,
	}))
	if rec != tcpip.TCPRACKLossDetection || cc != "cubic" {
		t.Errorf("recovery %v, congestion control %q; want RACK, cubic", rec, cc)
	}
	// A cap below the 1 MiB start starts there.
	if rx.Max != 512<<10 || rx.Default != 512<<10 || tx.Max != 16<<20 || tx.Default != 1<<20 {
		t.Errorf("receive buffers %+v, send buffers %+v", rx, tx)
	}
}

func TestTCPSettingsOutOfRangeAreRefused(t *testing.T) {
	for _, c := range []struct {
		opts TCP
		want string
	}{
		{TCP{Recovery: "tlp"}, `TCP.Recovery "tlp"`},
		{TCP{CongestionControl: "bbr"}, `TCP.CongestionControl "bbr"`},
		{TCP{ReceiveBufferMax: 1024}, "TCP.ReceiveBufferMax 1024"},
		{TCP{SendBufferMax: TCPBufferMaxLimit + 1}, "TCP.SendBufferMax"},
		{TCP{ReceiveBufferMax: -1}, "TCP.ReceiveBufferMax -1"},
	} {
		err := c.opts.defaults()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v; want one naming %s", c.opts, err, c.want)
		}
	}
}
