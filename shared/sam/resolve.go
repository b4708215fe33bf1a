package sam

import (
	"errors"
	"fmt"
	"strings"
)

// errNoValue is what resolving !Ref AWS::NoValue gives: the property, or
// environment variable, is to be left out.
var errNoValue = errors.New("AWS::NoValue")

// pseudo holds the values locally used for CloudFormation pseudo parameters;
// a params map passed in by the caller overrides them (e.g. "AWS::Region").
var pseudo = map[string]string{
	"AWS::Region":    "us-east-1",
	"AWS::AccountId": "123456789012",
	"AWS::Partition": "aws",
	"AWS::StackName": "local",
	"AWS::URLSuffix": "amazonaws.com",
}

// resolver evaluates the few intrinsic functions the project uses in places
// that must become plain strings locally.
type resolver struct {
	t      *Template
	params map[string]string // overrides of parameter defaults and pseudo parameters
	// resource returns the local value of Ref to a resource.
	resource func(logicalID string) (string, bool)
}

// ref resolves Ref name.
func (r resolver) ref(name string) (string, error) {
	if name == "AWS::NoValue" {
		return "", errNoValue
	}
	if v, ok := r.params[name]; ok {
		return v, nil
	}
	if p, ok := r.t.parameter(name); ok {
		if !p.HasDefault {
			return "", fmt.Errorf("parameter %s has no default and no value was given", name)
		}
		return p.Default, nil
	}
	if v, ok := pseudo[name]; ok {
		return v, nil
	}
	if _, ok := r.t.Resources[name]; ok && r.resource != nil {
		if v, ok := r.resource(name); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("cannot resolve Ref %s locally", name)
}

// str resolves v to a string: a scalar, Ref, Fn::Sub or Fn::Join.
func (r resolver) str(v any) (string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return scalarString(v)
	}
	if len(m) != 1 {
		return "", fmt.Errorf("want a value, got a mapping")
	}
	for fn, arg := range m {
		switch fn {
		case "Ref":
			name, ok := arg.(string)
			if !ok {
				return "", fmt.Errorf("Ref wants a name")
			}
			return r.ref(name)
		case "Fn::Sub":
			return r.sub(arg)
		case "Fn::If":
			list, ok := arg.([]any)
			if !ok || len(list) != 3 {
				return "", fmt.Errorf("Fn::If wants [condition, then, else]")
			}
			name, ok := list[0].(string)
			if !ok {
				return "", fmt.Errorf("Fn::If wants a condition name first")
			}
			yes, err := r.condition(name, 0)
			if err != nil {
				return "", err
			}
			if yes {
				return r.str(list[1])
			}
			return r.str(list[2])
		case "Fn::Join":
			list, ok := arg.([]any)
			if !ok || len(list) != 2 {
				return "", fmt.Errorf("Fn::Join wants [delimiter, [values]]")
			}
			delim, ok := list[0].(string)
			items, ok2 := list[1].([]any)
			if !ok || !ok2 {
				return "", fmt.Errorf("Fn::Join wants [delimiter, [values]]")
			}
			parts := make([]string, len(items))
			for i, it := range items {
				s, err := r.str(it)
				if err != nil {
					return "", err
				}
				parts[i] = s
			}
			return strings.Join(parts, delim), nil
		}
		return "", fmt.Errorf("cannot resolve %s locally", fn)
	}
	panic("unreachable")
}

// sub evaluates Fn::Sub in both its forms: "string" and ["string", {vars}].
func (r resolver) sub(arg any) (string, error) {
	var (
		text string
		vars map[string]any
	)
	switch a := arg.(type) {
	case string:
		text = a
	case []any:
		if len(a) != 2 {
			return "", fmt.Errorf("Fn::Sub wants a string or [string, {variables}]")
		}
		var ok bool
		if text, ok = a[0].(string); !ok {
			return "", fmt.Errorf("Fn::Sub wants a string first")
		}
		if vars, ok = a[1].(map[string]any); !ok {
			return "", fmt.Errorf("Fn::Sub wants variables as a mapping")
		}
	default:
		return "", fmt.Errorf("Fn::Sub wants a string or [string, {variables}]")
	}

	var b strings.Builder
	for {
		i := strings.Index(text, "${")
		if i < 0 {
			b.WriteString(text)
			return b.String(), nil
		}
		b.WriteString(text[:i])
		text = text[i+2:]
		j := strings.IndexByte(text, '}')
		if j < 0 {
			return "", fmt.Errorf("Fn::Sub: unterminated ${")
		}
		name := text[:j]
		text = text[j+1:]
		if strings.HasPrefix(name, "!") { // ${!Literal} stands for ${Literal}
			b.WriteString("${" + name[1:] + "}")
			continue
		}
		var (
			s   string
			err error
		)
		if v, ok := vars[name]; ok {
			s, err = r.str(v)
		} else if strings.Contains(name, ".") && !strings.HasPrefix(name, "AWS::") {
			err = fmt.Errorf("cannot resolve ${%s} locally", name)
		} else {
			s, err = r.ref(name)
		}
		if err != nil {
			return "", err
		}
		b.WriteString(s)
	}
}

// getAttTarget returns the logical ID in {"Fn::GetAtt": [X, attr]}.
func getAttTarget(v any, attr string) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	args, ok := m["Fn::GetAtt"].([]any)
	if !ok || len(args) != 2 {
		return "", false
	}
	id, ok1 := args[0].(string)
	a, ok2 := args[1].(string)
	if !ok1 || !ok2 || a != attr {
		return "", false
	}
	return id, true
}

// refTarget returns the name in {"Ref": name}.
func refTarget(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	name, ok := m["Ref"].(string)
	return name, ok
}

// condition evaluates the template condition called name.
func (r resolver) condition(name string, depth int) (bool, error) {
	expr, ok := r.t.Conditions[name]
	if !ok {
		return false, fmt.Errorf("no condition %s in the template", name)
	}
	if depth > 32 {
		return false, fmt.Errorf("condition %s refers to itself", name)
	}
	v, err := r.boolean(expr, depth+1)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	return v, nil
}

// boolean evaluates a condition expression: Fn::Equals, Fn::Not, Fn::And,
// Fn::Or and Condition.
func (r resolver) boolean(v any, depth int) (bool, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false, fmt.Errorf("want a condition function, got %s", describe(v))
	}
	for fn, arg := range m {
		if fn == "Condition" {
			name, ok := arg.(string)
			if !ok {
				return false, fmt.Errorf("Condition wants a name")
			}
			return r.condition(name, depth)
		}
		list, ok := arg.([]any)
		if !ok {
			return false, fmt.Errorf("%s wants a list", fn)
		}
		switch fn {
		case "Fn::Equals":
			if len(list) != 2 {
				return false, fmt.Errorf("Fn::Equals wants two values")
			}
			a, err := r.str(list[0])
			if err != nil {
				return false, err
			}
			b, err := r.str(list[1])
			if err != nil {
				return false, err
			}
			return a == b, nil
		case "Fn::Not":
			if len(list) != 1 {
				return false, fmt.Errorf("Fn::Not wants one condition")
			}
			b, err := r.boolean(list[0], depth)
			return !b, err
		case "Fn::And", "Fn::Or":
			and := fn == "Fn::And"
			for _, c := range list {
				b, err := r.boolean(c, depth)
				if err != nil {
					return false, err
				}
				if b != and {
					return b, nil
				}
			}
			return and, nil
		}
		return false, fmt.Errorf("cannot evaluate %s locally", fn)
	}
	panic("unreachable")
}
