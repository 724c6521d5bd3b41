package link

import (
	"bytes"
	"context"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/rndis-netd/rndis-netd/usb"
	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// frames returns n 60-byte frames for WritePackets.
func frames(n int) stack.PacketBufferList {
	var pkts stack.PacketBufferList
	for range n {
		pkts.PushBack(stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(make([]byte, 60))}))
	}
	return pkts
}

// WritePackets never blocks, not even when bulk OUT is stuck: gVisor calls
// it from inside DeliverNetworkPacket (ARP, NDP and ICMP replies), so a
// blocked write would stop bulk IN. Frames the full queue cannot take are
// dropped and counted, and bulk IN goes on meanwhile.
func TestReceivePathNeverWaitsForTransmit(t *testing.T) {
	stuck := make(chan struct{})
	ic := &interceptor{}
	opts := fastOptions()
	opts.TxQueue = 8
	tb := newTestbedVia(t, sim.LinuxGadget(), opts, func(p *sim.Phone) usb.Opener { ic.phone = p; return ic })
	ic.mu.Lock()
	ic.writeBulk = func(ctx context.Context, _ []byte, _ func(context.Context, []byte) error) error {
		select { // a device that takes nothing on bulk OUT
		case <-stuck:
		case <-ctx.Done():
		}
		return ctx.Err()
	}
	ic.mu.Unlock()
	defer close(stuck)

	before := tb.link.Stats()
	pkts := frames(opts.TxQueue + 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tb.link.ep.WritePackets(pkts)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("WritePackets blocked on a full transmit queue")
	}
	pkts.DecRef()
	// The transmit goroutine holds at most one frame in the stuck transfer.
	if got := tb.link.Stats().TxQueueFull - before.TxQueueFull; got < 9 || got > 10 {
		t.Errorf("%d frames counted as dropped on a full queue, want 9 or 10", got)
	}

	// The phone pings the host: each echo request reaches the host's stack,
	// whose reply is written from inside the receive path into the full
	// queue, and bulk IN goes on.
	rxBefore := tb.link.Stats().RxFrames
	ping(t, tb, 20)
	for deadline := time.Now().Add(10 * time.Second); tb.link.Stats().RxFrames-rxBefore < 20; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("bulk IN delivered %d frames while bulk OUT was stuck, want the 20 echo requests\n%s",
				tb.link.Stats().RxFrames-rxBefore, tb.state())
		}
	}
}

// ping sends n ICMP echo requests from the phone to the host, without
// waiting for replies.
func ping(t *testing.T, tb *testbed, n int) {
	t.Helper()
	var wq waiter.Queue
	ep, err := tb.phone.Stack().NewEndpoint(icmp.ProtocolNumber4, ipv4.ProtocolNumber, &wq)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	// The phone learns the host's MAC from the host's traffic: give it the
	// address directly so that no ARP exchange is needed with bulk OUT stuck.
	tb.phone.Stack().AddStaticNeighbor(1, ipv4.ProtocolNumber, hostAddr, tcpip.LinkAddress(tb.link.MAC()))
	to := tcpip.FullAddress{Addr: hostAddr}
	for i := range n {
		req := []byte{8, 0, 0, 0, 0, 1, 0, byte(i), 'p', 'i', 'n', 'g'}
		if _, err := ep.Write(bytes.NewReader(req), tcpip.WriteOptions{To: &to}); err != nil {
			t.Fatalf("echo request %d: %s", i, err)
		}
	}
}
