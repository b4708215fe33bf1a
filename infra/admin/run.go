package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/contactlevel/metering/shared/admin"
	"github.com/contactlevel/metering/shared/config"
	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/lambdas"
)

// errUsage means the command line was wrong; the help was already printed.
var errUsage = errors.New("usage")

// env is what every command gets: the service, where to print, and how.
type env struct {
	svc    *admin.Service
	stdout io.Writer
	json   bool
}

// command is one subcommand. flags declares its flags on fs and returns the
// function that runs it once they are parsed.
type command struct {
	group, name, summary string
	flags                func(fs *flag.FlagSet) func(ctx context.Context, e *env) error
}

// commands is every subcommand, in the order help lists them. Adding one is
// adding an entry here.
var commands = []command{
	{"org", "create", "create an organization on a plan and issue its first key (shown once)", orgCreate},
	{"org", "show", "show an organization: plan, balance by kind, usage this period, keys", orgShow},
	{"org", "list", "list organizations", orgList},
	{"key", "issue", "issue a key (shown once)", keyIssue},
	{"key", "list", "list an organization's keys (never the key or its hash)", keyList},
	{"key", "revoke", "revoke a key", keyRevoke},
	{"key", "rotate", "issue a successor key; the old one works for a grace period (0 to 24h)", keyRotate},
	{"credits", "grant", "grant purchased or bonus credits, once per reference", creditsGrant},
	{"credits", "adjust", "correct a balance by a signed amount, with a reason", creditsAdjust},
	{"ledger", "list", "page through an organization's ledger, newest first", ledgerList},
	{"plan", "list", "list the subscription plans", planList},
}

const intro = `admin manages organizations, API keys and credits directly in DynamoDB.

Configuration (the functions' own variables):
  AWS_ENDPOINT_URL_DYNAMODB  DynamoDB endpoint (default http://127.0.0.1:8000, make run's DynamoDB Local;
                             set https://dynamodb.<region>.amazonaws.com to reach AWS)
  KEYS_TABLE, ORGS_TABLE     table names (default KeysTable, OrgsTable; the stack's outputs on AWS)
  AWS_REGION, AWS_PROFILE... the usual AWS configuration for anything but a local endpoint

Every command takes --help and --json. Exit status: 0 on success, 1 on failure, 2 on a usage error.
`

// run is the whole command: args without the program name.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	usage := func(w io.Writer) {
		fmt.Fprint(w, intro, "\nCommands:\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, c := range commands {
			fmt.Fprintf(tw, "  %s %s\t%s\n", c.group, c.name, c.summary)
		}
		tw.Flush()
	}
	if len(args) == 0 {
		usage(stderr)
		return errUsage
	}
	if isHelp(args[0]) {
		usage(stdout)
		return nil
	}
	var group []command
	for _, c := range commands {
		if c.group == args[0] {
			group = append(group, c)
		}
	}
	if len(group) == 0 {
		fmt.Fprintf(stderr, "admin: unknown command %q\n\n", args[0])
		usage(stderr)
		return errUsage
	}
	groupUsage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: admin %s <command> [flags]\n\nCommands:\n", args[0])
		for _, c := range group {
			fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
		}
	}
	if len(args) < 2 || isHelp(args[1]) {
		if len(args) < 2 {
			groupUsage(stderr)
			return errUsage
		}
		groupUsage(stdout)
		return nil
	}
	var cmd *command
	for i := range group {
		if group[i].name == args[1] {
			cmd = &group[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "admin: unknown command %q\n\n", args[0]+" "+args[1])
		groupUsage(stderr)
		return errUsage
	}

	fs := flag.NewFlagSet("admin "+cmd.group+" "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	exec := cmd.flags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: admin %s %s [flags]\n\n%s.\n\nFlags:\n", cmd.group, cmd.name, capitalize(cmd.summary))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "admin: unexpected arguments %q (every value is given with a flag)\n", fs.Args())
		fs.Usage()
		return errUsage
	}
	if f := fs.Lookup("org"); f != nil && strings.TrimSpace(f.Value.String()) == "" {
		return errors.New("--org is required")
	}
	client, err := dynamoClient(ctx, getenv)
	if err != nil {
		return err
	}
	tables := config.TablesFromEnv(getenv)
	if tables.Keys == "" {
		tables.Keys = "KeysTable"
	}
	if tables.Orgs == "" {
		tables.Orgs = "OrgsTable"
	}
	level := slog.LevelWarn // the CLI prints its results; the log says what went wrong
	if getenv("LOG_LEVEL") != "" {
		_ = level.UnmarshalText([]byte(getenv("LOG_LEVEL")))
	}
	svc := admin.New(client, tables, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
	return exec(ctx, &env{svc: svc, stdout: stdout, json: *asJSON})
}

func isHelp(s string) bool { return s == "-h" || s == "-help" || s == "--help" || s == "help" }

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// dynamoClient talks to AWS_ENDPOINT_URL_DYNAMODB, by default the DynamoDB
// Local of `make run`.
func dynamoClient(ctx context.Context, getenv func(string) string) (*dynamodb.Client, error) {
	return lambdas.DynamoDBAt(ctx, cmp.Or(getenv("AWS_ENDPOINT_URL_DYNAMODB"), "http://127.0.0.1:8000"), getenv)
}

// print writes v as JSON, or calls text for the human-readable form.
func (e *env) print(v any, text func(w io.Writer)) error {
	if e.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	text(tw)
	return tw.Flush()
}

// timeFlag is an optional RFC 3339 time.
type timeFlag struct{ t time.Time }

func (f *timeFlag) String() string {
	if f == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f *timeFlag) Set(s string) error {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("want an RFC 3339 time such as 2026-12-31T00:00:00Z")
	}
	f.t = t
	return nil
}

