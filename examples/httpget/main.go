// Command httpget fetches a URL through a USB tether and prints the body.
//
//	go run ./examples/httpget -sim                  # against the simulated phone
//	go run ./examples/httpget https://example.com/  # through the phone on USB
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/rndis-netd/rndis-netd/stack"
	"github.com/rndis-netd/rndis-netd/usb"
	"github.com/rndis-netd/rndis-netd/usb/sim"
)

func main() {
	useSim := flag.Bool("sim", false, "use the built-in simulated phone instead of a USB device")
	flag.Parse()
	url := flag.Arg(0)
	if url == "" {
		url = "http://" + sim.PhoneName + "/"
	}

	var device usb.Opener
	if *useSim {
		phone, err := sim.New(sim.Qualcomm())
		if err != nil {
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

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tether, err := stack.Open(ctx, stack.Options{Device: device})
	if err != nil {
		log.Fatal(err)
	}
	defer tether.Close()

	resp, err := tether.HTTPClient().Get(url)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Fprintln(os.Stderr, resp.Status)
	io.Copy(os.Stdout, resp.Body)
}
