// Command echoserver listens on the tether's address and echoes what the
// other side (the phone, or what the phone routes in) sends.
//
//	go run ./examples/echoserver -sim   # the simulated phone connects once, then it exits
//	go run ./examples/echoserver        # serve on the phone on USB until interrupted
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"time"

	"github.com/rndis-netd/rndis-netd/stack"
	"github.com/rndis-netd/rndis-netd/usb"
	"github.com/rndis-netd/rndis-netd/usb/sim"
)

func main() {
	useSim := flag.Bool("sim", false, "use the built-in simulated phone; it connects once and the program exits")
	port := flag.Int("port", 7777, "TCP port to listen on")
	flag.Parse()

	var device usb.Opener
	var phone *sim.Phone
	if *useSim {
		var err error
		if phone, err = sim.New(sim.LinuxGadget()); err != nil {
			log.Fatal(err)
		}
		defer phone.Close()
		device = phone
	} else {
		host, err := usb.NewHost(usb.BackendAuto)
		if err != nil {
			log.Fatal(err)
		}
		defer host.Close()
		device = host.Opener(usb.Selector{})
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	tether, err := stack.Open(ctx, stack.Options{Device: device})
	if err != nil {
		log.Fatal(err)
	}
	defer tether.Close()

	ln, err := tether.Listen("tcp", fmt.Sprintf(":%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	lease, _ := tether.Lease()
	fmt.Printf("echo server on %v port %d\n", lease.Addr.Addr(), *port)
	go serve(ln)

	if phone == nil {
		<-ctx.Done()
		return
	}
	// The simulated phone plays the client.
	c, err := phone.DialTCP(ctx, netip.AddrPortFrom(lease.Addr.Addr(), uint16(*port)))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintln(c, "hello from the phone")
	line := make([]byte, len("hello from the phone\n"))
	if _, err := io.ReadFull(c, line); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("phone got back: %s", line)
}

func serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
		}()
	}
}