func required(name, v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("--%s is required", name)
	}
	return nil
}

func ts(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orgCreate(fs *flag.FlagSet) func(context.Context, *env) error {
	id := fs.String("id", "", "organization id, org_ followed by lower-case letters, digits, _ or - (generated when empty)")
	name := fs.String("name", "", "organization name (required)")
	plan := fs.String("plan", "", "subscription plan (required): "+planNames())
	keyName := fs.String("key-name", "default", "name of the first key")
	return func(ctx context.Context, e *env) error {
		c, err := e.svc.CreateOrg(ctx, admin.NewOrg{ID: *id, Name: *name, Plan: *plan, KeyName: *keyName})
		if err != nil {
			return err
		}
		return e.print(c, func(w io.Writer) {
			printOrg(w, c.Org)
			fmt.Fprintln(w)
			printIssued(w, c.Key)
		})
	}
}

func orgShow(fs *flag.FlagSet) func(context.Context, *env) error {
	org := fs.String("org", "", "organization id (required)")
	return func(ctx context.Context, e *env) error {
		o, err := e.svc.ShowOrg(ctx, *org)
		if err != nil {
			return err
		}
		return e.print(o, func(w io.Writer) { printOrg(w, o) })
	}
}

func printOrg(w io.Writer, o admin.Org) {
	capText := "no cap"
	if o.Plan.RolloverCap > 0 {
		capText = fmt.Sprintf("cap %d", o.Plan.RolloverCap)
	}
	fmt.Fprintf(w, "Organization\t%s (%s)\n", o.ID, o.Name)
	fmt.Fprintf(w, "Plan\t%s: %d a month, rollover %s\n", o.Plan.ID, o.Plan.Monthly, capText)
	fmt.Fprintf(w, "Created\t%s\n", o.CreatedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "Balance\t%d (subscription %d, purchased %d, bonus %d)\n", o.Balance, o.Breakdown.Subscription, o.Breakdown.Purchased, o.Breakdown.Bonus)
	for _, g := range o.BonusGrants {
		fmt.Fprintf(w, "  bonus grant\t%s: %d, expires %s\n", g.ID, g.Remaining, ts(g.ExpiresAt))
	}
	fmt.Fprintf(w, "Used in %s\t%d\n", o.Period, o.UsedThisPeriod)
	fmt.Fprintf(w, "Keys\t%d (%d active)\n", o.Keys, o.ActiveKeys)
}

func orgList(fs *flag.FlagSet) func(context.Context, *env) error {
	return func(ctx context.Context, e *env) error {
		orgs, err := e.svc.ListOrgs(ctx)
		if err != nil {
			return err
		}
		sort.Slice(orgs, func(i, j int) bool { return orgs[i].ID < orgs[j].ID })
		return e.print(map[string]any{"organizations": orgs}, func(w io.Writer) {
			fmt.Fprintln(w, "ID\tNAME\tPLAN\tBALANCE\tUSED THIS PERIOD")
			for _, o := range orgs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\n", o.ID, o.Name, o.Plan.ID, o.Balance, o.UsedThisPeriod)
			}
		})
	}
}

