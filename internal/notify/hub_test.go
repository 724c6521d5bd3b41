package notify

import (
	"slices"
	"testing"
)

func TestSubscribersGetLaterEventsInOrder(t *testing.T) {
	h := New[int]()
	h.Publish(0) // before anyone subscribed: nobody gets it
	var a, b []int
	h.Subscribe(func(v int) { a = append(a, v) })
	for i := 1; i <= 100; i++ {
		h.Publish(i)
	}
	got := make(chan struct{})
	cancel := h.Subscribe(func(v int) { b = append(b, v); close(got) })
	h.Publish(101)
	<-got
	cancel()
	h.Publish(102)
	h.Close()
	if len(a) != 102 || !slices.IsSorted(a) || a[0] != 1 {
		t.Errorf("first subscriber got %d events, from %d", len(a), a[0])
	}
	if !slices.Equal(b, []int{101}) {
		t.Errorf("second subscriber got %v, want [101]", b)
	}
}
