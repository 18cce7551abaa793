package stack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// Stack is what a stack file asks for, whatever its format.
type Stack struct {
	Name      string               `yaml:"stack"`
	Layers    map[string]*Layer    `yaml:"layers"`
	Functions map[string]*Function `yaml:"functions"`
	// Dir is the stack file's directory: code and layer paths are relative to it.
	Dir string `yaml:"-"`
	// Warnings are the parts of a SAM template Flint skips.
	Warnings []string `yaml:"-"`

	// The event sources and APIs of a SAM template, by logical ID (sam.go). Their string values
	// may hold references to one another (ref.go), resolved as Deploy creates them.
	Queues        map[string]*Queue  `yaml:"-"`
	Topics        map[string]*Topic  `yaml:"-"`
	Streams       map[string]*Stream `yaml:"-"`
	APIs          map[string]*API    `yaml:"-"`
	Subscriptions []*Subscription    `yaml:"-"`
	// functionIDs maps a SAM function's logical ID to its name.
	functionIDs map[string]string
	// sam says the stack is a SAM template, which owns its functions' event source mappings
	// and SNS subscriptions (a Flint stack file declares none, and leaves them alone).
	sam bool
}

// Layer is one of the stack's own layers.
type Layer struct {
	Dir      string   `yaml:"dir"`
	Runtimes []string `yaml:"runtimes"`
}

// Function is one function's desired state.
type Function struct {
	Code        string               `yaml:"code"`
	Runtime     string               `yaml:"runtime"`
	Handler     string               `yaml:"handler"`
	Memory      int32                `yaml:"memory"`
	Timeout     int32                `yaml:"timeout"`
	Description string               `yaml:"description"`
	Env         map[string]string    `yaml:"env"`
	Layers      []string             `yaml:"layers"`
	Alias       string               `yaml:"alias"`
	Deploy      string               `yaml:"deploy"`
	URL         *URL                 `yaml:"url"`
	Schedules   map[string]*Schedule `yaml:"schedules"`
	// Mappings are the function's SQS and Kinesis events (SAM only).
	Mappings []*Mapping `yaml:"-"`
}

// URL is a function URL.
type URL struct {
	Auth string `yaml:"auth"`
	Cors *Cors  `yaml:"cors"`
}

// Cors is a function URL's CORS configuration.
type Cors struct {
	Origins     []string `yaml:"origins"`
	Methods     []string `yaml:"methods"`
	Headers     []string `yaml:"headers"`
	Expose      []string `yaml:"expose"`
	Credentials bool     `yaml:"credentials"`
	MaxAge      int32    `yaml:"max_age"`
}

// Schedule invokes the function on a schedule through EventBridge Scheduler.
type Schedule struct {
	Expression string `yaml:"expression"`
	Input      string `yaml:"input"`
	Enabled    *bool  `yaml:"enabled"`
	// Rule marks a SAM event of Type Schedule: an EventBridge rule on AWS, which (without an
	// Input) delivers EventBridge's "Scheduled Event" document, not Scheduler's input. RuleName
	// is the rule's Name property ("": the schedule's name).
	Rule     bool   `yaml:"-"`
	RuleName string `yaml:"-"`
}

// Load reads a stack file: a SAM template or a Flint stack file.
func Load(path string) (*Stack, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	st, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	st.Dir = filepath.Dir(abs)
	if st.Name == "" {
		st.Name = filepath.Base(st.Dir)
	}
	st.Name = sanitizeName(st.Name)
	return st, nil
}

// Parse parses a stack file's contents, in either format, and validates them.
func Parse(b []byte) (*Stack, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, err
	}
	if len(root.Content) == 0 {
		return nil, errors.New("empty stack file")
	}
	var st *Stack
	var err error
	if isSAM(root.Content[0]) {
		st, err = parseSAM(root.Content[0])
	} else {
		st = &Stack{}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		err = dec.Decode(st)
	}
	if err != nil {
		return nil, err
	}
	return st, st.validate()
}

func isSAM(doc *yaml.Node) bool {
	if doc.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if k := doc.Content[i].Value; k == "Resources" || k == "Transform" || k == "AWSTemplateFormatVersion" {
			return true
		}
	}
	return false
}

var namePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`) })

// envKeyPattern and reservedEnv are Lambda's rules for environment variable names, checked
// before anything is deployed: a function Lambda refuses would otherwise stop a deployment
// after the stack's queues, topics and streams were created.
var envKeyPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]+$`) })

var reservedEnv = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_REGION": true, "AWS_DEFAULT_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true,
	"AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
	"AWS_LAMBDA_RUNTIME_API": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
}