func printIssued(w io.Writer, k admin.IssuedKey) {
	fmt.Fprintf(w, "Key %s (%s) for %s, expires %s\n", k.ID, k.Name, k.OrgID, ts(k.ExpiresAt))
	fmt.Fprintln(w, "Shown once and stored nowhere; keep it now:")
	fmt.Fprintf(w, "X-Api-Key: %s\n", k.RawKey)
}

func keyIssue(fs *flag.FlagSet) func(context.Context, *env) error {
	org := fs.String("org", "", "organization id (required)")
	name := fs.String("name", "default", "key name")
	var expires timeFlag
	fs.Var(&expires, "expires", "expiry as an RFC 3339 time (default: never)")
	expiresIn := fs.Duration("expires-in", 0, "expiry as a duration from now, e.g. 720h (default: never)")
	return func(ctx context.Context, e *env) error {
		k, err := e.svc.IssueKey(ctx, *org, admin.NewKey{Name: *name, Expires: expires.t, TTL: *expiresIn})
		if err != nil {
			return err
		}
		return e.print(k, func(w io.Writer) { printIssued(w, k) })
	}
}

func keyList(fs *flag.FlagSet) func(context.Context, *env) error {
	org := fs.String("org", "", "organization id (required)")
	return func(ctx context.Context, e *env) error {
		keys, err := e.svc.ListKeys(ctx, *org)
		if err != nil {
			return err
		}
		return e.print(map[string]any{"keys": keys}, func(w io.Writer) {
			fmt.Fprintln(w, "ID\tNAME\tPREFIX\tSTATUS\tCREATED\tEXPIRES\tREVOKED\tROTATED")
			for _, k := range keys {
				fmt.Fprintf(w, "%s\t%s\t%s…\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Display, k.Status,
					k.CreatedAt.Format(time.RFC3339), ts(k.ExpiresAt), ts(k.RevokedAt), ts(k.RotatedAt))
			}
		})
	}
}

func keyRevoke(fs *flag.FlagSet) func(context.Context, *env) error {
	org := fs.String("org", "", "organization id (required)")
	key := fs.String("key", "", "key id, e.g. key_0123456789abcdef (required)")
	return func(ctx context.Context, e *env) error {
		if err := required("key", *key); err != nil {
			return err
		}
		k, err := e.svc.RevokeKey(ctx, *org, *key)
		if err != nil {
			return err
		}
		return e.print(k, func(w io.Writer) {
			fmt.Fprintf(w, "Revoked %s (%s) at %s. API Gateway may accept it until its cached authorization expires (AuthorizerCacheTtl).\n",
				k.ID, k.Name, ts(k.RevokedAt))
		})
	}
}

func keyRotate(fs *flag.FlagSet) func(context.Context, *env) error {
	org := fs.String("org", "", "organization id (required)")
	key := fs.String("key", "", "key id to rotate (required)")
	grace := fs.Duration("grace", 0, "how long the old key keeps working, 0 to 24h, e.g. 1m")
	return func(ctx context.Context, e *env) error {
		if err := required("key", *key); err != nil {
			return err
		}
		r, err := e.svc.RotateKey(ctx, *org, *key, *grace)
		if err != nil {
			return err
		}
		return e.print(r, func(w io.Writer) {
			fmt.Fprintf(w, "Old key %s works until %s.\n", r.Old.ID, ts(r.Old.ExpiresAt))
			printIssued(w, r.New)
		})
	}
}

