package clock

import (
	"testing"
	"time"
)

func TestManualMovesOnlyForward(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	m := NewManual(start)
	if !m.Now().Equal(start) {
		t.Fatalf("Now = %v, want %v", m.Now(), start)
	}
	m.Advance(7 * 24 * time.Hour)
	m.Advance(-time.Hour)
	if got, want := m.Now(), start.Add(7*24*time.Hour); !got.Equal(want) {
		t.Errorf("after advancing a week (and trying to go back): %v, want %v", got, want)
	}
}

func TestOffsetShiftsTheRealClock(t *testing.T) {
	t.Parallel()
	var o Offset
	before := time.Now()
	got := o.Advance(48 * time.Hour)
	if got.Sub(before) < 48*time.Hour {
		t.Errorf("offset clock at %v, less than two days after %v", got, before)
	}
	if o.Now().Before(got) {
		t.Error("the offset clock went backwards")
	}
}
