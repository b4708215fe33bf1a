package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRun serves the template against the DynamoDB Local that make test
// runs, calls the API with the printed key and stops with the context.
func TestRun(t *testing.T) {
	endpoint := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB")
	if endpoint == "" {
		t.Skip("AWS_ENDPOINT_URL_DYNAMODB is not set; make test runs this against DynamoDB Local")
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	// run changes these for the process; put them back afterwards.
	for _, k := range []string{"AWS_ENDPOINT_URL_DYNAMODB", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		if v, ok := os.LookupEnv(k); ok {
			t.Setenv(k, v)
		} else {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		// -port 0: any free port. The DynamoDB Local of make test already
		// answers on the port, so run neither starts nor stops one.
		done <- run(ctx, []string{"-template", "../../template.yaml", "-port", "0", "-ddb-port", u.Port()},
			func(string) string { return "" }, pw, io.Discard)
		pw.Close()
	}()

	var key, creditsCurl, adminCurl string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		if k, ok := strings.CutPrefix(line, "X-Api-Key: "); ok {
			key = k
		}
		if strings.HasPrefix(line, "curl -s http") && strings.Contains(line, "/api/credits") {
			creditsCurl = line
		}
		if strings.HasPrefix(line, "curl -s http") && strings.Contains(line, "/admin/orgs") {
			adminCurl = line
		}
		if strings.HasPrefix(line, "Admin CLI:") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if key == "" || creditsCurl == "" {
		cancel()
		t.Fatalf("no key or curl line printed (run: %v)", <-done)
	}
	if !strings.HasPrefix(key, "cl_") || strings.Contains(key, "…") {
		t.Errorf("printed key %q is not a raw key", key)
	}
	target := strings.Fields(creditsCurl)[2]

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	req.Header.Set("X-Api-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"organization_id":"org_demo"`) {
		t.Errorf("GET %s: %d %s", target, resp.StatusCode, body)
	}

	resp, err = http.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || string(body) != `{"detail": "Invalid or missing API key"}` {
		t.Errorf("GET without a key: %d %s", resp.StatusCode, body)
	}

	// The printed admin credential, and nothing else, opens the admin API.
	adminURL, token := strings.Fields(adminCurl)[2], strings.TrimSuffix(strings.Fields(adminCurl)[6], "'")
	for header, want := range map[string]int{"Authorization: Bearer " + token: 200, "X-Api-Key: " + key: 404, "Authorization: Bearer x": 401} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, adminURL, nil)
		name, value, _ := strings.Cut(header, ": ")
		req.Header.Set(name, value)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s with %s: %d %s, want %d", adminURL, name, resp.StatusCode, body, want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