func creditsGrant(fs *flag.FlagSet) func(context.Context, *env) error {
	org := fs.String("org", "", "organization id (required)")
	bucket := fs.String("bucket", "purchased", "purchased (never expire) or bonus")
	amount := fs.Int64("amount", 0, "credits to add, at least 1 (required)")
	ref := fs.String("ref", "", "external reference, e.g. a payment id: a second grant with it adds nothing")
	var expires timeFlag
	fs.Var(&expires, "expires", "bonus expiry as an RFC 3339 time (default: never)")
	expiresIn := fs.Duration("expires-in", 0, "bonus expiry as a duration from now, e.g. 720h")
	return func(ctx context.Context, e *env) error {
		exp := expires.t
		if *expiresIn != 0 {
			if !exp.IsZero() {
				return fmt.Errorf("give --expires or --expires-in, not both")
			}
			exp = e.svc.Now().Add(*expiresIn)
		}
		g, err := e.svc.GrantCredits(ctx, *org, admin.Grant{Bucket: *bucket, Amount: *amount, Reference: *ref, Expires: exp})
		if err != nil {
			return err
		}
		return e.print(g, func(w io.Writer) {
			if g.Duplicate {
				fmt.Fprintf(w, "Reference %q was already granted; nothing added. The first grant:\n", g.Entry.Reference)
			}
			printEntries(w, []admin.Entry{g.Entry})
		})
	}
}

func creditsAdjust(fs *flag.FlagSet) func(context.Context, *env) error {
	org := fs.String("org", "", "organization id (required)")
	bucket := fs.String("bucket", "", "subscription or purchased (required)")
	amount := fs.Int64("amount", 0, "signed correction, e.g. -50 or 25 (required)")
	reason := fs.String("reason", "", "why, for the ledger (required)")
	return func(ctx context.Context, e *env) error {
		entry, err := e.svc.AdjustCredits(ctx, *org, admin.Adjustment{Bucket: *bucket, Amount: *amount, Reason: *reason})
		if err != nil {
			return err
		}
		return e.print(entry, func(w io.Writer) { printEntries(w, []admin.Entry{entry}) })
	}
}

func ledgerList(fs *flag.FlagSet) func(context.Context, *env) error {
	org := fs.String("org", "", "organization id (required)")
	limit := fs.Int("limit", admin.DefaultPageSize, fmt.Sprintf("entries per page, 1 to %d", admin.MaxPageSize))
	cursor := fs.String("cursor", "", "where to continue, from the previous page")
	return func(ctx context.Context, e *env) error {
		p, err := e.svc.Ledger(ctx, *org, *limit, *cursor)
		if err != nil {
			return err
		}
		return e.print(p, func(w io.Writer) {
			printEntries(w, p.Entries)
			if p.Next != "" {
				fmt.Fprintf(w, "\nMore: --cursor %s\n", p.Next)
			}
		})
	}
}

func printEntries(w io.Writer, entries []admin.Entry) {
	fmt.Fprintln(w, "AT\tTYPE\tBUCKET\tAMOUNT\tBALANCE AFTER\tREFERENCE / REASON\tENTRY")
	for _, en := range entries {
		note := en.Reference
		if en.Reason != "" {
			note = strings.TrimPrefix(note+" / "+en.Reason, " / ")
		}
		bucket := en.Bucket
		if en.GrantID != "" {
			bucket += " " + en.GrantID
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%+d\t%d\t%s\t%s\n", en.At.Format(time.RFC3339), en.Type, bucket, en.Amount, en.BalanceAfter, note, en.ID)
	}
}

func planList(fs *flag.FlagSet) func(context.Context, *env) error {
	return func(ctx context.Context, e *env) error {
		plans := make([]admin.Plan, 0, len(credits.Plans))
		for _, p := range credits.Plans {
			plans = append(plans, admin.Plan{ID: p.ID, Monthly: p.Monthly, RolloverCap: p.RolloverCap})
		}
		return e.print(map[string]any{"plans": plans}, func(w io.Writer) {
			fmt.Fprintln(w, "PLAN\tMONTHLY\tROLLOVER CAP")
			for _, p := range plans {
				fmt.Fprintf(w, "%s\t%d\t%d\n", p.ID, p.Monthly, p.RolloverCap)
			}
		})
	}
}

func planNames() string {
	ids := make([]string, len(credits.Plans))
	for i, p := range credits.Plans {
		ids[i] = p.ID
	}
	return strings.Join(ids, ", ")
}
