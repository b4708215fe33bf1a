// Command bench measures the metered request path against the database's own
// ceiling, on one in-memory DynamoDB Local that it starts and stops itself:
//
//  1. ceiling: a bare loop of the conditional UpdateItem a charge sends
//     (dynamo.DebitInput, on the same item), one SDK client per worker as
//     one per Lambda execution environment;
//  2. POST /api/contacts/create end to end through the local API Gateway
//     (localstack.Gateway behind a real HTTP server and client), authorizer
//     cache off;
//  3. the same with the authorizer cache on and warm;
//
// at each concurrency, side by side, for the same duration each. It also
// counts, through a proxy in front of DynamoDB, the DynamoDB calls per
// request (none for a malformed key), and, when given the bootstraps, reports
// their sizes and their start-up time against a minimal Lambda runtime API.
//
//	go run ./infra/bench [-ddb-port 8786] [-duration 5s] [-concurrency 1,8,32]
//
// `make bench` builds the bootstraps and runs it. Numbers are only as quiet
// as the machine: everything shares its cores with DynamoDB Local's JVM.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/contactlevel/metering/shared/apikey"
	"github.com/contactlevel/metering/shared/config"
	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/dynamo"
	"github.com/contactlevel/metering/shared/lambdas"
	"github.com/contactlevel/metering/shared/localstack"
	"github.com/contactlevel/metering/shared/sam"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	ddbPort     int
	ddbEndpoint string
	duration    time.Duration
	warmup      time.Duration
	jvmWarmup   time.Duration
	rounds      int
	paths       string
	concurrency []int
	template    string
	cpuProfile  string
	sizes       string
	startup     string
	startupRuns int
	malformed   int
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaultPort := 8786
	if v := getenv("BENCH_DDB_PORT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return o, fmt.Errorf("BENCH_DDB_PORT=%q is not a port", v)
		}
		defaultPort = n
	}
	fs.IntVar(&o.ddbPort, "ddb-port", defaultPort, "port of the in-memory DynamoDB Local this run starts and stops (env BENCH_DDB_PORT)")
	fs.StringVar(&o.ddbEndpoint, "ddb-endpoint", "", "use the DynamoDB at this URL instead of starting one (fresh prefixed tables are made there)")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time of each cell")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured time before each cell (starts execution environments, fills caches)")
	fs.DurationVar(&o.jvmWarmup, "jvm-warmup", 5*time.Second, "unmeasured load before the first cell, while DynamoDB Local's JVM compiles its hot paths")
	fs.IntVar(&o.rounds, "rounds", 5, "turns the paths take within each concurrency; each path's -duration is split over them")
	fs.StringVar(&o.paths, "paths", "", "measure only these paths, by number (\"r\" for the reference rows), e.g. 12 or 3r; default all")
	conc := fs.String("concurrency", "1,8,32", "comma-separated numbers of concurrent clients")
	fs.StringVar(&o.template, "template", "template.yaml", "SAM template")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (gateway, functions and load) to this file")
	fs.StringVar(&o.sizes, "sizes", "", "directory of <Function>/bootstrap built for Lambda (make build's bin/) to report sizes of")
	fs.StringVar(&o.startup, "startup", "", "directory of <Function>/bootstrap built for this machine, to time start-up against a runtime API")
	fs.IntVar(&o.startupRuns, "startup-runs", 10, "process starts per function")
	fs.IntVar(&o.malformed, "malformed", 1000, "requests with malformed keys sent while counting DynamoDB calls")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for _, s := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-concurrency: %q is not a positive number", s)
		}
		o.concurrency = append(o.concurrency, n)
	}
	if o.duration <= 0 || o.rounds < 1 {
		return o, errors.New("-duration and -rounds must be positive")
	}
	return o, nil
}

// benchOrg is the organization every request charges.
const benchOrg = "org_bench"

// fixture is what the run set up in DynamoDB.
type fixture struct {
	tmpl     *sam.Template
	endpoint string
	region   string
	names    map[string]string // logical ID to table name
	tables   config.Tables
	key      apikey.Key
}

