package apigateway

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-lambda-go/lambda"
)

// maxEnvironments bounds how many execution environments one function may
// have locally; requests beyond it wait for one to be free, within the
// integration timeout.
const maxEnvironments = 100

// environments is a function's pool of execution environments. Like Lambda,
// an environment serves one invocation at a time and concurrency comes from
// more environments. This is not only faithful but necessary: a handler
// built with lambda.NewHandler returns output bytes that alias a buffer it
// reuses on its next invocation (aws-lambda-go v1.55.1; fix proposed in
// aws/aws-lambda-go#639), so one handler value must never serve two
// invocations at once, and its output must be copied before it serves again.
type environments struct {
	function string
	idle     chan lambda.Handler
	spawn    func(ctx context.Context, function string) (lambda.Handler, error)

	mu    sync.Mutex
	count int
}

func newEnvironments(function string, first lambda.Handler, spawn func(context.Context, string) (lambda.Handler, error)) *environments {
	e := &environments{function: function, idle: make(chan lambda.Handler, maxEnvironments), spawn: spawn, count: 1}
	e.idle <- first
	return e
}

// acquire returns an idle environment, starts a new one when none is idle
// and Options.Spawn allows it, or waits for one until ctx is done.
func (e *environments) acquire(ctx context.Context) (lambda.Handler, error) {
	select {
	case h := <-e.idle:
		return h, nil
	default:
	}
	if e.spawn != nil && e.reserve() {
		h, err := e.spawn(ctx, e.function)
		if err == nil && h == nil {
			err = fmt.Errorf("spawn returned no handler for %s", e.function)
		}
		if err != nil {
			e.mu.Lock()
			e.count--
			e.mu.Unlock()
			return nil, fmt.Errorf("start an environment for %s: %w", e.function, err)
		}
		return h, nil
	}
	select {
	case h := <-e.idle:
		return h, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *environments) reserve() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.count >= maxEnvironments {
		return false
	}
	e.count++
	return true
}

// release makes h available again. It never blocks: the channel holds as
// many handlers as can exist.
func (e *environments) release(h lambda.Handler) {
	e.idle <- h
}
