package sam

import (
	"errors"
	"fmt"
	"maps"
	"sort"
)

// Functions lists the logical IDs of the template's AWS::Serverless::Function
// resources, in template order.
func (t *Template) Functions() []string {
	return t.ofType(TypeFunction)
}

// FunctionEnv returns the environment variables Lambda would give the
// function logicalID: Globals.Function.Environment.Variables overlaid with the
// function's own, with intrinsic functions resolved locally:
//   - Ref to a table gives tableNames[logicalID], or the logical ID itself
//     when tableNames has no entry (locally a table is named after its ID);
//   - Ref to a parameter gives params[name], or the parameter's default;
//   - pseudo parameters (AWS::Region, ...) give params[name] or a local value;
//   - Fn::If evaluates the template's Conditions, and a variable whose value
//     is AWS::NoValue is left out.
//
// Values that cannot be resolved this way are left out; CheckEnv reports them.
func (t *Template) FunctionEnv(logicalID string, tableNames, params map[string]string) map[string]string {
	env, _ := t.functionEnv(logicalID, tableNames, params)
	return env
}

// CheckEnv reports every function environment value FunctionEnv cannot
// resolve from parameter defaults and table logical IDs. Tools call it once at
// start-up so that an unsupported template fails loudly.
func (t *Template) CheckEnv() error {
	for _, fn := range t.Functions() {
		if _, err := t.functionEnv(fn, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

func (t *Template) functionEnv(logicalID string, tableNames, params map[string]string) (map[string]string, error) {
	r, ok := t.Resources[logicalID]
	if !ok || r.Type != TypeFunction {
		return nil, fmt.Errorf("no function %s in the template", logicalID)
	}
	vars := map[string]any{}
	if g, ok := t.Globals["Function"].(map[string]any); ok {
		maps.Copy(vars, envVariables(g))
	}
	maps.Copy(vars, envVariables(r.Properties))

	res := resolver{t: t, params: params, resource: func(id string) (string, bool) {
		if t.Resources[id].Type != TypeTable {
			return "", false
		}
		if name, ok := tableNames[id]; ok {
			return name, true
		}
		return id, true
	}}
	env := make(map[string]string, len(vars))
	var firstErr error
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s, err := res.str(vars[k])
		if errors.Is(err, errNoValue) {
			continue // !If [cond, value, !Ref AWS::NoValue] with cond false
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("function %s: environment variable %s: %w", logicalID, k, err)
			}
			continue
		}
		env[k] = s
	}
	return env, firstErr
}

// envVariables returns props.Environment.Variables, or nil.
func envVariables(props map[string]any) map[string]any {
	e, _ := props["Environment"].(map[string]any)
	v, _ := e["Variables"].(map[string]any)
	return v
}
