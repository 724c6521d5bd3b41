package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rndis-netd/rndis-netd/config"
)

func statusCommand(configPath *string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running daemon's state: link, device, addresses, listeners, counters",
		Long: "status asks the running daemon for its /status, on the admin endpoint the configuration names\n" +
			"(admin.listen), and prints it for a person; --json prints the document as the daemon sends it.",
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(*configPath, cmd.Flags())
			if err != nil {
				return err
			}
			raw, err := fetchStatus(cfg.Admin.Listen)
			if err != nil {
				return err
			}
			if asJSON {
				_, err := cmd.OutOrStdout().Write(raw)
				return err
			}
			var doc statusDoc
			if err := json.Unmarshal(raw, &doc); err != nil {
				return fmt.Errorf("the daemon on %s sent a /status this version cannot read: %w", cfg.Admin.Listen, err)
			}
			return printStatus(cmd.OutOrStdout(), doc, time.Now())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the /status document as JSON")
	return cmd
}

// fetchStatus gets /status from the admin endpoint at addr.
func fetchStatus(addr string) ([]byte, error) {
	if addr == "" {
		return nil, errors.New("admin.listen is empty: the daemon serves no status")
	}
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + addr + "/status")
	if err != nil {
		return nil, fmt.Errorf("no daemon answers on %s (admin.listen): is it running? (%v)", addr, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s/status: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s/status: %s", addr, resp.Status)
	}
	return raw, nil
}

// printStatus writes doc as a few aligned lines, the way `tailscale status`
// does; now is the time "ago" is counted from.
func printStatus(w io.Writer, doc statusDoc, now time.Time) error {
	var out bytes.Buffer
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&out, "%-11s"+format+"\n", append([]any{label}, args...)...)
	}
	fmt.Fprintf(&out, "rndis-netd %s, running since %s\n\n", doc.Version, when(doc.Started, now))

	l := doc.Link
	state := fmt.Sprintf("%s since %s", l.State, when(l.Since, now))
	if l.Cause != "" {
		state += ": " + l.Cause
	}
	if l.Error != "" {
		state += ": " + l.Error
	}
	if l.MTU > 0 {
		state += fmt.Sprintf(", mtu %d", l.MTU)
	}
	line("link", "%s", state)
	if dev := doc.Device; dev != nil {
		desc := fmt.Sprintf("%s at %s", dev.ID, dev.Path)
		if name := strings.TrimSpace(dev.Manufacturer + " " + dev.Product); name != "" {
			desc += " (" + name + ")"
		}
		if dev.Serial != "" {
			desc += " serial " + dev.Serial
		}
		line("device", "%s, %s, %s", desc, dev.Protocol, bitRate(dev.LinkSpeedBPS))
		line("", "mac %s (the device's %s), mtu %d", dev.MAC, dev.DeviceMAC, dev.MTU)
		if dev.MaxTransferSize > 0 {
			line("limits", "%d bytes and %d packets per transfer, alignment %d, RNDIS %s",
				dev.MaxTransferSize, dev.MaxPacketsPerTransfer, dev.Alignment, dev.RNDISVersion)
		}
	} else {
		line("device", "none yet")
	}
	if doc.Backend != "" {
		line("backend", "%s", doc.Backend)
	}
	line("addresses", "%s", list(doc.Addresses))
	if ls := doc.Lease; ls != nil {
		lease := ls.Address
		if ls.Router != "" {
			lease += " via " + ls.Router
		}
		if ls.Dynamic {
			lease += fmt.Sprintf(" from %s, expires %s", ls.Server, when(ls.Expires, now))
		} else {
			lease += " (static)"
		}
		if ls.MTU > 0 {
			lease += fmt.Sprintf(", mtu %d", ls.MTU)
		}
		if ls.Stale {
			lease += ", not confirmed since the link went down"
		}
		line("lease", "%s", lease)
	} else {
		line("lease", "none")
	}
	line("dns", "%s", list(doc.DNS))

	out.WriteString("\n")
	tw := tabwriter.NewWriter(&out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "listener\t\t\tactive\ttotal\tfailed\tup\tdown")
	for _, s := range doc.Listeners {
		to := s.Connect
		if to != "" {
			to = "→ " + to
		}
		if s.Auth != "" {
			to = strings.TrimSpace(to + " (" + s.Auth + ")")
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", s.Kind, s.Proto, s.Listen, to, s.Active, s.Total, s.Failed,
			size(s.BytesUp), size(s.BytesDown))
	}
	tw.Flush()

	out.WriteString("\n")
	c := doc.Counters
	line("traffic", "rx %s in %d frames, tx %s in %d frames", size(c.RxBytes), c.RxFrames, size(c.TxBytes), c.TxFrames)
	var dropped []string
	for _, dir := range []string{"rx", "tx"} {
		for cause, n := range c.Drops[dir] {
			if n > 0 {
				dropped = append(dropped, fmt.Sprintf("%s %s %d", dir, cause, n))
			}
		}
	}
	line("drops", "%s", nonZero(dropped))
	var faults []string
	for cause, n := range c.Faults {
		if n > 0 {
			faults = append(faults, fmt.Sprintf("%s %d", cause, n))
		}
	}
	line("faults", "%s", nonZero(faults))
	line("recovery", "%d device halts, %d resets, %d re-initializations, %d link downs", c.Halts, c.Resets, c.Reinits, c.LinkDowns)
	_, err := w.Write(out.Bytes())
	return err
}

func when(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		return fmt.Sprintf("%s (in %v)", t.Local().Format(time.DateTime), -d)
	}
	return fmt.Sprintf("%s (%v ago)", t.Local().Format(time.DateTime), d)
}

func list(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}

func nonZero(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	slices.Sort(items)
	return strings.Join(items, ", ")
}

// size writes a byte count in decimal units.
func size(n uint64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, prefix := float64(n), ""
	for _, p := range []string{"k", "M", "G", "T", "P"} {
		v /= unit
		prefix = p
		if v < unit {
			break
		}
	}
	return fmt.Sprintf("%.1f %sB", v, prefix)
}

func bitRate(bps int64) string {
	if bps <= 0 {
		return "speed unknown"
	}
	return fmt.Sprintf("%g Mbit/s", float64(bps)/1e6)
}
