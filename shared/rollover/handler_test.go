package rollover_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/rollover"
)

func TestInputPeriod(t *testing.T) {
	clock := time.Date(2026, 12, 1, 0, 0, 3, 0, time.UTC)
	for _, c := range []struct {
		in   rollover.Input
		want string
	}{
		{rollover.Input{}, "2026-12"},
		{rollover.Input{Period: "2027-03"}, "2027-03"},
		{rollover.Input{ScheduledTime: "2026-11-01T00:00:00Z"}, "2026-11"},
		{rollover.Input{Period: "2027-03", ScheduledTime: "2026-11-01T00:00:00Z"}, "2027-03"},
	} {
		p, err := c.in.PeriodOf(clock)
		if err != nil || p.String() != c.want {
			t.Errorf("%+v: %v, %v; want %s", c.in, p, err, c.want)
		}
	}
	for _, bad := range []rollover.Input{{Period: "2026-13"}, {Period: "december"}, {ScheduledTime: "yesterday"}} {
		if _, err := bad.PeriodOf(clock); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestHandlerHandsOverNearTheDeadline(t *testing.T) {
	e := newEnv(t)
	orgs := e.open("org", 10, plan, credits.Balance{})
	var handed []rollover.Input
	h := &rollover.Handler{
		Runner: e.runner(),
		Now:    func() time.Time { return now },
		// A margin longer than the time left: the run stops before the
		// first organization, as one would near Lambda's limit.
		Margin:   time.Hour,
		Continue: func(_ context.Context, in rollover.Input) error { handed = append(handed, in); return nil },
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := h.Handle(ctx, rollover.Input{ScheduledTime: "2026-12-01T00:00:00Z"})
	if err != nil || rep.Done || len(handed) != 1 || handed[0] != (rollover.Input{Period: "2026-12", Round: 1}) {
		t.Fatalf("first invocation: %+v, %v, handed over %+v", rep, err, handed)
	}
	// The next invocation, with time enough, finishes.
	rep, err = h.Handle(context.Background(), handed[0])
	if err != nil || !rep.Done || rep.Granted != 10 || len(handed) != 1 {
		t.Fatalf("second invocation: %+v, %v, handed over %+v", rep, err, handed)
	}
	for _, org := range orgs {
		e.grantedOnce(org, 1000, 1000)
	}

	// Without a way to continue, or past the last round, an unfinished
	// period is an error, so that Lambda retries and then dead-letters it.
	h.Continue = nil
	if _, err := h.Handle(ctx, rollover.Input{Period: "2027-01"}); !errors.Is(err, rollover.ErrIncomplete) {
		t.Fatalf("no continuation: %v", err)
	}
	h.Continue, h.MaxRounds = func(context.Context, rollover.Input) error { t.Fatal("continued"); return nil }, 3
	if _, err := h.Handle(ctx, rollover.Input{Period: "2027-01", Round: 2}); !errors.Is(err, rollover.ErrIncomplete) {
		t.Fatalf("last round: %v", err)
	}
	if _, err := h.Handle(ctx, rollover.Input{Period: "2027-13"}); !errors.Is(err, credits.ErrInvalidPeriod) {
		t.Fatalf("bad period: %v", err)
	}
}
