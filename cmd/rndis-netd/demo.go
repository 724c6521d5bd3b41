package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rndis-netd/rndis-netd/config"
	"github.com/rndis-netd/rndis-netd/usb/sim"
)

func demoCommand() *cobra.Command {
	var preset string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the daemon against the built-in simulated phone (no hardware needed)",
		Long: "demo runs the whole daemon against a simulated phone: SOCKS5 on 127.0.0.1:1080, an HTTP proxy on\n" +
			"127.0.0.1:8118, a forward from 127.0.0.1:8080 to the phone's web server, and the admin endpoint on\n" +
			"127.0.0.1:9741. Flags change the addresses.",
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			if !fs.Changed("device.select") {
				fs.Set("device.select", "sim:"+preset)
			}
			if !fs.Changed("http_proxy.listen") {
				fs.Set("http_proxy.listen", "127.0.0.1:8118")
			}
			cfg, err := config.Load("", fs)
			if err != nil {
				return err
			}
			if len(cfg.Forwards) == 0 {
				cfg.Forwards = []config.Forward{{Proto: "tcp", Listen: "127.0.0.1:8080", Connect: "phone.test:80"}}
				if err := cfg.Validate(); err != nil {
					return err
				}
			}
			return startDaemon(cmd, "", cfg, func(d *daemon) {
				out := cmd.OutOrStdout()
				lease, _ := d.net.Lease()
				fmt.Fprintf(out, "\nrndis-netd demo: a simulated phone is tethered; this host has %v on it.\n", lease.Addr)
				fmt.Fprintf(out, "Its web server, through the proxies and the forward:\n\n")
				fmt.Fprintf(out, "  curl --socks5-hostname %s http://phone.test/\n", cfg.SOCKS5.Listen)
				fmt.Fprintf(out, "  curl --proxy http://%s http://phone.test/\n", cfg.HTTPProxy.Listen)
				fmt.Fprintf(out, "  curl http://%s/\n\n", cfg.Forwards[0].Listen)
				fmt.Fprintf(out, "State and metrics: curl http://%s/status  ·  curl http://%s/metrics\n", cfg.Admin.Listen, cfg.Admin.Listen)
				fmt.Fprintf(out, "Make the phone misbehave: curl -X POST http://%s/sim/unplug   (also replug, media-disconnect,\n", cfg.Admin.Listen)
				fmt.Fprintf(out, "media-connect, and halt for an RNDIS phone)\n")
				fmt.Fprintf(out, "Ctrl-C stops the daemon.\n\n")
			})
		},
	}
	cmd.Flags().StringVar(&preset, "preset", "qualcomm", "the simulated phone: "+strings.Join(sim.PresetNames(), ", ")+
		" (pixel speaks CDC-NCM, dongle CDC-ECM, the others RNDIS)")
	return cmd
}
