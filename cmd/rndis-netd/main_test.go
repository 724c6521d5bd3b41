package main

import (
	"net/http"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them. The
// tests talk to the daemons they start with http.Get, whose keep-alive
// connections are closed before the check.
func TestMain(m *testing.M) { goleak.VerifyTestMain(closingIdle{m}) }

type closingIdle struct{ m *testing.M }

func (c closingIdle) Run() int {
	code := c.m.Run()
	http.DefaultClient.CloseIdleConnections()
	return code
}
