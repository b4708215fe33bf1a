package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// size is one bootstrap's size on disk.
type size struct {
	function string
	bytes    int64
	err      error
}

// bootstrapSizes stats dir/<Function>/bootstrap for every function of the template.
func bootstrapSizes(fx interface{ Functions() []string }, dir string) []size {
	var out []size
	for _, fn := range fx.Functions() {
		st, err := os.Stat(filepath.Join(dir, fn, "bootstrap"))
		if err != nil {
			out = append(out, size{function: fn, err: err})
			continue
		}
		out = append(out, size{function: fn, bytes: st.Size()})
	}
	return out
}

// sampleEvents names each function's sample event under events/. A function
// without one is only timed to ready.
var sampleEvents = map[string]string{
	"AuthorizerFunction": "authorizer.json",
	"CreditsFunction":    "credits.json",
	"ContactsFunction":   "contacts-create.json",
	"AudiencesFunction":  "audiences-create.json",
}

// The sample events' placeholder key and organization, replaced by the run's.
const (
	sampleKey = "cl_kLexTS2hDEDClBaK4WuM1T3iq2UTIZ7N94TEb6TG6Wk1wRdmQ"
	sampleOrg = "org_demo"
)

// startupResult is one function's start-up times over several process starts.
type startupResult struct {
	function string
	ready    []time.Duration
	first    []time.Duration
	err      error
}

// startupAll times every function's bootstrap under dir.
func startupAll(ctx context.Context, fx fixture, root, dir string, runs int) ([]startupResult, error) {
	home, err := os.MkdirTemp("", "bench-home")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(home)
	var out []startupResult
	for _, fn := range fx.tmpl.Functions() {
		res := startupResult{function: fn}
		bin, err := filepath.Abs(filepath.Join(dir, fn, "bootstrap"))
		if err != nil {
			return nil, err
		}
		var event []byte
		if name, ok := sampleEvents[fn]; ok {
			if event, err = os.ReadFile(filepath.Join(root, "events", name)); err != nil {
				return nil, err
			}
			event = bytes.ReplaceAll(event, []byte(sampleKey), []byte(fx.key))
			event = bytes.ReplaceAll(event, []byte(`"`+sampleOrg+`"`), []byte(`"`+benchOrg+`"`))
			// The endpoints' sample bodies carry the organization in escaped JSON.
			event = bytes.ReplaceAll(event, []byte(`\"`+sampleOrg+`\"`), []byte(`\"`+benchOrg+`\"`))
		}
		env := lambdaEnv(fx, fn, home)
		for range runs {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			ready, first, err := startOnce(ctx, bin, env, event)
			if err != nil {
				res.err = err
				break
			}
			res.ready = append(res.ready, ready)
			if event != nil {
				res.first = append(res.first, first)
			}
		}
		out = append(out, res)
	}
	return out, nil
}

// lambdaEnv is the environment Lambda gives fn: the template's variables and
// the runtime's own, and nothing of this process's (no profile, no ~/.aws).
func lambdaEnv(fx fixture, fn, home string) []string {
	params := map[string]string{"AWS::Region": fx.region}
	if hasParameter(fx, "DynamoDBEndpoint") {
		params["DynamoDBEndpoint"] = fx.endpoint
	}
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + home,
		"TZ=:UTC",
		"_HANDLER=bootstrap",
		"AWS_REGION=" + fx.region,
		"AWS_DEFAULT_REGION=" + fx.region,
		"AWS_ACCESS_KEY_ID=local",
		"AWS_SECRET_ACCESS_KEY=local",
		"AWS_SESSION_TOKEN=local",
		"AWS_LAMBDA_FUNCTION_NAME=" + fn,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
	}
	for k, v := range fx.tmpl.FunctionEnv(fn, fx.names, params) {
		env = append(env, k+"="+v)
	}
	return env
}

// runtimeAPI is the part of the Lambda runtime API a Go function uses before
// and during its first invocation.
type runtimeAPI struct {
	event  []byte
	mu     sync.Mutex
	nexts  int
	ready  chan time.Time
	answer chan answer
}

type answer struct {
	at    time.Time
	body  []byte
	isErr bool
}

func (rt *runtimeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const prefix = "/2018-06-01/runtime/"
	path := strings.TrimPrefix(r.URL.Path, prefix)
	switch {
	case r.Method == http.MethodGet && path == "invocation/next":
		rt.mu.Lock()
		rt.nexts++
		n := rt.nexts
		rt.mu.Unlock()
		if n == 1 {
			rt.ready <- time.Now()
		}
		if n > 1 || rt.event == nil {
			// No second invocation: wait until the process is stopped.
			<-r.Context().Done()
			return
		}
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", "00000000-0000-4000-8000-000000000001")
		h.Set("Lambda-Runtime-Deadline-Ms", fmt.Sprint(time.Now().Add(10*time.Second).UnixMilli()))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench")
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000001")
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(rt.event)
	case r.Method == http.MethodPost && strings.HasPrefix(path, "invocation/"):
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		rt.answer <- answer{at: time.Now(), body: body, isErr: strings.HasSuffix(path, "/error")}
	case r.Method == http.MethodPost && path == "init/error":
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		rt.answer <- answer{at: time.Now(), body: body, isErr: true}
	default:
		http.NotFound(w, r)
	}
}

// startOnce starts the bootstrap and returns the time from process start to
// its first request for an invocation, and to its answer to event (when
// there is one). The answer must be a success: an allow policy from the
// authorizer, status 200 from an endpoint.
func startOnce(ctx context.Context, bin string, env []string, event []byte) (ready, first time.Duration, err error) {
	rt := &runtimeAPI{event: event, ready: make(chan time.Time, 1), answer: make(chan answer, 2)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	srv := &http.Server{Handler: rt, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	env = append(env[:len(env):len(env)], "AWS_LAMBDA_RUNTIME_API="+ln.Addr().String())
	var logs bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout = &logs
	cmd.Stderr = &logs
	exited := make(chan error, 1)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()

	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	select {
	case t := <-rt.ready:
		ready = t.Sub(start)
	case a := <-rt.answer:
		return 0, 0, fmt.Errorf("init error: %.300s", a.body)
	case err := <-exited:
		exited <- err
		return 0, 0, fmt.Errorf("exited before asking for an invocation (%v): %.300s", err, logs.String())
	case <-timeout.C:
		return 0, 0, errors.New("no request for an invocation within 10s")
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	if event == nil {
		return ready, 0, nil
	}
	select {
	case a := <-rt.answer:
		if a.isErr || !(bytes.Contains(a.body, []byte(`"Allow"`)) || bytes.Contains(a.body, []byte(`"statusCode":200`))) {
			return 0, 0, fmt.Errorf("first invocation failed: %.300s", a.body)
		}
		first = a.at.Sub(start)
	case err := <-exited:
		exited <- err
		return 0, 0, fmt.Errorf("exited during the first invocation (%v): %.300s", err, logs.String())
	case <-timeout.C:
		return 0, 0, errors.New("no answer to the first invocation within 10s")
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	return ready, first, nil
}
