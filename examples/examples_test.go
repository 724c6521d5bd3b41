// Package examples holds small programs that use rndis-netd; this test
// builds each and runs it against the simulated phone.
package examples

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rndis-netd/rndis-netd/usb/sim"
)

func TestExamplesRunAgainstTheSimulatedPhone(t *testing.T) {
	tests := []struct {
		name string
		want []string // in the output, in this order
	}{
		{"httpget", []string{sim.HomePage}},
		{"echoserver", []string{"echo server on 192.168.42.", "phone got back: hello from the phone"}},
		{"events", []string{"up: 192.168.42.", "link down: device gone", "lease-stale", "link up: reinitialized", "lease 192.168.42.",
			"link down: device gone", "link up: reinitialized"}},
	}
	bin := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exe := filepath.Join(bin, tt.name)
			if out, err := exec.Command("go", "build", "-o", exe, "./"+tt.name).CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, out)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, exe, "-sim").CombinedOutput()
			if err != nil {
				t.Fatalf("%s -sim: %v\n%s", tt.name, err, out)
			}
			rest := string(out)
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order):\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}
