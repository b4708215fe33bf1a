package apigateway

import (
	"fmt"
	"hash/fnv"
	"net/url"
	"strconv"
	"strings"
)

type segmentKind int

// Ordered by precedence: API Gateway prefers a literal resource over a path
// parameter, and a path parameter over a greedy {proxy+}.
const (
	greedySegment segmentKind = iota
	paramSegment
	literalSegment
)

type segment struct {
	kind segmentKind
	text string // the literal, or the parameter's name
}

// resource is one API Gateway resource: a path template and its methods.
type resource struct {
	path     string
	id       string // requestContext.resourceId
	segments []segment
	methods  map[string]*method // by HTTP method, "ANY" included
}

// method is a route with everything needed to serve it resolved.
type method struct {
	route    Route
	resource *resource
	function *environments
	timeout  timeouts
}

// routeMatch is a request's resolved resource.
type routeMatch struct {
	resource   *resource
	pathParams map[string]string
}

func parseTemplate(path string) ([]segment, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("path %q does not start with /", path)
	}
	if path == "/" {
		return nil, nil
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	segments := make([]segment, 0, len(parts))
	for i, p := range parts {
		switch {
		case p == "":
			return nil, fmt.Errorf("path %q has an empty segment", path)
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "+}"):
			if i != len(parts)-1 {
				return nil, fmt.Errorf("path %q: greedy %s must be the last segment", path, p)
			}
			segments = append(segments, segment{greedySegment, p[1 : len(p)-2]})
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}"):
			segments = append(segments, segment{paramSegment, p[1 : len(p)-1]})
		case strings.ContainsAny(p, "{}"):
			return nil, fmt.Errorf("path %q: segment %q mixes braces and text", path, p)
		default:
			segments = append(segments, segment{literalSegment, p})
		}
		if s := segments[len(segments)-1]; s.kind != literalSegment && s.text == "" {
			return nil, fmt.Errorf("path %q has an unnamed parameter", path)
		}
	}
	return segments, nil
}

// resourceID makes a stable, API Gateway looking resource id so that logs
// and requestContext.resourceId do not change between runs.
func resourceID(path string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(path))
	return strconv.FormatUint(uint64(h.Sum32()), 36)
}

// splitRequestPath splits the escaped path so that an encoded "/" inside a
// path parameter does not count as a separator.
func splitRequestPath(u *url.URL) ([]string, bool) {
	p := u.EscapedPath()
	if p == "" || p == "/" {
		return nil, true
	}
	p = strings.TrimSuffix(strings.TrimPrefix(p, "/"), "/")
	raw := strings.Split(p, "/")
	parts := make([]string, len(raw))
	for i, s := range raw {
		d, err := url.PathUnescape(s)
		if err != nil {
			return nil, false
		}
		parts[i] = d
	}
	return parts, true
}

// match resolves the request path to the most specific resource, comparing
// candidates segment by segment. API Gateway picks the resource first and
// the method second, so a path that exists without the requested method is
// not rescued by a less specific resource.
func match(resources []*resource, u *url.URL) (routeMatch, bool) {
	parts, ok := splitRequestPath(u)
	if !ok {
		return routeMatch{}, false
	}
	var best routeMatch
	var bestKinds []segmentKind
	for _, res := range resources {
		params, kinds, ok := res.match(parts)
		if !ok {
			continue
		}
		if best.resource == nil || moreSpecific(kinds, bestKinds) {
			best, bestKinds = routeMatch{res, params}, kinds
		}
	}
	return best, best.resource != nil
}

func (res *resource) match(parts []string) (map[string]string, []segmentKind, bool) {
	var params map[string]string
	kinds := make([]segmentKind, 0, len(res.segments))
	for i, s := range res.segments {
		if i >= len(parts) {
			return nil, nil, false
		}
		switch s.kind {
		case literalSegment:
			if parts[i] != s.text {
				return nil, nil, false
			}
		case paramSegment, greedySegment:
			value := parts[i]
			if s.kind == greedySegment {
				value = strings.Join(parts[i:], "/")
			}
			if value == "" {
				return nil, nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[s.text] = value
			if s.kind == greedySegment {
				return params, append(kinds, s.kind), true
			}
		}
		kinds = append(kinds, s.kind)
	}
	if len(parts) != len(res.segments) {
		return nil, nil, false
	}
	return params, kinds, true
}

func moreSpecific(a, b []segmentKind) bool {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return len(a) > len(b)
}
