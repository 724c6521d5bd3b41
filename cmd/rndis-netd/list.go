package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rndis-netd/rndis-netd/config"
	"github.com/rndis-netd/rndis-netd/usb"
)

// udevRule is what examples/70-rndis-netd.rules installs: it matches a
// device by the class of a tether's control interface, as udev's
// ID_USB_INTERFACES lists them (":0202ff:").
func udevRule() string {
	var classes []string
	for _, c := range usb.TetherClasses() {
		classes = append(classes, fmt.Sprintf("*:%02x%02x%02x:*", c.Class, c.SubClass, c.Protocol))
	}
	return "# /etc/udev/rules.d/70-rndis-netd.rules: let the plugdev group (and the user at the seat) use USB tethers\n" +
		`SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", ENV{ID_USB_INTERFACES}=="` + strings.Join(classes, "|") +
		`", MODE="0660", GROUP="plugdev", TAG+="uaccess"`
}

// protocols names the functions a device offers, "ncm 02/0d/00, rndis 02/02/ff".
func protocols(fns []usb.Function) string {
	if len(fns) == 0 {
		return "-"
	}
	var names []string
	for _, f := range fns {
		names = append(names, fmt.Sprintf("%s %v", f.Protocol, f.Control))
	}
	return strings.Join(names, ", ")
}

func listCommand(configPath *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the USB tethers on the bus and whether this user may open them",
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(*configPath, cmd.Flags())
			if err != nil {
				return err
			}
			host, err := openHost(cfg.Device)
			if err != nil {
				return err
			}
			defer host.Close()
			found, err := host.List()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "backend: %s\n", host.Backend())
			if len(found) == 0 {
				fmt.Fprintln(out, "no USB tether found (is USB tethering on?)")
				return nil
			}
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PATH\tID\tMANUFACTURER\tPRODUCT\tSERIAL\tPROTOCOLS\tACCESS")
			denied := false
			for _, c := range found {
				access := "ok"
				if c.OpenErr != nil {
					access = c.OpenErr.Error()
					denied = denied || errors.Is(c.OpenErr, usb.ErrPermission)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Path, c.ID(), c.Manufacturer, c.Product, c.Serial, protocols(c.Functions), access)
			}
			w.Flush()
			if denied {
				fmt.Fprintf(out, "\nThis user may not open some devices. Install this udev rule, add yourself to plugdev, and re-plug:\n\n%s\n", udevRule())
			}
			return nil
		},
	}
}