func (st *Stack) validate() error {
	if len(st.Functions) == 0 {
		return errors.New("no functions")
	}
	var errs []error
	for _, name := range sortedKeys(st.Layers) {
		if !namePattern().MatchString(name) {
			errs = append(errs, fmt.Errorf("layer %q: name must be 1-64 letters, digits, - or _", name))
		}
		if st.Layers[name] == nil || st.Layers[name].Dir == "" {
			errs = append(errs, fmt.Errorf("layer %s: dir is required", name))
		}
	}
	for _, name := range sortedKeys(st.Functions) {
		f := st.Functions[name]
		if !namePattern().MatchString(name) {
			errs = append(errs, fmt.Errorf("function %q: name must be 1-64 letters, digits, - or _", name))
		}
		if f == nil || f.Code == "" {
			errs = append(errs, fmt.Errorf("function %s: code is required", name))
			continue
		}
		for _, k := range sortedKeys(f.Env) {
			if !envKeyPattern().MatchString(k) {
				errs = append(errs, fmt.Errorf("function %s: environment variable %q: Lambda takes a letter, then one or more letters, digits or _", name, k))
			} else if reservedEnv[k] {
				errs = append(errs, fmt.Errorf("function %s: environment variable %s is reserved: Lambda sets it itself", name, k))
			}
		}
		if len(f.Layers) > 5 {
			errs = append(errs, fmt.Errorf("function %s: %d layers, Lambda allows at most 5", name, len(f.Layers)))
		}
		for _, l := range f.Layers {
			if _, ok := st.Layers[l]; !ok && !strings.HasPrefix(l, "arn:") {
				errs = append(errs, fmt.Errorf("function %s: layer %q is neither one of the stack's layers nor an ARN", name, l))
			}
		}
		if f.Deploy != "" {
			if _, err := ParsePreference(f.Deploy); err != nil {
				errs = append(errs, fmt.Errorf("function %s: %w", name, err))
			} else if f.Alias == "" {
				errs = append(errs, fmt.Errorf("function %s: deploy %s needs an alias", name, f.Deploy))
			}
		}
		if f.URL != nil && f.URL.Auth != "" && f.URL.Auth != "NONE" && f.URL.Auth != "AWS_IAM" {
			errs = append(errs, fmt.Errorf("function %s: url auth %q: want NONE or AWS_IAM", name, f.URL.Auth))
		}
		for s, sc := range f.Schedules {
			if sc == nil || sc.Expression == "" {
				errs = append(errs, fmt.Errorf("function %s: schedule %s: expression is required", name, s))
			}
		}
	}
	return errors.Join(errs...)
}

// Preference is how an alias moves to a new version: the traffic weights of the new version, one
// step per Interval, before it gets all of it.
type Preference struct {
	Type     string
	Steps    []float64 // weights < 1, in order; empty for AllAtOnce
	Interval time.Duration
}

var (
	canaryPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^Canary(\d+)Percent(\d+)(Minutes?|Seconds?)$`) })
	linearPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^Linear(\d+)PercentEvery(\d+)(Minutes?|Seconds?)$`) })
)

// ParsePreference parses a DeploymentPreference type: AllAtOnce, CanaryNPercentMMinutes,
// LinearNPercentEveryMMinute(s), or the same with Seconds.
func ParsePreference(s string) (Preference, error) {
	t := strings.TrimPrefix(s, "CodeDeployDefault.Lambda")
	p := Preference{Type: t}
	if t == "" || t == "AllAtOnce" {
		p.Type = "AllAtOnce"
		return p, nil
	}
	unit := func(u string) time.Duration {
		if strings.HasPrefix(u, "Second") {
			return time.Second
		}
		return time.Minute
	}
	if m := canaryPattern().FindStringSubmatch(t); m != nil {
		pct, _ := strconv.Atoi(m[1])
		n, _ := strconv.Atoi(m[2])
		if pct < 1 || pct > 99 || n < 1 {
			return p, fmt.Errorf("deployment preference %s: percentage must be 1-99 and interval at least 1", s)
		}
		p.Steps = []float64{float64(pct) / 100}
		p.Interval = time.Duration(n) * unit(m[3])
		return p, nil
	}
	if m := linearPattern().FindStringSubmatch(t); m != nil {
		pct, _ := strconv.Atoi(m[1])
		n, _ := strconv.Atoi(m[2])
		if pct < 1 || pct > 99 || n < 1 {
			return p, fmt.Errorf("deployment preference %s: percentage must be 1-99 and interval at least 1", s)
		}
		for w := pct; w < 100; w += pct {
			p.Steps = append(p.Steps, float64(w)/100)
		}
		p.Interval = time.Duration(n) * unit(m[3])
		return p, nil
	}
	return p, fmt.Errorf("unknown deployment preference %q (want AllAtOnce, CanaryNPercentMMinutes or LinearNPercentEveryMMinutes)", s)
}

// nodeValue turns a YAML node into plain values, with CloudFormation's short-form intrinsics
// (!Ref X, !GetAtt A.B, !Sub …) as their long forms ({"Ref": X}, {"Fn::GetAtt": …}).
func nodeValue(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return nodeValue(n.Content[0])
	case yaml.AliasNode:
		return nodeValue(n.Alias)
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			val, err := nodeValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = val
		}
		v = m
	case yaml.SequenceNode:
		s := []any{}
		for _, c := range n.Content {
			val, err := nodeValue(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		v = s
	case yaml.ScalarNode:
		tag := n.Tag
		if strings.HasPrefix(tag, "!") && tag != "!!str" {
			n2 := *n
			n2.Tag = ""
			if err := n2.Decode(&v); err != nil {
				return nil, err
			}
		} else if err := n.Decode(&v); err != nil {
			return nil, err
		}
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		name := strings.TrimPrefix(n.Tag, "!")
		switch name {
		case "Ref", "Condition":
			return map[string]any{name: v}, nil
		case "GetAtt":
			if s, ok := v.(string); ok {
				a, b, _ := strings.Cut(s, ".")
				v = []any{a, b}
			}
		}
		return map[string]any{"Fn::" + name: v}, nil
	}
	return v, nil
}

// remarshal converts plain values into a typed struct through JSON.
func remarshal(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sanitizeName makes s usable as a tag value and in schedule names.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	return b.String()
}
