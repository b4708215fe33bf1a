package rollover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/contactlevel/metering/shared/credits"
)

// Input is the event the rollover function receives: what EventBridge
// Scheduler delivers (its Input, nothing else), or what the function sends
// itself to continue a period it could not finish in one invocation.
type Input struct {
	// Period is the month to grant, YYYY-MM. When empty it is the month
	// of ScheduledTime, or of the clock.
	Period string `json:"period,omitempty"`
	// ScheduledTime is the time the schedule was due (the scheduler's
	// <aws.scheduler.scheduled-time>), so that a delivery retried late
	// still grants the month it was meant for.
	ScheduledTime string `json:"scheduled_time,omitempty"`
	// Round counts the invocations of one period so far; a period that
	// needs more than MaxRounds stops with an error instead of looping.
	Round int `json:"round,omitempty"`
}

// PeriodOf is the period in names, from the clock now when it names none.
func (in Input) PeriodOf(now time.Time) (credits.Period, error) {
	switch {
	case in.Period != "":
		return credits.ParsePeriod(in.Period)
	case in.ScheduledTime != "":
		t, err := time.Parse(time.RFC3339, in.ScheduledTime)
		if err != nil {
			return credits.Period{}, fmt.Errorf("scheduled_time %q is not an RFC 3339 time", in.ScheduledTime)
		}
		return credits.PeriodOf(t), nil
	}
	return credits.PeriodOf(now), nil
}

// Handler is the rollover Lambda: it runs the period until done or until
// Margin before the invocation's deadline, and then hands the rest to a new
// invocation through Continue. Nothing needs carrying over but the period:
// organizations already granted have left the index's due range, so the
// next invocation just reads what is still due.
type Handler struct {
	Runner *Runner
	Now    func() time.Time
	// Margin is kept free before the deadline to finish in-flight writes
	// and hand over; 30 s when 0.
	Margin time.Duration
	// Continue starts another invocation with in (an asynchronous Lambda
	// invoke of this function). Nil when there is no function to invoke,
	// e.g. locally: an unfinished run then returns an error.
	Continue func(ctx context.Context, in Input) error
	// MaxRounds bounds the invocations of one period; 50 when 0.
	MaxRounds int
	Log       *slog.Logger
}

// Handle runs one invocation.
func (h *Handler) Handle(ctx context.Context, in Input) (Report, error) {
	now := h.Now
	if now == nil {
		now = time.Now
	}
	log := h.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p, err := in.PeriodOf(now())
	if err != nil {
		// A malformed event will never succeed: say so rather than retry.
		return Report{}, err
	}
	work := ctx
	if deadline, ok := ctx.Deadline(); ok {
		margin := h.Margin
		if margin <= 0 {
			margin = 30 * time.Second
		}
		var cancel context.CancelFunc
		work, cancel = context.WithDeadline(ctx, deadline.Add(-margin))
		defer cancel()
	}
	rep, err := h.Runner.Run(work, p)
	log.Info("rollover", "period", rep.Period, "round", in.Round, "granted", rep.Granted, "skipped", rep.Skipped,
		"credits", rep.Credits, "expired_grants", rep.ExpiredGrants, "failed", len(rep.Failed), "done", rep.Done)
	if err == nil || !errors.Is(err, ErrIncomplete) || ctx.Err() != nil || work.Err() == nil {
		// Finished, failed outright, killed, or some organizations failed
		// with time left: an error makes Lambda retry the event and, in the
		// end, send it to the dead-letter queue.
		return rep, err
	}
	// Out of time with work left: continue in a fresh invocation.
	maxRounds := h.MaxRounds
	if maxRounds <= 0 {
		maxRounds = 50
	}
	if h.Continue == nil || in.Round+1 >= maxRounds {
		return rep, fmt.Errorf("%w: no invocation left to continue in (round %d)", err, in.Round)
	}
	next := Input{Period: p.String(), Round: in.Round + 1}
	if cerr := h.Continue(context.WithoutCancel(ctx), next); cerr != nil {
		return rep, fmt.Errorf("%w; continuing failed: %v", err, cerr)
	}
	log.Info("rollover continues in a new invocation", "period", next.Period, "round", next.Round)
	return rep, nil
}
