package lambdas_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/contactlevel/metering/shared/lambdas"
)

func TestCallContext(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		deadline time.Time // zero: none
		want     time.Time
	}{
		{"no deadline", time.Time{}, now.Add(lambdas.MaxCallTime)},
		{"plenty left", now.Add(9 * time.Second), now.Add(8 * time.Second)},
		{"less than the reserve", now.Add(600 * time.Millisecond), now.Add(300 * time.Millisecond)},
	}
	for _, c := range cases {
		ctx := context.Background()
		if !c.deadline.IsZero() {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, c.deadline)
			defer cancel()
		}
		got, cancel := lambdas.CallContext(ctx, now)
		dl, _ := got.Deadline()
		cancel()
		if !dl.Equal(c.want) {
			t.Errorf("%s: deadline %v, want %v", c.name, dl, c.want)
		}
	}
}

// roundTripper records the deadline each request carries and fails it, so
// the test sees how many attempts the SDK made and within what time.
type roundTripper struct {
	deadlines []time.Time
}

func (r *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	dl, _ := req.Context().Deadline()
	r.deadlines = append(r.deadlines, dl)
	return nil, errors.New("connection refused")
}

func TestEveryCallIsBoundedByTheInvocationDeadline(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1")
	base, err := lambdas.DynamoDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rt := &roundTripper{}
	client := dynamodb.New(base.Options(), func(o *dynamodb.Options) { o.HTTPClient = &http.Client{Transport: rt} })
	invocation := time.Now().Add(time.Hour) // as the Lambda runtime sets it
	ctx, cancel := context.WithDeadline(context.Background(), invocation)
	defer cancel()
	_, err = client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("t"), Key: map[string]types.AttributeValue{"k": &types.AttributeValueMemberS{Value: "v"}}})
	if err == nil {
		t.Fatal("no error")
	}
	if len(rt.deadlines) != lambdas.MaxAttempts {
		t.Fatalf("%d attempts, want the bound %d (%v)", len(rt.deadlines), lambdas.MaxAttempts, err)
	}
	for _, dl := range rt.deadlines {
		if !dl.Equal(invocation.Add(-lambdas.DeadlineReserve)) {
			t.Fatalf("attempt deadline %v, want the invocation's minus the reserve %v", dl, invocation.Add(-lambdas.DeadlineReserve))
		}
	}
}