// run is the whole command. It changes the process environment (the SDK and
// the functions read their endpoint from it) and, while it runs, os.Stdout,
// where the functions write their log lines: those are formatted, as on
// Lambda, and discarded. Results go to stdout, progress to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) (err error) {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	tmpl, err := sam.Load(o.template)
	if err != nil {
		return err
	}
	root := filepath.Dir(o.template)

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	endpoint := o.ddbEndpoint
	ddbNote := "given endpoint " + endpoint
	var clock cpuClock
	if endpoint == "" {
		script := filepath.Join(root, "infra", "dynamodb-local.sh")
		if err := dynamoDBLocal(script, o.ddbPort, "start", io.Discard, stderr); err != nil {
			return err
		}
		defer func() {
			if stopErr := dynamoDBLocal(script, o.ddbPort, "stop", io.Discard, stderr); stopErr != nil && err == nil {
				err = stopErr
			}
		}()
		endpoint = fmt.Sprintf("http://127.0.0.1:%d", o.ddbPort)
		clock.jvmPid = jvmPid(root, o.ddbPort)
		ddbNote = fmt.Sprintf("DynamoDB Local in memory on port %d, started for this run with JVM options %q", o.ddbPort, javaOpts())
	}

	region := localstack.UseDynamoDBLocal(endpoint)

	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	saved := os.Stdout
	os.Stdout = devnull
	defer func() { os.Stdout = saved }()

	fx, err := setUp(ctx, tmpl, endpoint, region)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: tables %s…, organization %s, %s\n", fx.tables.Orgs, benchOrg, ddbNote)

	var rep report
	rep.header = fmt.Sprintf("nproc %d, GOMAXPROCS %d, %s/%s, %s; %v per cell in %d rounds after %v warm-up; %s",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version(), o.duration, o.rounds, o.warmup, ddbNote)

	fmt.Fprintln(stderr, "bench: counting DynamoDB calls")
	if rep.calls, err = countCalls(ctx, fx, o.malformed); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if rep.cells, err = throughput(ctx, fx, o, clock, stderr); err != nil {
		return err
	}
	if o.sizes != "" {
		rep.sizes = bootstrapSizes(tmpl, o.sizes)
	}
	if o.startup != "" && ctx.Err() == nil {
		fmt.Fprintln(stderr, "bench: timing start-up")
		if rep.startup, err = startupAll(ctx, fx, root, o.startup, o.startupRuns); err != nil {
			return err
		}
	}
	rep.print(stdout)
	return ctx.Err()
}

// setUp creates the template's tables under a fresh prefix and an
// organization with a balance no run can exhaust, and issues it a key.
func setUp(ctx context.Context, tmpl *sam.Template, endpoint, region string) (fixture, error) {
	client, err := lambdas.DynamoDB(ctx)
	if err != nil {
		return fixture{}, err
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	names, err := tmpl.CreateTables(ctx, client, "bench"+hex.EncodeToString(b[:])+"-")
	if err != nil {
		return fixture{}, fmt.Errorf("create tables: %w", err)
	}
	fns := tmpl.Functions()
	if len(fns) == 0 {
		return fixture{}, errors.New("the template has no functions")
	}
	env := tmpl.FunctionEnv(fns[0], names, nil)
	tables := config.TablesFromEnv(func(k string) string { return env[k] })
	now := time.Now()
	orgs := &dynamo.Credits{Client: client, Table: tables.Orgs}
	// A subscription balance that cannot run out: every charge then plans
	// "take 1 from the subscription", the common case, in one write.
	plan := credits.Plan{ID: "bench", Monthly: 1000, RolloverCap: 2000}
	if err := orgs.Open(ctx, benchOrg, "Benchmark", plan, credits.Balance{Subscription: 1 << 40}, now); err != nil {
		return fixture{}, fmt.Errorf("open organization: %w", err)
	}
	key, rec, err := apikey.Issue(benchOrg, "bench", now, time.Time{})
	if err != nil {
		return fixture{}, err
	}
	if err := (dynamo.Keys{Client: client, Table: tables.Keys}).Put(ctx, rec); err != nil {
		return fixture{}, fmt.Errorf("store key: %w", err)
	}
	return fixture{tmpl: tmpl, endpoint: endpoint, region: region, names: names, tables: tables, key: key}, nil
}

// newClient is a DynamoDB client configured exactly as a function's.
func newClient(ctx context.Context) (*dynamodb.Client, error) { return lambdas.DynamoDB(ctx) }

// dynamoDBLocal runs the script's command (start or stop) on port, in memory.
func dynamoDBLocal(script string, port int, command string, stdout, stderr io.Writer) error {
	cmd := exec.Command("bash", script, "--port", strconv.Itoa(port), "--in-memory", command)
	cmd.Env = append(os.Environ(), "DYNAMODB_JAVA_OPTS="+javaOpts())
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s DynamoDB Local on port %d: %w", command, port, err)
	}
	return nil
}

// defaultJavaOpts make DynamoDB Local reach its steady state within seconds
// on two cores: C1 only, because the C2 compiler threads otherwise take a
// core for tens of seconds and turn into noise in whichever cells run
// meanwhile; the serial collector, because parallel GC threads compete with
// the Go process for the same cores.
const defaultJavaOpts = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"

// javaOpts is DYNAMODB_JAVA_OPTS when set, else defaultJavaOpts.
func javaOpts() string {
	if v, ok := os.LookupEnv("DYNAMODB_JAVA_OPTS"); ok {
		return v
	}
	return defaultJavaOpts
}
