package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/contactlevel/metering/shared/apigateway"
	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/crm"
	"github.com/contactlevel/metering/shared/dynamo"
	"github.com/contactlevel/metering/shared/localstack"
)

// contactBody is what every end-to-end request creates: the sample event's
// contact, for the benchmark's organization.
var contactBody = mustJSON(map[string]any{
	"organization_id": benchOrg,
	"first_name":      "Ada",
	"last_name":       "Lovelace",
	"job_title":       "Analyst",
	"company_name":    "Analytical Engines",
	"work_emails":     []string{"ada@example.com"},
	"phones":          []string{"+44 20 7946 0000"},
	"country":         "GB",
})

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// cacheOnTTL is the authorizer cache TTL of the warm cells: longer than any run.
const cacheOnTTL = "3600"

// api is the template's API served over HTTP on 127.0.0.1.
type api struct {
	url string
	srv *http.Server
}

// serve builds the gateway with the template's functions, with the given
// authorizer cache TTL, talking to DynamoDB at endpoint. The SDK inside each
// function reads its endpoint from the process environment when an
// execution environment starts, so endpoint must also be what
// AWS_ENDPOINT_URL_DYNAMODB says while the API runs.
func serve(ctx context.Context, fx fixture, ttl, endpoint string) (*api, error) {
	params := map[string]string{"AuthorizerCacheTtl": ttl, "AWS::Region": fx.region}
	if hasParameter(fx, "DynamoDBEndpoint") {
		params["DynamoDBEndpoint"] = endpoint
	}
	gw, err := localstack.Gateway(ctx, fx.tmpl, fx.names, params, apigateway.Options{Region: fx.region})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &api{url: "http://" + ln.Addr().String(), srv: srv}, nil
}

func (a *api) close() { _ = a.srv.Close() }

func hasParameter(fx fixture, name string) bool {
	for _, p := range fx.tmpl.Parameters {
		if p.Name == name {
			return true
		}
	}
	return false
}

// httpClient keeps one connection per concurrent caller alive, as a client
// of API Gateway would, so that the measurement is not of TCP set-up.
func httpClient(conc int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = conc * 2
	t.MaxIdleConnsPerHost = conc * 2
	return &http.Client{Transport: t, Timeout: 60 * time.Second}
}

// post sends one contacts/create with key and reports any status but want.
func post(ctx context.Context, c *http.Client, base, key string, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/contacts/create", bytes.NewReader(contactBody))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("X-Api-Key", key)
	}
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != want {
		return fmt.Errorf("status %d, want %d: %.200s", res.StatusCode, want, body)
	}
	return nil
}

// callCounts is what the counting proxy saw.
type callCounts struct {
	requests int
	ops      map[string]int64
	conns    int64 // connections the SDK clients opened to DynamoDB
}

// calls is the DynamoDB traffic per kind of request.
type calls struct {
	cacheOff, cacheWarm callCounts
	malformed           callCounts
}

// counter is a reverse proxy to DynamoDB that counts requests by operation
// (the X-Amz-Target header of DynamoDB's JSON protocol).
type counter struct {
	mu    sync.Mutex
	ops   map[string]int64
	conns int64
}

func (c *counter) take() (map[string]int64, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops, conns := c.ops, c.conns
	c.ops, c.conns = map[string]int64{}, 0
	return ops, conns
}

