package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rndis-netd/rndis-netd/link"
)

// metrics is the daemon as a Prometheus collector: every scrape reads the
// link's counters, the link events, the listeners and gVisor's TCP stats.
type metrics daemon

var _ prometheus.Collector = (*metrics)(nil)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("rndis_netd_"+name, help, labels, nil)
}

var (
	mLinkUp          = desc("link_up", "1 when the link carries packets.")
	mDeviceInfo      = desc("device_info", "1 for the device the link last started: its USB ID and the protocol spoken.", "id", "protocol")
	mLinkEvents      = desc("link_events_total", "Link state changes by new state and cause.", "state", "cause")
	mBytes           = desc("bytes_total", "Ethernet bytes through the link.", "direction")
	mFrames          = desc("frames_total", "Ethernet frames through the link.", "direction")
	mTransfers       = desc("transfers_total", "Bulk USB transfers.", "direction")
	mDrops           = desc("drops_total", "Frames or transfers dropped, by direction and cause.", "direction", "cause")
	mPacketsPerXfer  = desc("packets_per_transfer", "Frames per bulk transfer.", "direction")
	mControlRequests = desc("control_requests_total", "Control requests to the device completed (RNDIS messages, CDC class requests).")
	mControlRTT      = desc("control_rtt_seconds_total", "Sum of the control requests' round-trip times.")
	mFaults          = desc("device_faults_total", "Misbehaviour of the device caught by the host, by cause.", "cause")
	mHalts           = desc("device_halts_total", "REMOTE_NDIS_HALT_MSGs sent by the device.")
	mResets          = desc("resets_total", "RESETs sent to the device.")
	mReinits         = desc("reinits_total", "Re-initializations of the device.")
	mIndications     = desc("indications_total", "INDICATE_STATUS messages from the device.")
	mKeepAlives      = desc("device_keepalives_total", "KEEPALIVEs sent by the device (and answered).")
	mConnsTotal      = desc("proxy_connections_total", "Connections (UDP: flows) accepted by a listener.", "kind", "listen")
	mConnsActive     = desc("proxy_connections_active", "Open connections (UDP: flows) of a listener.", "kind", "listen")
	mConnsFailed     = desc("proxy_connections_failed_total", "Connections whose destination could not be reached.", "kind", "listen")
	mProxyBytes      = desc("proxy_bytes_total", "Bytes relayed by a listener; up is toward the destination.", "kind", "listen", "direction")
	mTCP             = desc("tcp_stat", "gVisor netstack TCP counters.", "stat")
	mTCPEstablished  = desc("tcp_established", "TCP connections in ESTABLISHED or CLOSE-WAIT in the netstack.")
)

func (m *metrics) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(m, ch) }

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	d := (*daemon)(m)
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	l := d.net.Link()
	up := 0.0
	if l.Up() {
		up = 1
	}
	gauge(mLinkUp, up)
	if info := l.Info(); info.Protocol != "" {
		gauge(mDeviceInfo, 1, info.USB.ID(), string(info.Protocol))
	}
	d.mu.Lock()
	for k, v := range d.linkEvents {
		counter(mLinkEvents, v, k.state, k.cause)
	}
	for _, r := range d.services {
		st := r.svc.Stats()
		counter(mConnsTotal, st.Total.Load(), r.spec.kind, r.spec.listen)
		gauge(mConnsActive, float64(st.Active.Load()), r.spec.kind, r.spec.listen)
		counter(mConnsFailed, st.Failed.Load(), r.spec.kind, r.spec.listen)
		counter(mProxyBytes, st.BytesUp.Load(), r.spec.kind, r.spec.listen, "up")
		counter(mProxyBytes, st.BytesDown.Load(), r.spec.kind, r.spec.listen, "down")
	}
	d.mu.Unlock()

	s := l.Stats()
	counter(mBytes, s.RxBytes, "rx")
	counter(mBytes, s.TxBytes, "tx")
	counter(mFrames, s.RxFrames, "rx")
	counter(mFrames, s.TxFrames, "tx")
	counter(mTransfers, s.RxTransfers, "rx")
	counter(mTransfers, s.TxTransfers, "tx")
	for _, dr := range drops(s) {
		counter(mDrops, dr.n, dr.direction, dr.cause)
	}
	histogram(ch, mPacketsPerXfer, s.TxBatches, s.TxFrames, "tx")
	histogram(ch, mPacketsPerXfer, s.RxBatches, s.RxFrames, "rx")
	counter(mControlRequests, s.ControlRequests)
	ch <- prometheus.MustNewConstMetric(mControlRTT, prometheus.CounterValue, float64(s.ControlRTTNanos)/1e9)
	for cause, n := range s.Faults() {
		counter(mFaults, n, cause)
	}
	counter(mHalts, s.Halts)
	counter(mResets, s.Resets)
	counter(mReinits, s.Reinits)
	counter(mIndications, s.Indications)
	counter(mKeepAlives, s.DeviceKeepAlives)

	tcp := d.net.Stack().Stats().TCP
	for name, c := range map[string]interface{ Value() uint64 }{
		"active_connection_openings":  tcp.ActiveConnectionOpenings,
		"passive_connection_openings": tcp.PassiveConnectionOpenings,
		"failed_connection_attempts":  tcp.FailedConnectionAttempts,
		"established_resets":          tcp.EstablishedResets,
		"established_timedout":        tcp.EstablishedTimedout,
		"retransmits":                 tcp.Retransmits,
		"segments_sent":               tcp.SegmentsSent,
		"valid_segments_received":     tcp.ValidSegmentsReceived,
		"timeouts":                    tcp.Timeouts,
	} {
		counter(mTCP, c.Value(), name)
	}
	gauge(mTCPEstablished, float64(tcp.CurrentEstablished.Value()))
}

// drop is a counter of frames or transfers the link dropped.
type drop struct {
	direction, cause string
	n                uint64
}

// drops lists the link's drop counters, as /metrics and /status show them.
func drops(s link.Stats) []drop {
	return []drop{
		{"rx", "malformed", s.RxMalformed},
		{"rx", "link_down", s.RxLinkDown},
		{"rx", "usb_error", s.RxErrors},
		{"tx", "link_down", s.TxLinkDown},
		{"tx", "queue_full", s.TxQueueFull},
		{"tx", "too_large", s.TxTooLarge},
		{"tx", "usb_error", s.TxErrors},
	}
}

// histogram turns the link's frames-per-transfer buckets into a
// Prometheus histogram.
func histogram(ch chan<- prometheus.Metric, desc *prometheus.Desc, buckets [len(link.BatchBuckets) + 1]uint64, sum uint64, dir string) {
	cumulative := map[float64]uint64{}
	var n uint64
	for i, upper := range link.BatchBuckets {
		n += buckets[i]
		cumulative[float64(upper)] = n
	}
	n += buckets[len(link.BatchBuckets)]
	ch <- prometheus.MustNewConstHistogram(desc, n, float64(sum), cumulative, dir)
}
