// Command rollover runs one period of the monthly subscription rollover by
// hand: for local use, to back-fill a month the schedule missed, or to
// finish one whose events ended in the dead-letter queue. It is the same
// code the RolloverFunction runs, so it is just as safe to run twice or to
// interrupt: every organization gets each period at most once.
//
//	go run ./infra/rollover [--period 2026-12] [--dry-run]
//
// It talks to DynamoDB like the functions do: AWS_ENDPOINT_URL_DYNAMODB
// (default http://127.0.0.1:8000, where `make run` keeps DynamoDB Local;
// --endpoint aws means AWS itself, with the usual credential chain) and
// ORGS_TABLE (default OrgsTable, the local name).
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/dynamo"
	"github.com/contactlevel/metering/shared/lambdas"
	"github.com/contactlevel/metering/shared/rollover"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "rollover:", err)
		os.Exit(1)
	}
}

// Defaults match `make run`, which names tables by their logical IDs.
const (
	defaultEndpoint = "http://127.0.0.1:8000"
	defaultTable    = "OrgsTable"
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("rollover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpointDefault := cmp.Or(getenv("AWS_ENDPOINT_URL_DYNAMODB"), defaultEndpoint)
	var (
		period   = fs.String("period", "", "month to grant, YYYY-MM (default: the current month, UTC)")
		dry      = fs.Bool("dry-run", false, "print what would change and write nothing")
		endpoint = fs.String("endpoint", endpointDefault, `DynamoDB endpoint (env AWS_ENDPOINT_URL_DYNAMODB); "aws" for AWS itself`)
		table    = fs.String("table", cmp.Or(getenv("ORGS_TABLE"), defaultTable), "organizations table (env ORGS_TABLE)")
		parallel = fs.Int("parallel", 0, "shards worked on at once (default: all)")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: rollover [--period YYYY-MM] [--dry-run] [flags]\n\n"+
			"Grants one month's subscription allotment (capped by the plan) to every\n"+
			"organization with a plan that has not had it yet, and removes expired\n"+
			"bonus grants, writing ledger entries. Safe to repeat or interrupt.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	p := credits.PeriodOf(time.Now())
	if *period != "" {
		var err error
		if p, err = credits.ParsePeriod(*period); err != nil {
			return err
		}
	}
	client, err := lambdas.DynamoDBAt(ctx, *endpoint, getenv)
	if err != nil {
		return err
	}

	var (
		mu    sync.Mutex
		lines []string
	)
	r := &rollover.Runner{
		Store:    dynamo.Rollovers{Client: client, Table: *table},
		Parallel: *parallel,
		Now:      time.Now,
		DryRun:   *dry,
		OnOutcome: func(o dynamo.RolloverOutcome) {
			if *dry && o.Status == dynamo.Granted {
				mu.Lock()
				lines = append(lines, describe(o))
				mu.Unlock()
			}
		},
	}
	verb := "rolling over"
	if *dry {
		verb = "dry run of"
	}
	fmt.Fprintf(stdout, "%s %s on %s (table %s)\n", verb, p, *endpoint, *table)
	rep, err := r.Run(ctx, p)
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	would := ""
	if *dry {
		would = "would be "
	}
	fmt.Fprintf(stdout, "%d organizations %sgranted %d credits; %d expired grants (%d credits) %sremoved; %d skipped; %d failed\n",
		rep.Granted, would, rep.Credits, rep.ExpiredGrants, rep.ExpiredCredits, would, rep.Skipped, len(rep.Failed))
	if len(rep.Failed) > 0 {
		slices.Sort(rep.Failed)
		fmt.Fprintf(stdout, "failed: %s\n", strings.Join(rep.Failed, " "))
	}
	if errors.Is(err, rollover.ErrIncomplete) {
		return fmt.Errorf("%w; run the same command again to finish", err)
	}
	return err
}

// describe is one organization's line of a dry run.
func describe(o dynamo.RolloverOutcome) string {
	ro := o.Rollover
	s := fmt.Sprintf("%s  subscription %d -> %d (+%d)", o.Org, ro.Before.Subscription, ro.Before.Subscription+ro.Amount, ro.Amount)
	if ro.Plan.RolloverCap > 0 && ro.Amount < ro.Plan.Monthly {
		s += fmt.Sprintf(" capped at %d", ro.Plan.RolloverCap)
	}
	for _, g := range ro.Expired {
		s += fmt.Sprintf("  expire bonus %s (%d left)", g.ID, g.Remaining)
	}
	return s
}
