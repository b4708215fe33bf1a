package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is everything one run measured.
type report struct {
	header  string
	calls   calls
	cells   []cell
	sizes   []size
	startup []startupResult
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func (r report) print(w io.Writer) {
	fmt.Fprintf(w, "\nmake bench: %s\n", r.header)
	fmt.Fprintln(w, "Shared or busy machines give noisy numbers; compare paths within one run.")

	fmt.Fprintln(w, "\nDynamoDB calls per request (counted by a proxy in front of DynamoDB):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  request\trequests\tcalls\tper request\tnew connections\tby operation")
	for _, row := range []struct {
		name string
		c    callCounts
	}{
		{"contacts/create, cache off", r.calls.cacheOff},
		{"contacts/create, cache warm", r.calls.cacheWarm},
		{"malformed key (7 shapes), cache off", r.calls.malformed},
	} {
		total := int64(0)
		var ops []string
		for _, op := range slices.Sorted(maps.Keys(row.c.ops)) {
			total += row.c.ops[op]
			ops = append(ops, fmt.Sprintf("%s %d", op, row.c.ops[op]))
		}
		per := 0.0
		if row.c.requests > 0 {
			per = float64(total) / float64(row.c.requests)
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%.2f\t%d\t%s\n", row.name, row.c.requests, total, per, row.c.conns, strings.Join(ops, ", "))
	}
	tw.Flush()

	fmt.Fprintln(w, "\nThroughput and latency (POST /api/contacts/create; ratio = req/s over the ceiling's at the same concurrency):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "conc\tpath\treq/s\tp50 ms\tp99 ms\trequests\terrors\tratio\tGo CPU µs/req\tJVM CPU µs/req\t")
	ceiling := map[int]float64{}
	for _, c := range r.cells {
		if c.path == pathCeiling {
			ceiling[c.conc] = c.rate()
		}
	}
	var firstErrs []string
	for _, c := range r.cells {
		ratio := ""
		if c.path != pathCeiling && ceiling[c.conc] > 0 {
			ratio = fmt.Sprintf("%.2f", c.rate()/ceiling[c.conc])
		}
		jvm := "-"
		if c.jvmCPU > 0 {
			jvm = fmt.Sprint(c.perRequest(c.jvmCPU).Microseconds())
		}
		fmt.Fprintf(tw, "%d\t%-33s\t%.0f\t%s\t%s\t%d\t%d\t%s\t%d\t%s\t\n", c.conc, c.path, c.rate(), ms(c.p50), ms(c.p99), c.n, c.errors, ratio,
			c.perRequest(c.goCPU).Microseconds(), jvm)
		if c.firstErr != nil {
			firstErrs = append(firstErrs, fmt.Sprintf("  %s at %d: %v", c.path, c.conc, c.firstErr))
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "Targets: 2/1 >= 0.5, 3/1 >= 0.8. Path 1 is one write per request; path 2 is a GetItem,")
	fmt.Fprintln(w, "the same UpdateItem and a PutItem of the contact; path 3 the two writes. The ref row")
	fmt.Fprintln(w, "sends those two writes bare, the most path 3 could reach; the second adds the GetItem, for path 2.")
	fmt.Fprintln(w, "CPU per request: this process (load generator, gateway, functions, SDK) and DynamoDB Local's JVM;")
	fmt.Fprintln(w, "on a machine whose cores are all busy, their sum bounds the rate.")
	for _, e := range firstErrs {
		fmt.Fprintln(w, "first error"+e)
	}

	if len(r.sizes) > 0 {
		fmt.Fprintln(w, "\nBootstrap sizes (linux/arm64, -tags lambda.norpc -trimpath -ldflags=\"-s -w\"; target <= 10 MiB):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, s := range r.sizes {
			if s.err != nil {
				fmt.Fprintf(tw, "  %s\t%v\n", s.function, s.err)
				continue
			}
			fmt.Fprintf(tw, "  %s\t%.2f MiB\t%d bytes\n", s.function, float64(s.bytes)/(1<<20), s.bytes)
		}
		tw.Flush()
	}
	if len(r.startup) > 0 {
		fmt.Fprintln(w, "\nStart-up against a minimal Lambda runtime API (this machine's architecture; target <= 20 ms to ready):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "function\truns\tready p50 ms\tready max ms\tfirst response p50 ms\tfirst response max ms\t")
		for _, s := range r.startup {
			if s.err != nil {
				fmt.Fprintf(tw, "%s\t%d\tfailed: %v\t\t\t\t\n", s.function, len(s.ready), s.err)
				continue
			}
			first, firstMax := "-", "-"
			if len(s.first) > 0 {
				first, firstMax = ms(pct(s.first, 50)), ms(slices.Max(s.first))
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", s.function, len(s.ready), ms(pct(s.ready, 50)), ms(slices.Max(s.ready)), first, firstMax)
		}
		tw.Flush()
		fmt.Fprintln(w, "ready: process start to its first GET /runtime/invocation/next; first response: to the answer")
		fmt.Fprintln(w, "to the function's sample event, which makes its DynamoDB calls on a fresh client.")
	}
}

// pct is the p-th percentile of ds.
func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Sorted(slices.Values(ds))
	return s[min(len(s)-1, len(s)*p/100)]
}
