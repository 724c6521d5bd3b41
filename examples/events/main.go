// Command events prints the tether's link and address events: unplug the
// phone, plug it back in, and watch the link go down and come back.
//
//	go run ./examples/events -sim   # the simulated phone is unplugged and re-plugged twice
//	go run ./examples/events        # the phone on USB, until interrupted
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/rndis-netd/rndis-netd/stack"
	"github.com/rndis-netd/rndis-netd/usb"
	"github.com/rndis-netd/rndis-netd/usb/sim"
)

func main() {
	useSim := flag.Bool("sim", false, "use the built-in simulated phone and unplug it twice")
	flag.Parse()

	var device usb.Opener
	var phone *sim.Phone
	if *useSim {
		var err error
		if phone, err = sim.New(sim.Qualcomm()); err != nil {
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
	tether.Subscribe(func(ev stack.Event) {
		fmt.Printf("%s %v\n", ev.Time.Format("15:04:05.000"), ev)
	})
	lease, _ := tether.Lease()
	fmt.Printf("up: %v via %v\n", lease.Addr, tether.Link().Info().USB)

	if phone == nil {
		<-ctx.Done()
		return
	}
	for range 2 {
		time.Sleep(500 * time.Millisecond)
		fmt.Println("-- unplugging the simulated phone")
		phone.Unplug()
		time.Sleep(time.Second)
		fmt.Println("-- plugging it back in")
		phone.Replug()
		time.Sleep(2 * time.Second)
	}
}
