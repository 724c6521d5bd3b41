package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// senderTimer is what a Linux TCP sender's socket said about its
// retransmission timer, read from a /proc/PID/net/tcp table: a download's
// sender (httpd in the "internet" namespace) is Linux, so after an outage
// the stream can move no sooner than its next retransmission.
type senderTimer struct {
	at       time.Time
	left     time.Duration // until the retransmission timer fires; -1: no timer running
	rto      time.Duration // the current (backed-off) retransmission timeout
	timeouts int           // retransmission timeouts since data was last acknowledged
}

// clockTick is USER_HZ, the unit of /proc/net/tcp's timer fields.
const clockTick = 10 * time.Millisecond

// readSenderTimer reads the first established socket with local port port
// from table (/proc/PID/net/tcp, see proc_net_tcp(5)).
func readSenderTimer(table string, port int) (senderTimer, error) {
	f, err := os.Open(table)
	if err != nil {
		return senderTimer{}, err
	}
	defer f.Close()
	at := time.Now()
	sc := bufio.NewScanner(f)
	sc.Scan() // the heading
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 13 || fields[3] != "01" { // 01: ESTABLISHED
			continue
		}
		_, local, ok := strings.Cut(fields[1], ":")
		if p, err := strconv.ParseUint(local, 16, 16); !ok || err != nil || int(p) != port {
			continue
		}
		return parseSenderTimer(at, fields)
	}
	if err := sc.Err(); err != nil {
		return senderTimer{}, err
	}
	return senderTimer{}, fmt.Errorf("%s: no established socket on port %d", table, port)
}

func parseSenderTimer(at time.Time, fields []string) (senderTimer, error) {
	active, when, ok := strings.Cut(fields[5], ":")
	ticks, err1 := strconv.ParseInt(when, 16, 64)
	timeouts, err2 := strconv.ParseUint(fields[6], 16, 32)
	rto, err3 := strconv.ParseInt(fields[12], 10, 64)
	if !ok || err1 != nil || err2 != nil || err3 != nil {
		return senderTimer{}, fmt.Errorf("unreadable socket line %q", strings.Join(fields, " "))
	}
	t := senderTimer{at: at, left: -1, rto: time.Duration(rto) * clockTick, timeouts: int(timeouts)}
	if active == "01" { // the retransmission timer (02 is keepalive, 04 the zero-window probe)
		t.left = time.Duration(ticks) * clockTick
	}
	return t, nil
}

// leftAfter is how long after t the timer was to fire, or -1.
func (s senderTimer) leftAfter(t time.Time) time.Duration {
	if s.left < 0 {
		return -1
	}
	return s.left + s.at.Sub(t)
}
