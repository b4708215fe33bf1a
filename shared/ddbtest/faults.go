package ddbtest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Fault is what an injected failure does to one DynamoDB request.
type Fault int

// The faults a test can inject.
const (
	// Throttle answers 400 ThrottlingException without sending the
	// request: DynamoDB refused it and nothing changed.
	Throttle Fault = iota + 1
	// Unavailable answers 500 InternalServerError without sending it.
	Unavailable
	// LostAnswer sends the request, so it takes effect, then answers 500
	// as if the response had been lost on its way back.
	LostAnswer
	// TimeoutAfter sends the request, then fails with a network timeout.
	TimeoutAfter
	// Hang never answers: the request waits until its context ends, as
	// with a DynamoDB that accepted the connection and went silent.
	Hang
	// Conflict answers, without sending, as DynamoDB does when the item is
	// locked by another transaction: TransactionConflictException for a
	// single-item write, a transaction cancelled with TransactionConflict as
	// the first item's reason for TransactWriteItems.
	Conflict
)

// String names the fault for test output.
func (f Fault) String() string {
	return [...]string{"none", "throttle", "unavailable", "lost-answer", "timeout-after", "hang", "conflict"}[f]
}

// Rule injects Fault into the next Times requests of operation Op (e.g.
// "UpdateItem") whose body mentions Table (a table name; "" for any),
// after letting the first Skip of them through.
type Rule struct {
	Op    string
	Table string
	Fault Fault
	Times int
	Skip  int
}

// Faults is an http.RoundTripper for a DynamoDB client in tests: it passes
// requests to DynamoDB Local and fails the ones its rules match, the way a
// network or DynamoDB itself would, below the SDK's retryer so that the
// SDK's own retries are part of what is tested.
type Faults struct {
	Next http.RoundTripper

	mu       sync.Mutex
	rules    []*Rule
	calls    map[string]int
	injected atomic.Int64
}

// Calls is how many requests of operation op (e.g. "UpdateItem") went
// through, faulted or not.
func (f *Faults) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Add arms a rule.
func (f *Faults) Add(r Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, &r)
}

// Clear disarms every rule.
func (f *Faults) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// Injected is how many faults have been injected so far.
func (f *Faults) Injected() int64 { return f.injected.Load() }

func (f *Faults) match(op string, body []byte) Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
	for _, r := range f.rules {
		if r.Times > 0 && r.Op == op && (r.Table == "" || bytes.Contains(body, []byte(`"`+r.Table+`"`))) {
			if r.Skip > 0 {
				r.Skip--
				return 0
			}
			r.Times--
			f.injected.Add(1)
			return r.Fault
		}
	}
	return 0
}

// RoundTrip implements http.RoundTripper.
func (f *Faults) RoundTrip(req *http.Request) (*http.Response, error) {
	next := f.Next
	if next == nil {
		next = http.DefaultTransport
	}
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	_, op, _ := strings.Cut(req.Header.Get("X-Amz-Target"), ".")
	switch f.match(op, body) {
	case Throttle:
		return apiError(req, http.StatusBadRequest, "ThrottlingException", "injected: rate of requests exceeds the allowed throughput"), nil
	case Unavailable:
		return apiError(req, http.StatusInternalServerError, "InternalServerError", "injected: internal server error"), nil
	case LostAnswer:
		if res, err := next.RoundTrip(req); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		return apiError(req, http.StatusInternalServerError, "InternalServerError", "injected: answer lost"), nil
	case TimeoutAfter:
		if res, err := next.RoundTrip(req); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: timeoutError{}}
	case Hang:
		<-req.Context().Done()
		return nil, req.Context().Err()
	case Conflict:
		if op == "TransactWriteItems" {
			body := `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException",` +
				`"Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict, None]",` +
				`"CancellationReasons":[{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"},{"Code":"None"}]}`
			return response(req, http.StatusBadRequest, "TransactionCanceledException", body), nil
		}
		return apiError(req, http.StatusBadRequest, "TransactionConflictException", "injected: transaction is ongoing for the item"), nil
	}
	return next.RoundTrip(req)
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "injected: i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func apiError(req *http.Request, status int, code, msg string) *http.Response {
	return response(req, status, code, fmt.Sprintf(`{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":%q}`, code, msg))
}

func response(req *http.Request, status int, code, body string) *http.Response {
	return &http.Response{
		StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amzn-Errortype": {code}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

// ClientWith returns a client like s.Client whose requests go through rt.
func (s *Stack) ClientWith(rt http.RoundTripper) *dynamodb.Client {
	return dynamodb.New(s.Client.Options(), func(o *dynamodb.Options) {
		o.HTTPClient = &http.Client{Transport: rt}
	})
}
