// Package config reads rndis-netd's configuration — a YAML, TOML or JSON
// file, RNDIS_NETD_* environment variables and flags, in viper's order of
// precedence — into typed structs, and validates it as a whole: every
// problem is reported with the key it is about.
package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rndis-netd/rndis-netd/stack"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Config is the daemon's whole configuration.
type Config struct {
	Log            Log       `mapstructure:"log"`
	Device         Device    `mapstructure:"device"`
	Network        Network   `mapstructure:"network"`
	SOCKS5         SOCKS5    `mapstructure:"socks5"`
	HTTPProxy      HTTPProxy `mapstructure:"http_proxy"`
	Forwards       []Forward `mapstructure:"forwards"`
	Exposes        []Forward `mapstructure:"exposes"`
	Admin          Admin     `mapstructure:"admin"`
	Capture        Capture   `mapstructure:"capture"`
	AllowOpenProxy bool      `mapstructure:"allow_open_proxy"`
}

// Log selects the log level and format (log/slog).
type Log struct {
	Level  string `mapstructure:"level"`  // debug | info | warn | error
	Format string `mapstructure:"format"` // text | json
}

// Device selects the tether.
type Device struct {
	// Select is auto, "VID:PID", "serial=XYZ", "path=1-2.3", or sim (the
	// built-in simulated phone; "sim:qualcomm" or "sim:linux-gadget" picks
	// its preset, and ":unplugged" starts it unplugged).
	Select string `mapstructure:"select"`
	// Protocol is the function to use on a device that offers several:
	// auto (CDC-NCM, then RNDIS, then CDC-ECM), ncm, rndis or ecm.
	Protocol string `mapstructure:"protocol"`
	// Backend is how real devices are reached: auto (usbfs on Linux,
	// libusb elsewhere), usbfs (Linux's /dev/bus/usb, no cgo) or libusb
	// (needs a cgo build).
	Backend string `mapstructure:"backend"`
	// Wait makes the daemon start without its device and wait for it; with
	// false a missing device ends it (exit status 1).
	Wait bool `mapstructure:"wait"`
}

// Network configures the addresses on the tether.
type Network struct {
	IPv4    string   `mapstructure:"ipv4"`    // dhcp | CIDR
	IPv6    string   `mapstructure:"ipv6"`    // slaac | off
	Gateway string   `mapstructure:"gateway"` // with a static ipv4
	DNS     []string `mapstructure:"dns"`
	MTU     int      `mapstructure:"mtu"` // 0: the device's
	TCP     TCP      `mapstructure:"tcp"`
}

// TCP tunes the netstack's TCP (stack.TCP): loss recovery off | rack,
// congestion control reno | cubic, buffer caps in bytes (0: the defaults).
type TCP struct {
	Recovery          string `mapstructure:"recovery"`
	CongestionControl string `mapstructure:"congestion_control"`
	ReceiveBufferMax  int    `mapstructure:"receive_buffer_max"`
	SendBufferMax     int    `mapstructure:"send_buffer_max"`
}

// SOCKS5 is the SOCKS5 proxy; an empty Listen turns it off.
type SOCKS5 struct {
	Listen   string `mapstructure:"listen"`
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password"`
	Limits   `mapstructure:",squash"`
}

// HTTPProxy is the HTTP proxy (CONNECT and absolute-URI forwarding).
type HTTPProxy struct {
	Listen string `mapstructure:"listen"`
	Limits `mapstructure:",squash"`
}

// Limits bound what clients can make a proxy hold.
type Limits struct {
	MaxConnections   int           `mapstructure:"max_connections"`   // served at once; more wait
	HandshakeTimeout time.Duration `mapstructure:"handshake_timeout"` // to send the request
	ConnectTimeout   time.Duration `mapstructure:"connect_timeout"`   // to reach the destination
}

// Forward is a port forward: in forwards, Listen is on this host and
// Connect through the tether; in exposes, Listen is on the tether and
// Connect on this host.
type Forward struct {
	Proto          string `mapstructure:"proto"` // tcp | udp
	Listen         string `mapstructure:"listen"`
	Connect        string `mapstructure:"connect"`
	MaxConnections int    `mapstructure:"max_connections"` // TCP connections or UDP flows at once; 0: 1024
}

