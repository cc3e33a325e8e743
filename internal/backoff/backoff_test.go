package backoff

import (
	"context"
	"testing"
	"time"
)

func TestScheduleDoublesWithJitterUpToTheCap(t *testing.T) {
	t.Parallel()
	b := New(time.Second, 8*time.Second)
	for _, step := range []time.Duration{1, 2, 4, 8, 8, 8} {
		want := step * time.Second
		d := b.Next()
		if d < want*8/10 || d > want*12/10 {
			t.Fatalf("delay %v, want %v ±20%%", d, want)
		}
	}
	b.Reset()
	if b.Peek() != time.Second {
		t.Errorf("after Reset the step is %v, want 1s", b.Peek())
	}
	b.Max()
	if b.Peek() != 8*time.Second {
		t.Errorf("after Max the step is %v, want 8s", b.Peek())
	}
}

func TestSleepStopsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep waited an hour with a cancelled context")
	}
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep reported an interruption that did not happen")
	}
}
