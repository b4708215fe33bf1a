// Command rollover measures the monthly rollover against DynamoDB Local:
// it seeds -n organizations with a plan, then, in the same run, times
//
//   - the ceiling: a bare loop of -n conditional UpdateItem calls, one per
//     organization of a second set of -n, adding the allotment and moving
//     the period marker (and so the index) exactly as a rollover does, with
//     the same number of concurrent callers;
//   - a bare loop of -n TransactWriteItems doing that same update plus the
//     ledger entry's Put, over a third set: what the once-only write with
//     its ledger entry costs by itself;
//   - the rollover itself (shared/rollover) over the first set;
//
// and prints both rates and their ratio. It creates fresh tables from
// template.yaml under a random prefix, so it never touches other data, and
// exits when done. `make bench-rollover` runs it on an in-memory DynamoDB
// Local that it starts and stops.
//
//	go run ./infra/bench/rollover [-n 100000] [-parallel 32]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/ddbtest"
	"github.com/contactlevel/metering/shared/dynamo"
	"github.com/contactlevel/metering/shared/lambdas"
	"github.com/contactlevel/metering/shared/rollover"
	"github.com/contactlevel/metering/shared/sam"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bench rollover:", err)
			os.Exit(1)
		}
	}
}

var (
	plan   = credits.Plan{ID: "bench", Monthly: 1000, RolloverCap: 5000}
	opened = time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC)
	now    = time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC)
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench-rollover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 100_000, "organizations to roll over (and as many UpdateItem calls for the ceiling)")
	parallel := fs.Int("parallel", dynamo.RolloverShards, "concurrent callers: shards at once for the rollover, goroutines for the ceiling")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if os.Getenv(ddbtest.EndpointVar) == "" {
		return fmt.Errorf("%s is not set; make bench-rollover starts DynamoDB Local and sets it", ddbtest.EndpointVar)
	}
	client, err := lambdas.DynamoDB(ctx)
	if err != nil {
		return err
	}
	path, err := ddbtest.RepoFile("template.yaml")
	if err != nil {
		return err
	}
	tmpl, err := sam.Load(path)
	if err != nil {
		return err
	}
	names, err := tmpl.CreateTables(ctx, client, ddbtest.Prefix())
	if err != nil {
		return err
	}
	defer func() {
		// Leave a long-running DynamoDB Local as it was found.
		for _, name := range names {
			_, _ = client.DeleteTable(context.WithoutCancel(ctx), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		}
	}()
	table := names["OrgsTable"]
	p := credits.PeriodOf(now)

	start := time.Now()
	if err := seed(ctx, client, table, "org", *n, *parallel); err != nil {
		return err
	}
	if err := seed(ctx, client, table, "ceil", *n, *parallel); err != nil {
		return err
	}
	if err := seed(ctx, client, table, "tx", *n, *parallel); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded 3 x %d organizations in %.1f s (BatchWriteItem, %d writers)\n", *n, time.Since(start).Seconds(), *parallel)

	// Warm DynamoDB Local's JVM up first, so that the first timed loop is
	// not the one that pays for it.
	warm := min(*n, 5000)
	if err := seed(ctx, client, table, "warm", warm, *parallel); err != nil {
		return err
	}
	if err := ceilingOf(ctx, client, table, "warm", warm, *parallel, p); err != nil {
		return err
	}

	start = time.Now()
	if err := ceiling(ctx, client, table, *n, *parallel, p); err != nil {
		return err
	}
	ceil := time.Since(start)

	start = time.Now()
	if err := txFloor(ctx, client, table, *n, *parallel, p); err != nil {
		return err
	}
	tx := time.Since(start)

	start = time.Now()
	r := &rollover.Runner{Store: dynamo.Rollovers{Client: client, Table: table}, Parallel: *parallel, Now: func() time.Time { return now }}
	rep, err := r.Run(ctx, p)
	roll := time.Since(start)
	if err != nil {
		return err
	}
	if rep.Granted != *n {
		return fmt.Errorf("rollover granted %d organizations, want %d (report %+v)", rep.Granted, *n, rep)
	}

	rollRate, ceilRate := float64(*n)/roll.Seconds(), float64(*n)/ceil.Seconds()
	fmt.Fprintf(stdout, "ceiling:  %d conditional UpdateItem in %.1f s = %.0f/s\n", *n, ceil.Seconds(), ceilRate)
	fmt.Fprintf(stdout, "tx floor: %d TransactWriteItems (the same update + a ledger Put) in %.1f s = %.0f/s\n", *n, tx.Seconds(), float64(*n)/tx.Seconds())
	fmt.Fprintf(stdout, "rollover: %d organizations in %.1f s = %.0f orgs/s (%d granted, %d credits)\n", *n, roll.Seconds(), rollRate, rep.Granted, rep.Credits)
	fmt.Fprintf(stdout, "ratio:    %.2f of the ceiling (parallel %d, GOMAXPROCS %d, %d CPUs)\n", rollRate/ceilRate, *parallel, runtime.GOMAXPROCS(0), runtime.NumCPU())
	return nil
}

