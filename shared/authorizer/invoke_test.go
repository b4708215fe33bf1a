package authorizer

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
)

// Invoke must answer every event exactly as lambda.NewHandler(Handle) does.
func TestInvokeAgreesWithHandle(t *testing.T) {
	a, _, k := setup(t, nil)
	key := string(k)
	events := map[string]string{
		"allowed":              `{"methodArn":"` + arn + `","headers":{"X-Api-Key":"` + key + `"},"multiValueHeaders":{"X-Api-Key":["` + key + `"]},"requestContext":{"requestId":"r1"}}`,
		"lower-case name":      `{"methodArn":"` + arn + `","headers":{"x-api-key":" ` + key + `\t"}}`,
		"escaped value":        `{"methodArn":"` + arn + `","headers":{"X-Api-Key":"\u0063` + key[1:] + `"}}`,
		"two spellings agree":  `{"methodArn":"` + arn + `","headers":{"X-Api-Key":"` + key + `","x-API-key":"` + key + `"}}`,
		"two spellings differ": `{"methodArn":"` + arn + `","headers":{"X-Api-Key":"` + key + `","x-api-key":"other"}}`,
		"multi differs":        `{"methodArn":"` + arn + `","multiValueHeaders":{"X-Api-Key":["` + key + `","other"]}}`,
		"multi wins":           `{"methodArn":"` + arn + `","headers":{"X-Api-Key":"bad"},"multiValueHeaders":{"X-Api-Key":["` + key + `"]}}`,
		"null value":           `{"methodArn":"` + arn + `","headers":{"X-Api-Key":null}}`,
		"null list":            `{"methodArn":"` + arn + `","headers":{"X-Api-Key":"` + key + `"},"multiValueHeaders":{"X-Api-Key":null}}`,
		"no header":            `{"methodArn":"` + arn + `","headers":{"Accept":"*/*"}}`,
		"control character":    `{"methodArn":"` + arn + `","headers":{"X-Api-Key":"` + key + `\u0000"}}`,
	}
	ref := lambda.NewHandler(a.Handle)
	for name, event := range events {
		t.Run(name, func(t *testing.T) {
			want, wantErr := ref.Invoke(context.Background(), []byte(event))
			want = append([]byte(nil), want...)
			got, gotErr := a.Invoke(context.Background(), []byte(event))
			if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
				t.Fatalf("error %v, want %v", gotErr, wantErr)
			}
			if name == "allowed" && gotErr != nil {
				t.Fatalf("a valid key was refused: %v", gotErr)
			}
			if wantErr != nil {
				return
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("got %s\nwant %s", got, want)
			}
		})
	}
}