// Admin is the HTTP endpoint with /metrics, /healthz and /status.
type Admin struct {
	Listen string `mapstructure:"listen"`
}

// Capture writes the link's frames to a pcap file.
type Capture struct {
	Pcap string `mapstructure:"pcap"`
}

// EnvPrefix is the prefix of the environment variables: log.level is
// RNDIS_NETD_LOG_LEVEL.
const EnvPrefix = "RNDIS_NETD"

// defaults are every scalar key with its default; viper needs to know a key
// to read it from the environment.
var defaults = map[string]any{
	"log.level":                      "info",
	"log.format":                     "text",
	"device.select":                  "auto",
	"device.protocol":                "auto",
	"device.backend":                 "auto",
	"device.wait":                    true,
	"network.ipv4":                   "dhcp",
	"network.ipv6":                   "slaac",
	"network.gateway":                "",
	"network.dns":                    []string{},
	"network.mtu":                    0,
	"network.tcp.recovery":           string(stack.RecoveryOff),
	"network.tcp.congestion_control": stack.CongestionReno,
	"network.tcp.receive_buffer_max": 0,
	"network.tcp.send_buffer_max":    0,
	"socks5.listen":                  "127.0.0.1:1080",
	"socks5.username":                "",
	"socks5.password":                "",
	"socks5.max_connections":         1024,
	"socks5.handshake_timeout":       "10s",
	"socks5.connect_timeout":         "30s",
	"http_proxy.listen":              "",
	"http_proxy.max_connections":     1024,
	"http_proxy.handshake_timeout":   "10s",
	"http_proxy.connect_timeout":     "30s",
	"admin.listen":                   "127.0.0.1:9741",
	"capture.pcap":                   "",
	"allow_open_proxy":               false,
}

// FlagKeys are the keys that have a command-line flag of the same name
// with dashes ("--log.level").
var FlagKeys = []string{"log.level", "log.format", "device.select", "device.backend", "network.ipv4", "socks5.listen", "http_proxy.listen", "admin.listen", "capture.pcap"}

// AddFlags defines the flags of FlagKeys on fs.
func AddFlags(fs *pflag.FlagSet) {
	for _, k := range FlagKeys {
		fs.String(k, fmt.Sprint(defaults[k]), "config key "+k)
	}
}

// Load reads the file at path ("" for none), the environment and the flags
// set on fs (nil for none), and validates the result.
func Load(path string, fs *pflag.FlagSet) (*Config, error) {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if fs != nil {
		for _, k := range FlagKeys {
			if f := fs.Lookup(k); f != nil && f.Changed {
				v.Set(k, f.Value.String())
			}
		}
	}
	if path != "" {
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return nil, &Error{Problems: []Problem{{Key: "(file)", Reason: fmt.Sprintf("%s: %v", path, unwrapViper(err))}}}
		}
	}
	var c Config
	if err := v.UnmarshalExact(&c); err != nil {
		return nil, &Error{Problems: []Problem{{Key: "(keys)", Reason: cleanDecodeError(err)}}}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func unwrapViper(err error) error {
	var perr viper.ConfigParseError
	if errors.As(err, &perr) {
		return perr
	}
	return err
}

// cleanDecodeError turns mapstructure's report into one line per problem.
func cleanDecodeError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "decoding failed due to the following error(s):")
	var parts []string
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimSpace(line)
		line = strings.TrimPrefix(line, "* ")
		if line != "" {
			parts = append(parts, strings.ReplaceAll(line, "'' has invalid keys", "unknown keys"))
		}
	}
	return strings.Join(parts, "; ")
}

// Problem is one thing wrong with a configuration.
type Problem struct {
	Key    string
	Reason string
}

// Error lists everything wrong with a configuration.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = fmt.Sprintf("%s: %s", p.Key, p.Reason)
	}
	return "invalid configuration:\n  " + strings.Join(lines, "\n  ")
}
