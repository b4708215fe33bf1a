package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/ddbtest"
	"github.com/contactlevel/metering/shared/dynamo"
)

func TestRun(t *testing.T) {
	s := ddbtest.New(t)
	ctx := context.Background()
	c := &dynamo.Credits{Client: s.Client, Table: s.Tables.Orgs}
	opened := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	if err := c.Open(ctx, "org_b", "B", credits.Plan{ID: "pro", Monthly: 1000, RolloverCap: 1200}, credits.Balance{Subscription: 700}, opened); err != nil {
		t.Fatal(err)
	}
	if err := c.Open(ctx, "org_a", "A", credits.Plan{ID: "pro", Monthly: 1000}, credits.Balance{Subscription: 5,
		Bonus: []credits.Grant{{ID: "promo", Remaining: 9, ExpiresAt: time.Now().Add(-time.Hour)}}}, opened); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"), "ORGS_TABLE": s.Tables.Orgs}
	cli := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, args, &out, &errOut, func(k string) string { return env[k] })
		return out.String() + errOut.String(), err
	}

	out, err := cli("--period", "2026-12", "--dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	for _, want := range []string{
		"dry run of 2026-12",
		"org_a  subscription 5 -> 1005 (+1000)  expire bonus promo (9 left)\norg_b  subscription 700 -> 1200 (+500) capped at 1200\n",
		"2 organizations would be granted 1500 credits; 1 expired grants (9 credits) would be removed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if b, _ := c.Balance(ctx, "org_a"); b.Subscription != 5 {
		t.Fatalf("dry run wrote: %+v", b)
	}

	if out, err = cli("--period", "2026-12"); err != nil || !strings.Contains(out, "2 organizations granted 1500 credits") {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if out, err = cli("--period", "2026-12"); err != nil || !strings.Contains(out, "0 organizations granted 0 credits") {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if b, _ := c.Balance(ctx, "org_b"); b.Subscription != 1200 {
		t.Fatalf("org_b: %+v", b)
	}

	if _, err := cli("--period", "2026-13"); !errors.Is(err, credits.ErrInvalidPeriod) {
		t.Fatalf("bad period: %v", err)
	}
	if out, err := cli("--help"); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out, "--dry-run") {
		t.Fatalf("help: %v\n%s", err, out)
	}
	if _, err := cli("2026-12"); err == nil {
		t.Fatal("stray argument accepted")
	}
}
