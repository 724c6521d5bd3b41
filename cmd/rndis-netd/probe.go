package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rndis-netd/rndis-netd/config"
	"github.com/rndis-netd/rndis-netd/link"
)

func probeCommand(configPath *string) *cobra.Command {
	return &cobra.Command{
		Use:   "probe",
		Short: "Initialize the device, print what it reports, and halt it",
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(*configPath, cmd.Flags())
			if err != nil {
				return err
			}
			dev, err := openDevice(cfg.Device)
			if err != nil {
				return err
			}
			defer dev.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			l, err := link.Open(ctx, dev.opener, link.Options{})
			if err != nil {
				return err
			}
			defer l.Close() // RNDIS HALT; NCM, ECM: the data interface back to setting 0
			i := l.Info()
			out := cmd.OutOrStdout()
			media := "connected"
			if !i.MediaConnected {
				media = "disconnected"
			}
			fmt.Fprintf(out, "backend:                  %s\n", dev.backend)
			fmt.Fprintf(out, "device:                   %v\n", i.USB)
			fmt.Fprintf(out, "function:                 %v\n", i.USB.Function)
			if r := i.RNDIS; r != nil {
				fmt.Fprintf(out, "rndis version:            %s\n", r.Version)
				fmt.Fprintf(out, "max transfer size:        %d\n", r.Limits.MaxTransferSize)
				fmt.Fprintf(out, "max packets per transfer: %d\n", r.Limits.MaxPacketsPerTransfer)
				fmt.Fprintf(out, "packet alignment:         %d\n", r.Limits.Alignment)
			}
			if n := i.NCM; n != nil {
				fmt.Fprintf(out, "ntb parameters:           %v\n", n.Parameters)
				fmt.Fprintf(out, "ntb format:               %v\n", n.Format)
				fmt.Fprintf(out, "ntb in max size:          %d\n", n.InputSize)
				fmt.Fprintf(out, "ntb out max size:         %d\n", n.Out.MaxSize)
				fmt.Fprintf(out, "ntb out divisor:          %d (datagrams at %d mod %d)\n", n.Out.Divisor, n.Out.Remainder, n.Out.Divisor)
				fmt.Fprintf(out, "ntb out ndp alignment:    %d\n", n.Out.NDPAlignment)
				fmt.Fprintf(out, "ntb out max datagrams:    %d\n", n.Out.MaxDatagrams)
			}
			fmt.Fprintf(out, "device mac:               %v\n", i.DeviceMAC)
			fmt.Fprintf(out, "host mac:                 %v\n", i.MAC)
			fmt.Fprintf(out, "mtu:                      %d\n", i.MTU)
			fmt.Fprintf(out, "link speed:               %d bit/s\n", i.LinkSpeed)
			fmt.Fprintf(out, "media:                    %s\n", media)
			if r := i.RNDIS; r != nil {
				fmt.Fprintf(out, "supported oids:           %d\n", len(r.SupportedOIDs))
				for _, o := range r.SupportedOIDs {
					fmt.Fprintf(out, "  %#08x %v\n", uint32(o), o)
				}
			}
			return nil
		},
	}
}
