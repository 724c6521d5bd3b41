// Command rndis-netd makes a phone in USB-tethering mode an uplink for the
// programs of this host, without root, a TAP device or a kernel driver: it
// speaks RNDIS to the phone through libusb, runs a TCP/IP stack in-process,
// and offers SOCKS5 and HTTP proxies and port forwards on localhost whose
// egress is the phone.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/rndis-netd/rndis-netd/config"
)

// Exit statuses.
const (
	exitFailure = 1
	exitConfig  = 2 // the configuration is invalid; nothing was started
)

func main() {
	if err := rootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "rndis-netd:", err)
		var cerr *config.Error
		if errors.As(err, &cerr) {
			os.Exit(exitConfig)
		}
		os.Exit(exitFailure)
	}
}

func rootCommand() *cobra.Command {
	var configPath string
	root := &cobra.Command{
		Use:   "rndis-netd",
		Short: "Use a USB-tethered phone as this host's uplink, without root",
		Long: "rndis-netd speaks RNDIS to a phone in USB-tethering mode through libusb, runs a TCP/IP stack in-process,\n" +
			"and offers SOCKS5 and HTTP proxies and port forwards whose egress is the phone.",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDaemon(cmd, configPath)
		},
	}
	root.PersistentFlags().StringVarP(&configPath, "config", "c", "", "configuration file (YAML, TOML or JSON)")
	config.AddFlags(root.PersistentFlags())

	run := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon (the default command)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDaemon(cmd, configPath)
		},
	}
	root.AddCommand(run, demoCommand(), listCommand(&configPath), probeCommand(&configPath), statusCommand(&configPath), versionCommand())
	return root
}
