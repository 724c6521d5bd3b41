package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rndis-netd/rndis-netd/usb/sim"
)

// runCommand runs the binary with args and returns its output and exit
// status.
func runCommand(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary(t), args...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit) && ctx.Err() == nil:
		return string(out), exit.ExitCode()
	}
	t.Fatalf("%v: %v\n%s", args, err, out)
	return "", 0
}

// `rndis-netd status` prints the running daemon's /status for a person,
// --json the document itself, and says in one line when no daemon runs.
func TestStatusCommand(t *testing.T) {
	socks := freePort(t, "tcp")
	d := runBinary(t, "device: {select: sim}\nsocks5: {listen: \""+socks+"\"}\n")
	if got := httpGet(t, socksClient(t, socks, nil), "http://"+sim.PhoneName+"/"); got != sim.HomePage {
		t.Fatalf("through SOCKS5: %q", got)
	}

	out, code := runCommand(t, "status", "--config", d.config)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	for _, want := range []string{"link       up since", "device     05c6:9024 at 1-1", "mtu 1500",
		"limits     9216 bytes and 5 packets per transfer", "lease      192.168.42.", "dns        192.168.42.129",
		"socks5 tcp  " + socks, "drops      none", "faults     none", "backend    sim"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	out, code = runCommand(t, "status", "--json", "--config", d.config)
	var doc statusDoc
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil {
		t.Fatalf("status --json: exit %d, %v\n%s", code, err, out)
	}
	if doc.Link.State != stateUp || len(doc.Listeners) != 1 || doc.Listeners[0].Total != 1 || doc.Counters.RxFrames == 0 {
		t.Errorf("status --json: %+v", doc)
	}

	nobody := freePort(t, "tcp")
	out, code = runCommand(t, "status", "--admin.listen", nobody)
	if code != 1 || strings.Count(out, "\n") != 1 || !strings.Contains(out, nobody) || !strings.Contains(out, "running") {
		t.Errorf("status without a daemon: exit %d, %q; want one line naming %s, exit 1", code, out, nobody)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
