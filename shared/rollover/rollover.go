// Package rollover runs the monthly subscription rollover over every
// organization with a plan: it reads the organizations due shard by shard
// from the sparse index, several shards at once, and applies the period to
// each with dynamo.Rollovers.Roll, whose conditional transaction is what
// makes every organization's grant happen exactly once. A run can stop at
// any point (a deadline, a crash) and simply be run again: organizations
// already granted have left the index's due range.
package rollover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/dynamo"
)

// pageSize is how many due organizations are listed, then read with one
// BatchGetItem (whose limit is 100), at a time.
const pageSize = 100

// Runner runs one period's rollover.
type Runner struct {
	Store dynamo.Rollovers
	// Shards is how many index shards to read, dynamo.RolloverShards when 0.
	Shards int
	// Parallel is how many shards are worked on at once, all when 0.
	Parallel int
	// Now is the clock that decides which bonus grants have expired.
	Now func() time.Time
	// DryRun computes and reports every outcome but writes nothing.
	DryRun bool
	Log    *slog.Logger
	// OnOutcome, when set, sees every organization's outcome as it
	// happens, from several goroutines at once: the CLI prints dry runs
	// with it, tests stop a run part-way with it.
	OnOutcome func(dynamo.RolloverOutcome)
}

// Report sums up a run.
type Report struct {
	Period string `json:"period"`
	// Granted counts organizations the period was applied to (would be, dry).
	Granted int `json:"granted"`
	// Skipped counts organizations listed as due that needed nothing:
	// granted before (the index lags the table) or without a plan.
	Skipped        int   `json:"skipped"`
	Credits        int64 `json:"credits_granted"`
	ExpiredGrants  int   `json:"expired_grants"`
	ExpiredCredits int64 `json:"expired_credits"`
	// Failed lists organizations whose rollover failed; they stay due.
	Failed []string `json:"failed,omitempty"`
	// Done says every shard was read to its end with no failure: the
	// period is complete. False after a stop or failures: run it again.
	Done   bool `json:"done"`
	DryRun bool `json:"dry_run,omitempty"`
}

// ErrIncomplete means a run ended with organizations still due: it was
// stopped, or some organizations failed. Running the period again finishes it.
var ErrIncomplete = errors.New("rollover incomplete")

// Run applies period p to every organization due, until all shards are
// read or ctx ends. Ending ctx is a clean stop: what was written stays
// written, and a later run for p picks up the rest. The error is nil when
// the period is complete, ErrIncomplete (wrapped) when it was stopped or
// some organizations failed, and something else when DynamoDB could not be
// read at all; the report is valid in every case.
func (r *Runner) Run(ctx context.Context, p credits.Period) (Report, error) {
	shards := r.Shards
	if shards <= 0 {
		shards = dynamo.RolloverShards
	}
	parallel := r.Parallel
	if parallel <= 0 || parallel > shards {
		parallel = shards
	}
	now := r.Now
	if now == nil {
		now = time.Now
	}
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	var (
		mu    sync.Mutex
		rep   = Report{Period: p.String(), DryRun: r.DryRun}
		fatal error
	)
	record := func(out dynamo.RolloverOutcome, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			rep.Failed = append(rep.Failed, out.Org)
		case out.Status == dynamo.Granted:
			rep.Granted++
			rep.Credits += out.Rollover.Amount
			for _, g := range out.Rollover.Expired {
				rep.ExpiredGrants++
				rep.ExpiredCredits += g.Remaining
			}
		default:
			rep.Skipped++
		}
	}
	complete := make([]bool, shards)
	shardCh := make(chan int)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for s := range shardCh {
				ok, err := r.shard(ctx, s, p, now, log, record)
				mu.Lock()
				complete[s] = ok
				if err != nil && fatal == nil && ctx.Err() == nil {
					fatal = err
				}
				mu.Unlock()
			}
		})
	}
	for s := range shards {
		shardCh <- s
	}
	close(shardCh)
	wg.Wait()

	rep.Done = len(rep.Failed) == 0
	for _, ok := range complete {
		rep.Done = rep.Done && ok
	}
	switch {
	case fatal != nil:
		return rep, fatal
	case !rep.Done:
		return rep, fmt.Errorf("%w for %s: %d granted, %d failed, stopped: %v", ErrIncomplete, p, rep.Granted, len(rep.Failed), ctx.Err() != nil)
	}
	return rep, nil
}

// shard works through one shard's due organizations; ok says it reached
// the end. An organization that fails is logged and left due; a failure to
// list or read the shard ends the shard.
func (r *Runner) shard(ctx context.Context, shard int, p credits.Period, now func() time.Time, log *slog.Logger,
	record func(dynamo.RolloverOutcome, error)) (ok bool, err error) {
	var start map[string]types.AttributeValue
	for {
		if ctx.Err() != nil {
			return false, nil
		}
		orgs, next, err := r.Store.Due(ctx, shard, p, start, pageSize)
		if err != nil {
			return false, err
		}
		accounts, err := r.Store.Load(ctx, orgs)
		if err != nil {
			return false, err
		}
		for _, a := range accounts {
			if ctx.Err() != nil {
				return false, nil
			}
			out, err := r.Store.Roll(ctx, a, p, now(), r.DryRun)
			if err != nil {
				out.Org = a.Org
				if ctx.Err() != nil {
					// Stopped mid-write: the write either happened or not,
					// and a re-run finds out from the item itself.
					return false, nil
				}
				log.Error("rollover failed", "org_id", a.Org, "period", p.String(), "err", err)
			}
			record(out, err)
			if r.OnOutcome != nil {
				r.OnOutcome(out)
			}
		}
		if next == nil {
			return true, nil
		}
		start = next
	}
}