// countCalls serves the API once more through a counting proxy and sends
// valid requests with the cache off and warm, then malformed keys of every
// kind, and reports the DynamoDB calls each made.
func countCalls(ctx context.Context, fx fixture, malformed int) (calls, error) {
	target, err := url.Parse(fx.endpoint)
	if err != nil {
		return calls{}, err
	}
	cnt := &counter{ops: map[string]int64{}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return calls{}, err
	}
	psrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.Header.Get("X-Amz-Target")
		if _, after, ok := strings.Cut(op, "."); ok {
			op = after
		}
		cnt.mu.Lock()
		cnt.ops[op]++
		cnt.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			cnt.mu.Lock()
			cnt.conns++
			cnt.mu.Unlock()
		}
	}}
	go func() { _ = psrv.Serve(ln) }()
	defer psrv.Close()
	proxyURL := "http://" + ln.Addr().String()

	os.Setenv("AWS_ENDPOINT_URL_DYNAMODB", proxyURL)
	defer os.Setenv("AWS_ENDPOINT_URL_DYNAMODB", fx.endpoint)

	var out calls
	client := httpClient(8)
	const valid = 20
	for _, mode := range []struct {
		ttl  string
		into *callCounts
	}{{"0", &out.cacheOff}, {cacheOnTTL, &out.cacheWarm}} {
		a, err := serve(ctx, fx, mode.ttl, proxyURL)
		if err != nil {
			return calls{}, err
		}
		// One request first, so that the warm case starts warm and both
		// start with execution environments that have seen the balance.
		if err := post(ctx, client, a.url, string(fx.key), http.StatusOK); err != nil {
			a.close()
			return calls{}, err
		}
		cnt.take()
		for range valid {
			if err := post(ctx, client, a.url, string(fx.key), http.StatusOK); err != nil {
				a.close()
				return calls{}, err
			}
		}
		ops, conns := cnt.take()
		*mode.into = callCounts{requests: valid, ops: ops, conns: conns}
		if mode.ttl != "0" {
			a.close()
			continue
		}

		// Malformed keys with the cache off, so that every one reaches the
		// authorizer: each shape the authorizer must refuse on its own.
		k := string(fx.key)
		shapes := []string{
			k[:len(k)-1] + flip(k[len(k)-1]), // checksum wrong
			k[:len(k)-1],                     // too short
			k + "0",                          // too long
			"sk" + k[2:],                     // wrong prefix
			k[:10] + "-" + k[11:],            // outside the alphabet
			"Bearer " + k,                    // not just the key
			"",                               // no header at all
		}
		var wg sync.WaitGroup
		var failed atomic.Value
		var next atomic.Int64
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= int64(malformed) {
						return
					}
					if err := post(ctx, client, a.url, shapes[i%int64(len(shapes))], http.StatusUnauthorized); err != nil {
						failed.CompareAndSwap(nil, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		a.close()
		if err, _ := failed.Load().(error); err != nil {
			return calls{}, fmt.Errorf("malformed key: %w", err)
		}
		ops, conns = cnt.take()
		out.malformed = callCounts{requests: malformed, ops: ops, conns: conns}
	}
	return out, nil
}

// flip is another base62 character than c.
func flip(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}

// Paths measured, in the order the table shows them.
const (
	pathCeiling = "1 ceiling: UpdateItem"
	pathOff     = "2 e2e, cache off"
	pathWarm    = "3 e2e, cache warm"
	pathWrites  = "  ref: UpdateItem+PutItem"
	pathAll     = "  ref: GetItem+UpdateItem+PutItem"
)

// jvmWarmupConc is the concurrency of the JVM warm-up.
const jvmWarmupConc = 8

// cell is one path at one concurrency.
type cell struct {
	path string
	conc int
	stats
}

// throughput runs every path at every concurrency, interleaved so that a
// change in the machine's load during the run hits all paths alike.
func throughput(ctx context.Context, fx fixture, o options, clock cpuClock, stderr io.Writer) ([]cell, error) {
	off, err := serve(ctx, fx, "0", fx.endpoint)
	if err != nil {
		return nil, err
	}
	defer off.close()
	warm, err := serve(ctx, fx, cacheOnTTL, fx.endpoint)
	if err != nil {
		return nil, err
	}
	defer warm.close()

	// One SDK client per worker, as each execution environment has its own.
	maxConc := max(slices.Max(o.concurrency), jvmWarmupConc)
	clients := make([]*dynamodb.Client, maxConc)
	for i := range clients {
		if clients[i], err = newClient(ctx); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	plan, err := credits.PlanDebit(credits.Balance{Subscription: 1 << 40}, 1, now)
	if err != nil {
		return nil, err
	}
	ceilingIn, err := dynamo.DebitInput(fx.tables.Orgs, benchOrg, plan)
	if err != nil {
		return nil, err
	}
	ceiling := func(ctx context.Context, w int) error {
		_, err := clients[w].UpdateItem(ctx, ceilingIn)
		return err
	}
	hash := fx.key.Hash()
	writes := func(ctx context.Context, w int) error {
		if _, err := clients[w].UpdateItem(ctx, ceilingIn); err != nil {
			return err
		}
		return dynamo.Contacts{Client: clients[w], Table: fx.tables.Contacts}.Put(ctx, crm.Contact{
			OrgID: benchOrg, ID: "c" + strconv.Itoa(w) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36),
			CreatedAt: now.UTC().Format(time.RFC3339),
		})
	}

	// DynamoDB Local's JVM compiles its hot paths during the first seconds
	// of load; warm it up on the mix of calls the paths make, so that the
	// first cell measured (the ceiling at the lowest concurrency) is not
	// also the one that pays for it.
	if o.jvmWarmup > 0 {
		fmt.Fprintf(stderr, "bench: warming up DynamoDB Local for %v\n", o.jvmWarmup)
		client := httpClient(jvmWarmupConc)
		measure(ctx, jvmWarmupConc, o.jvmWarmup, func(ctx context.Context, w int) error {
			if w%2 == 0 {
				return post(ctx, client, off.url, string(fx.key), http.StatusOK)
			}
			return ceiling(ctx, w)
		})
		client.CloseIdleConnections()
	}

	var cells []cell
	for _, c := range o.concurrency {
		client := httpClient(c)
		e2e := func(a *api) func(context.Context, int) error {
			return func(ctx context.Context, _ int) error {
				return post(ctx, client, a.url, string(fx.key), http.StatusOK)
			}
		}
		paths := []struct {
			name string
			do   func(context.Context, int) error
		}{
			{pathCeiling, ceiling},
			{pathOff, e2e(off)},
			{pathWarm, e2e(warm)},
			{pathWrites, writes},
			{pathAll, func(ctx context.Context, w int) error {
				keys := dynamo.Keys{Client: clients[w], Table: fx.tables.Keys}
				if _, err := keys.Lookup(ctx, hash); err != nil {
					return err
				}
				return writes(ctx, w)
			}},
		}
		if o.paths != "" {
			paths = slices.DeleteFunc(paths, func(p struct {
				name string
				do   func(context.Context, int) error
			}) bool {
				return !strings.Contains(o.paths, strings.TrimSpace(p.name)[:1])
			})
		}
		for _, p := range paths {
			measure(ctx, c, o.warmup, p.do)
		}
		// Each path's time is spread over rounds that take turns, so that
		// whatever else the machine does during the run falls on every
		// path alike rather than on whichever ran at the time.
		got := make([]stats, len(paths))
		for round := range o.rounds {
			for i, p := range paths {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				fmt.Fprintf(stderr, "bench: concurrency %d, round %d/%d, %s\n", c, round+1, o.rounds, p.name)
				before := clock.now()
				st := measure(ctx, c, o.duration/time.Duration(o.rounds), p.do)
				after := clock.now()
				st.goCPU, st.jvmCPU = after.self-before.self, after.jvm-before.jvm
				got[i] = got[i].add(st)
			}
		}
		for i, p := range paths {
			cells = append(cells, cell{path: p.name, conc: c, stats: got[i].summarise()})
		}
		client.CloseIdleConnections()
	}
	return cells, nil
}

// stats summarises one measurement.
type stats struct {
	n        int
	errors   int
	firstErr error
	elapsed  time.Duration
	p50, p99 time.Duration
	lat      []time.Duration // sorted by summarise
	// CPU time this process and DynamoDB Local spent during the measurement.
	goCPU, jvmCPU time.Duration
}

// add merges another measurement of the same path.
func (s stats) add(o stats) stats {
	s.n += o.n
	s.errors += o.errors
	if s.firstErr == nil {
		s.firstErr = o.firstErr
	}
	s.elapsed += o.elapsed
	s.goCPU += o.goCPU
	s.jvmCPU += o.jvmCPU
	s.lat = append(s.lat, o.lat...)
	return s
}

// summarise computes the percentiles.
func (s stats) summarise() stats {
	slices.Sort(s.lat)
	if len(s.lat) > 0 {
		s.p50 = s.lat[len(s.lat)*50/100]
		s.p99 = s.lat[min(len(s.lat)-1, len(s.lat)*99/100)]
	}
	return s
}

// perRequest is d spread over the requests made.
func (s stats) perRequest(d time.Duration) time.Duration {
	if s.n == 0 {
		return 0
	}
	return d / time.Duration(s.n)
}

func (s stats) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.n) / s.elapsed.Seconds()
}

// measure runs do from conc goroutines for d and reports throughput and
// latency; a call's latency counts whether it failed or not.
func measure(ctx context.Context, conc int, d time.Duration, do func(ctx context.Context, worker int) error) stats {
	lat := make([][]time.Duration, conc)
	errs := make([]int, conc)
	var firstErr atomic.Value
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t := time.Now()
				if !t.Before(deadline) {
					return
				}
				err := do(ctx, w)
				lat[w] = append(lat[w], time.Since(t))
				if err != nil {
					errs[w]++
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	s := stats{elapsed: time.Since(start), lat: slices.Concat(lat...)}
	s.n = len(s.lat)
	for _, e := range errs {
		s.errors += e
	}
	s.firstErr, _ = firstErr.Load().(error)
	return s.summarise()
}