// seed writes n organizations named prefix_000000... with the plan, 25 to
// a BatchWriteItem, from several writers.
func seed(ctx context.Context, client *dynamodb.Client, table, prefix string, n, writers int) error {
	batches := make(chan []types.WriteRequest)
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for range writers {
		wg.Go(func() {
			for reqs := range batches {
				for len(reqs) > 0 {
					out, err := client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: reqs}})
					if err != nil {
						once.Do(func() { firstErr = err })
						break
					}
					reqs = out.UnprocessedItems[table]
				}
			}
		})
	}
	var reqs []types.WriteRequest
	var err error
	for i := range n {
		org := fmt.Sprintf("%s_%06d", prefix, i)
		var item map[string]types.AttributeValue
		item, err = dynamo.OrgItem(org, org, plan, credits.Balance{Subscription: int64(i % 5000), Purchased: 10}, opened)
		if err != nil {
			break
		}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
		if len(reqs) == 25 || i == n-1 {
			batches <- reqs
			reqs = nil
		}
	}
	close(batches)
	wg.Wait()
	return errors.Join(err, firstErr)
}

// txFloor is the bare loop of the transaction a rollover writes: the
// ceiling's update with the ledger entry beside it.
func txFloor(ctx context.Context, client *dynamodb.Client, table string, n, workers int, p credits.Period) error {
	expr, err := ceilingExpr(p)
	if err != nil {
		return err
	}
	return loop(n, workers, func(i int64) error {
		org := fmt.Sprintf("tx_%06d", i)
		put, err := dynamo.LedgerPut(table, credits.Entry{ID: "rollover-" + p.String(), OrgID: org, At: now,
			Type: credits.EntryRollover, Bucket: credits.Subscription, Amount: plan.Monthly, Period: p.String()})
		if err != nil {
			return err
		}
		_, err = client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{{Update: &types.Update{
			TableName:                 aws.String(table),
			Key:                       key(org),
			ConditionExpression:       expr.Condition(),
			UpdateExpression:          expr.Update(),
			ExpressionAttributeNames:  expr.Names(),
			ExpressionAttributeValues: expr.Values(),
		}}, put}})
		return err
	})
}

// ceiling is the bare loop: per organization one conditional UpdateItem
// that adds the allotment and moves the period marker and due date, as
// much as a rollover must write, with nothing around it.
func ceiling(ctx context.Context, client *dynamodb.Client, table string, n, workers int, p credits.Period) error {
	return ceilingOf(ctx, client, table, "ceil", n, workers, p)
}

func ceilingOf(ctx context.Context, client *dynamodb.Client, table, prefix string, n, workers int, p credits.Period) error {
	expr, err := ceilingExpr(p)
	if err != nil {
		return err
	}
	return loop(n, workers, func(i int64) error {
		_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(table),
			Key:                       key(fmt.Sprintf("%s_%06d", prefix, i)),
			ConditionExpression:       expr.Condition(),
			UpdateExpression:          expr.Update(),
			ExpressionAttributeNames:  expr.Names(),
			ExpressionAttributeValues: expr.Values(),
		})
		return err
	})
}

func ceilingExpr(p credits.Period) (expression.Expression, error) {
	last := expression.Name("rollover_period")
	cond := expression.Or(last.AttributeNotExists(), last.LessThan(expression.Value(p.String())))
	upd := expression.Set(expression.Name("subscription"), expression.Name("subscription").Plus(expression.Value(plan.Monthly))).
		Set(last, expression.Value(p.String())).
		Set(expression.Name("rollover_due"), expression.Value(p.Next().String()))
	return expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
}

func key(org string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"org_id": &types.AttributeValueMemberS{Value: org},
		"sk":     &types.AttributeValueMemberS{Value: dynamo.OrgSK},
	}
}

// loop calls call(0..n-1) from workers goroutines and returns the first
// error, after which each worker stops.
func loop(n, workers int, call func(i int64) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if errs[w] = call(i); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
