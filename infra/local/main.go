// Command local runs the whole stack on one machine without Docker: it makes
// sure DynamoDB Local is running, creates the tables of template.yaml, seeds
// a demo organization with a fresh API key, and serves the template's API
// through the API Gateway emulator with every function's real handler.
//
//	go run ./infra/local [-port 3000] [-ddb-port 8000] [-param Name=Value]... [-setup]
//
// It prints the demo key and ready-to-paste curl commands. Ctrl-C stops the
// server, and DynamoDB Local too if this run started it. Data is kept in
// .data/dynamodb/, so running it again keeps earlier contacts and balances.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/contactlevel/metering/shared/apigateway"
	"github.com/contactlevel/metering/shared/config"
	"github.com/contactlevel/metering/shared/demo"
	"github.com/contactlevel/metering/shared/lambdas"
	"github.com/contactlevel/metering/shared/localstack"
	"github.com/contactlevel/metering/shared/sam"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}

// params is a repeatable -param Name=Value flag: template parameter overrides.
type params map[string]string

func (p params) String() string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k+"="+p[k])
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}

func (p params) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want Name=Value, got %q", s)
	}
	p[k] = v
	return nil
}

// run is the whole command; it returns when ctx is cancelled (Ctrl-C) or
// serving fails.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	defaultPort, err := envPort(getenv, "PORT", 3000)
	if err != nil {
		return err
	}
	defaultDDBPort, err := envPort(getenv, "DYNAMODB_PORT", 8000)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", defaultPort, "HTTP port of the API (env PORT)")
	host := fs.String("host", "127.0.0.1", "address the API listens on")
	ddbPort := fs.Int("ddb-port", defaultDDBPort, "DynamoDB Local port (env DYNAMODB_PORT)")
	templatePath := fs.String("template", "template.yaml", "SAM template to run")
	setupOnly := fs.Bool("setup", false, "only start DynamoDB Local (left running), create the tables and seed; do not serve")
	adminToken := fs.String("admin-token", getenv("LOCAL_ADMIN_TOKEN"), "credential for the admin API's IAM-authorized routes, sent as Authorization: Bearer <token> (env LOCAL_ADMIN_TOKEN; random when empty)")
	overrides := params{}
	fs.Var(overrides, "param", "template parameter override Name=Value, e.g. AuthorizerCacheTtl=0 (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	tmpl, err := sam.Load(*templatePath)
	if err != nil {
		return err
	}
	for name := range overrides {
		if !hasParameter(tmpl, name) && !strings.HasPrefix(name, "AWS::") {
			return fmt.Errorf("-param %s: the template has no such parameter", name)
		}
	}
	root := filepath.Dir(*templatePath)

	// Take the port first, so that a busy port fails before anything starts.
	addr := net.JoinHostPort(*host, strconv.Itoa(*port))
	var ln net.Listener
	if !*setupOnly {
		if ln, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("listen on %s (set PORT or -port to use another port): %w", addr, err)
		}
		defer ln.Close()
	}

	// DynamoDB Local: reuse one that answers, else start it and, unless
	// -setup, stop it again on the way out.
	script := filepath.Join(root, "infra", "dynamodb-local.sh")
	started, err := ensureDynamoDB(script, *ddbPort, stderr)
	if err != nil {
		return err
	}
	if started && !*setupOnly {
		defer func() {
			if stopErr := stopDynamoDB(script, *ddbPort, stderr); stopErr != nil && err == nil {
				err = stopErr
			}
		}()
	}
	if ctx.Err() != nil {
		return nil
	}

	endpoint := fmt.Sprintf("http://127.0.0.1:%d", *ddbPort)
	region := localstack.UseDynamoDBLocal(endpoint)
	if _, ok := overrides["DynamoDBEndpoint"]; !ok && hasParameter(tmpl, "DynamoDBEndpoint") {
		overrides["DynamoDBEndpoint"] = endpoint
	}
	if _, ok := overrides["AWS::Region"]; !ok {
		overrides["AWS::Region"] = region
	}

	client, err := lambdas.DynamoDB(ctx)
	if err != nil {
		return err
	}
	names, err := tmpl.CreateTables(ctx, client, "")
	if err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	fns := tmpl.Functions()
	if len(fns) == 0 {
		return errors.New("the template has no functions")
	}
	env := tmpl.FunctionEnv(fns[0], names, overrides)
	tables := config.TablesFromEnv(func(k string) string { return env[k] })
	seed, err := demo.Seed(ctx, client, tables, time.Now())
	if err != nil {
		return fmt.Errorf("seed demo data: %w", err)
	}

	log := slog.New(slog.NewTextHandler(stderr, nil))
	if *adminToken == "" {
		*adminToken = localstack.NewAdminToken()
	}
	gw, err := localstack.Gateway(ctx, tmpl, names, overrides, apigateway.Options{
		Region: region, Logger: log, IAMAuth: localstack.AdminBearer(*adminToken),
	})
	if err != nil {
		return err
	}
	cfg, err := tmpl.GatewayConfig(overrides)
	if err != nil {
		return err
	}

	if *setupOnly {
		fmt.Fprintf(stdout, "DynamoDB Local on %s has the tables of %s and the demo organization %s.\n", endpoint, *templatePath, seed.OrgID)
		fmt.Fprintf(stdout, "Stop it with: %s --port %d stop\n\n", script, *ddbPort)
		printUsage(stdout, "http://127.0.0.1:3000", seed) // sam local start-api's default
		return nil
	}

	base := "http://" + ln.Addr().String() // the real port, also for -port 0
	srv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	fmt.Fprintf(stdout, "API (stage %s, served without the stage prefix as sam local does) on %s\n", cfg.Stage, base)
	fmt.Fprintf(stdout, "DynamoDB Local on %s; demo organization %s. Ctrl-C stops.\n\n", endpoint, seed.OrgID)
	printUsage(stdout, base, seed)
	printAdmin(stdout, base, *adminToken, endpoint)

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(stderr, "\nshutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// printUsage prints the demo key on a line of its own and one curl command
// per endpoint.
func printUsage(w io.Writer, base string, seed demo.Result) {
	key := string(seed.RawKey) // Key's String method redacts it
	keyHeader := shellQuote("X-Api-Key: " + key)
	body := func(v any) string {
		b, _ := json.Marshal(v)
		return shellQuote(string(b))
	}
	fmt.Fprintf(w, "X-Api-Key: %s\n\n", key)
	fmt.Fprintf(w, "curl -s %s/api/credits -H %s\n\n", base, keyHeader)
	fmt.Fprintf(w, "curl -s -X POST '%s/api/contacts/create?required_credits=2' -H %s -H 'Content-Type: application/json' -d %s\n\n",
		base, keyHeader, body(map[string]any{
			"organization_id": seed.OrgID,
			"first_name":      "Ada",
			"last_name":       "Lovelace",
			"work_emails":     []string{"ada@example.com"},
		}))
	fmt.Fprintf(w, "curl -s -X POST %s/api/audiences/create -H %s -H 'Content-Type: application/json' -d %s\n",
		base, keyHeader, body(map[string]any{
			"organization_id": seed.OrgID,
			"name":            "Q4 Buyers",
			"linkedin":        true,
		}))
}

// printAdmin prints the local admin credential, an admin API call and how
// to point the admin CLI at this stack.
func printAdmin(w io.Writer, base, token, endpoint string) {
	fmt.Fprintf(w, "\nAdmin API (IAM-authorized on AWS; here: Authorization: Bearer <token>, valid for this run):\n")
	fmt.Fprintf(w, "curl -s %s/admin/orgs -H %s\n", base, shellQuote("Authorization: Bearer "+token))
	env := ""
	if endpoint != "http://127.0.0.1:8000" { // the CLI's default
		env = "AWS_ENDPOINT_URL_DYNAMODB=" + endpoint + " "
	}
	fmt.Fprintf(w, "Admin CLI: %smake admin ARGS='org show --org %s'\n", env, demo.OrgID)
}

// shellQuote wraps s in single quotes for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ensureDynamoDB runs the script's ensure command and reports whether it
// started DynamoDB Local (rather than finding one running).
func ensureDynamoDB(script string, port int, stderr io.Writer) (started bool, err error) {
	var out bytes.Buffer
	cmd := exec.Command("bash", script, "--port", strconv.Itoa(port), "ensure")
	cmd.Stdout = &out
	cmd.Stderr = stderr
	// Not bound to the signal context: a start interrupted half-way would
	// leave a Java process nobody knows to stop. The script's own start-up
	// timeout bounds this.
	if err := cmd.Run(); err != nil {
		return false, fmt.Errorf("DynamoDB Local on port %d: %w", port, err)
	}
	switch state := strings.TrimSpace(out.String()); state {
	case "started":
		return true, nil
	case "running":
		return false, nil
	default:
		return false, fmt.Errorf("unexpected answer from %s ensure: %q", script, state)
	}
}

// stopDynamoDB stops the DynamoDB Local this process started.
func stopDynamoDB(script string, port int, stderr io.Writer) error {
	cmd := exec.Command("bash", script, "--port", strconv.Itoa(port), "stop")
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("stop DynamoDB Local: %w", err)
	}
	return nil
}

func hasParameter(t *sam.Template, name string) bool {
	for _, p := range t.Parameters {
		if p.Name == name {
			return true
		}
	}
	return false
}

// envPort reads a port number from the environment, def when unset.
func envPort(getenv func(string) string, name string, def int) (int, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%s=%q is not a port number", name, v)
	}
	return n, nil
}
