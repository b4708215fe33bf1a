// Package sam reads the project's AWS SAM template (template.yaml) so that
// local tools run exactly what will be deployed: the DynamoDB tables, the
// functions' environment and the API Gateway routes, authorizer and Gateway
// Responses all come from the one file instead of being written down twice.
//
// It understands the subset of SAM and CloudFormation the project uses, and
// reports anything else as an error rather than guessing.
package sam

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Resource types this package knows about.
const (
	TypeFunction = "AWS::Serverless::Function"
	TypeAPI      = "AWS::Serverless::Api"
	TypeTable    = "AWS::DynamoDB::Table"
)

// Template is a parsed SAM template. Intrinsic functions are normalised to
// their long JSON form whatever way they were written: !Ref X becomes
// map[string]any{"Ref": "X"}, !GetAtt X.Arn becomes
// map[string]any{"Fn::GetAtt": []any{"X", "Arn"}}, !Sub s becomes
// map[string]any{"Fn::Sub": s}, and so on.
type Template struct {
	// Parameters lists the template's parameters in the order they are written.
	Parameters []Parameter
	// Globals is the template's Globals section, e.g. Globals["Function"].
	Globals map[string]any
	// Conditions is the template's Conditions section, by condition name.
	Conditions map[string]any
	// Resources maps each logical ID to its resource.
	Resources map[string]*Resource
	// Order lists the logical IDs of Resources in the order they are written.
	Order []string
}

// Parameter is one entry of the template's Parameters section.
type Parameter struct {
	Name string
	Type string // String, Number, ...
	// Default is the default value as a string ("60" for Number 60); it is
	// meaningful only when HasDefault is true.
	Default    string
	HasDefault bool
}

// Resource is one entry of the template's Resources section.
type Resource struct {
	LogicalID  string         // e.g. KeysTable
	Type       string         // e.g. AWS::DynamoDB::Table
	Properties map[string]any // nil when the resource has none
	Metadata   map[string]any // nil when the resource has none
}

// Load reads and parses the SAM template at path.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse parses a SAM template from YAML (or JSON, which is YAML) text.
func Parse(data []byte) (*Template, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty template")
		}
		return nil, err
	}
	root, err := convert(&doc)
	if err != nil {
		return nil, err
	}
	top, ok := root.(map[string]any)
	if !ok {
		return nil, errors.New("template is not a mapping")
	}
	t := &Template{Resources: map[string]*Resource{}}

	if g, ok := top["Globals"]; ok {
		if t.Globals, ok = g.(map[string]any); !ok {
			return nil, errors.New("Globals is not a mapping")
		}
	}

	if c, ok := top["Conditions"]; ok {
		if t.Conditions, ok = c.(map[string]any); !ok {
			return nil, errors.New("Conditions is not a mapping")
		}
	}

	for _, name := range orderedKeys(&doc, "Parameters") {
		spec, ok := top["Parameters"].(map[string]any)[name].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("parameter %s is not a mapping", name)
		}
		p := Parameter{Name: name}
		p.Type, _ = spec["Type"].(string)
		if d, ok := spec["Default"]; ok {
			s, err := scalarString(d)
			if err != nil {
				return nil, fmt.Errorf("parameter %s: Default: %w", name, err)
			}
			p.Default, p.HasDefault = s, true
		}
		t.Parameters = append(t.Parameters, p)
	}

	for _, id := range orderedKeys(&doc, "Resources") {
		spec, ok := top["Resources"].(map[string]any)[id].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("resource %s is not a mapping", id)
		}
		r := &Resource{LogicalID: id}
		if r.Type, ok = spec["Type"].(string); !ok {
			return nil, fmt.Errorf("resource %s has no Type", id)
		}
		if p, ok := spec["Properties"]; ok && p != nil {
			if r.Properties, ok = p.(map[string]any); !ok {
				return nil, fmt.Errorf("resource %s: Properties is not a mapping", id)
			}
		}
		if m, ok := spec["Metadata"]; ok && m != nil {
			if r.Metadata, ok = m.(map[string]any); !ok {
				return nil, fmt.Errorf("resource %s: Metadata is not a mapping", id)
			}
		}
		t.Resources[id] = r
		t.Order = append(t.Order, id)
	}
	return t, nil
}

// Defaults returns every parameter that has a default, by name.
func (t *Template) Defaults() map[string]string {
	m := map[string]string{}
	for _, p := range t.Parameters {
		if p.HasDefault {
			m[p.Name] = p.Default
		}
	}
	return m
}

// parameter returns the parameter called name.
func (t *Template) parameter(name string) (Parameter, bool) {
	for _, p := range t.Parameters {
		if p.Name == name {
			return p, true
		}
	}
	return Parameter{}, false
}

// ofType lists the logical IDs of the resources of one type, in template order.
func (t *Template) ofType(typ string) []string {
	var ids []string
	for _, id := range t.Order {
		if t.Resources[id].Type == typ {
			ids = append(ids, id)
		}
	}
	return ids
}

// orderedKeys returns the keys of the top-level mapping section in document
// order (Go maps forget it).
func orderedKeys(doc *yaml.Node, section string) []string {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != section {
			continue
		}
		v := n.Content[i+1]
		for v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		if v.Kind != yaml.MappingNode {
			return nil
		}
		keys := make([]string, 0, len(v.Content)/2)
		for j := 0; j+1 < len(v.Content); j += 2 {
			keys = append(keys, v.Content[j].Value)
		}
		return keys
	}
	return nil
}

// intrinsic maps a CloudFormation short-form tag to the long form key.
func intrinsic(tag string) string {
	if !strings.HasPrefix(tag, "!") || strings.HasPrefix(tag, "!!") {
		return ""
	}
	switch name := tag[1:]; name {
	case "Ref", "Condition":
		return name
	case "":
		return ""
	default:
		return "Fn::" + name
	}
}

// convert turns a YAML node into plain Go values (map[string]any, []any,
// string, int, float64, bool, nil), rewriting short-form intrinsics.
func convert(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return convert(n.Content[0])
	case yaml.AliasNode:
		return convert(n.Alias)
	}

	if fn := intrinsic(n.Tag); fn != "" {
		inner := *n
		inner.Tag = ""
		if n.Kind == yaml.ScalarNode {
			inner.Tag = "!!str"
		}
		v, err := convert(&inner)
		if err != nil {
			return nil, err
		}
		if s, ok := v.(string); ok && fn == "Fn::GetAtt" {
			res, attr, found := strings.Cut(s, ".")
			if !found {
				return nil, fmt.Errorf("line %d: !GetAtt %q: want Resource.Attribute", n.Line, s)
			}
			v = []any{res, attr}
		}
		return map[string]any{fn: v}, nil
	}

	switch n.Kind {
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := convert(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: mapping key is not a scalar", k.Line)
			}
			if k.Value == "<<" && k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: YAML merge keys are not supported", k.Line)
			}
			v, err := convert(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			out[k.Value] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
}

// scalarString formats a plain scalar the way CloudFormation passes it on: as a string.
func scalarString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(v), nil
	default:
		return "", fmt.Errorf("want a scalar, got %s", describe(v))
	}
}

// describe names a value for error messages.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "nothing"
	case map[string]any:
		if len(v) == 1 {
			for k := range v {
				return k
			}
		}
		return "a mapping"
	case []any:
		return "a list"
	default:
		return fmt.Sprintf("%T", v)
	}
}
