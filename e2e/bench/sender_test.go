package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A table as Linux prints it: a listener, a download in its third
// retransmission timeout (1.6 s backed off, due in 0.2 s), and a socket of
// another port.
const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0200630A:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 0200630A:0050 0207A8C0:D2F4 01 0003F000:00000000 01:00000014 00000003     0        0 1002 2 0000000000000000 160 4 30 1 7
   2: 0200630A:2328 0207A8C0:D2F6 01 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 20 4 30 10 -1
`

func TestReadSenderTimer(t *testing.T) {
	table := filepath.Join(t.TempDir(), "tcp")
	if err := os.WriteFile(table, []byte(procNetTCP), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readSenderTimer(table, 80)
	if err != nil {
		t.Fatal(err)
	}
	if got.left != 200*time.Millisecond || got.rto != 1600*time.Millisecond || got.timeouts != 3 {
		t.Errorf("left %v, rto %v, timeouts %d; want 200ms, 1.6s, 3", got.left, got.rto, got.timeouts)
	}
	if due := got.leftAfter(got.at.Add(-50 * time.Millisecond)); due != 250*time.Millisecond {
		t.Errorf("due %v after a link-up 50 ms before the read; want 250ms", due)
	}
	idle, err := readSenderTimer(table, 9000)
	if err != nil || idle.left != -1 || idle.leftAfter(time.Now()) != -1 {
		t.Errorf("a socket with no timer running: %+v, %v; want left -1", idle, err)
	}
	if _, err := readSenderTimer(table, 443); err == nil {
		t.Error("no socket on port 443, and no error")
	}
}
