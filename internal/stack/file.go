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
	canaryPattern = regexp.MustCompile(`^Canary(\d+)Percent(\d+)(Minutes?|Seconds?)$`)
	linearPattern = regexp.MustCompile(`^Linear(\d+)PercentEvery(\d+)(Minutes?|Seconds?)$`)
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
	if m := canaryPattern.FindStringSubmatch(t); m != nil {
		pct, _ := strconv.Atoi(m[1])
		n, _ := strconv.Atoi(m[2])
		if pct < 1 || pct > 99 || n < 1 {
			return p, fmt.Errorf("deployment preference %s: percentage must be 1-99 and interval at least 1", s)
		}
		p.Steps = []float64{float64(pct) / 100}
		p.Interval = time.Duration(n) * unit(m[3])
		return p, nil
	}
	if m := linearPattern.FindStringSubmatch(t); m != nil {
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

// --- SAM ---

type samResource struct {
	Type       string         `json:"Type"`
	Properties map[string]any `json:"Properties"`
}

type samTemplate struct {
	Parameters map[string]struct {
		Default any `json:"Default"`
	} `json:"Parameters"`
	Globals struct {
		Function map[string]any `json:"Function"`
	} `json:"Globals"`
	Resources map[string]samResource `json:"Resources"`
}

type samFunction struct {
	FunctionName string `json:"FunctionName"`
	CodeURI      any    `json:"CodeUri"`
	Handler      string `json:"Handler"`
	Runtime      string `json:"Runtime"`
	Description  string `json:"Description"`
	MemorySize   int32  `json:"MemorySize"`
	Timeout      int32  `json:"Timeout"`
	Environment  struct {
		Variables map[string]any `json:"Variables"`
	} `json:"Environment"`
	Layers []any `json:"Layers"`
	Events map[string]struct {
		Type       string         `json:"Type"`
		Properties map[string]any `json:"Properties"`
	} `json:"Events"`
	AutoPublishAlias     string `json:"AutoPublishAlias"`
	DeploymentPreference struct {
		Type    string `json:"Type"`
		Enabled *bool  `json:"Enabled"`
	} `json:"DeploymentPreference"`
	FunctionURLConfig *struct {
		AuthType string `json:"AuthType"`
		Cors     *struct {
			AllowOrigins     []string `json:"AllowOrigins"`
			AllowMethods     []string `json:"AllowMethods"`
			AllowHeaders     []string `json:"AllowHeaders"`
			ExposeHeaders    []string `json:"ExposeHeaders"`
			AllowCredentials bool     `json:"AllowCredentials"`
			MaxAge           int32    `json:"MaxAge"`
		} `json:"Cors"`
	} `json:"FunctionUrlConfig"`
}

// parseSAM maps the supported subset of a SAM template onto a Stack.
func parseSAM(doc *yaml.Node) (*Stack, error) {
	generic, err := nodeValue(doc)
	if err != nil {
		return nil, err
	}
	var t samTemplate
	if err := remarshal(generic, &t); err != nil {
		return nil, fmt.Errorf("SAM template: %w", err)
	}
	st := &Stack{Layers: map[string]*Layer{}, Functions: map[string]*Function{}}
	ref := func(v any) (string, bool) {
		m, ok := v.(map[string]any)
		if !ok {
			s, ok := v.(string)
			return s, ok
		}
		r, ok := m["Ref"].(string)
		if !ok {
			return "", false
		}
		if p, ok := t.Parameters[r]; ok && p.Default != nil {
			return fmt.Sprint(p.Default), true
		}
		return r, true
	}
	layerNames := map[string]string{} // logical ID → layer name
	for _, id := range sortedKeys(t.Resources) {
		r := t.Resources[id]
		if r.Type != "AWS::Serverless::LayerVersion" {
			continue
		}
		var l struct {
			LayerName          string   `json:"LayerName"`
			ContentURI         any      `json:"ContentUri"`
			CompatibleRuntimes []string `json:"CompatibleRuntimes"`
		}
		if err := remarshal(r.Properties, &l); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		dir, ok := l.ContentURI.(string)
		if !ok {
			return nil, fmt.Errorf("%s: ContentUri must be a local path", id)
		}
		name := l.LayerName
		if name == "" {
			name = id
		}
		layerNames[id] = name
		st.Layers[name] = &Layer{Dir: dir, Runtimes: l.CompatibleRuntimes}
	}
	for _, id := range sortedKeys(t.Resources) {
		r := t.Resources[id]
		switch r.Type {
		case "AWS::Serverless::LayerVersion":
			continue
		case "AWS::Serverless::Function":
		default:
			st.Warnings = append(st.Warnings, fmt.Sprintf("%s: resource type %s is not supported; skipped", id, r.Type))
			continue
		}
		props := mergeGlobals(t.Globals.Function, r.Properties)
		var sf samFunction
		if err := remarshal(props, &sf); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		code, ok := sf.CodeURI.(string)
		if !ok {
			return nil, fmt.Errorf("%s: CodeUri must be a local path", id)
		}
		name := sf.FunctionName
		if name == "" {
			name = id
		}
		f := &Function{Code: code, Runtime: sf.Runtime, Handler: sf.Handler, Memory: sf.MemorySize,
			Timeout: sf.Timeout, Description: sf.Description, Alias: sf.AutoPublishAlias}
		if len(sf.Environment.Variables) > 0 {
			f.Env = map[string]string{}
			for k, v := range sf.Environment.Variables {
				s, ok := ref(v)
				if !ok {
					if _, isMap := v.(map[string]any); isMap {
						return nil, fmt.Errorf("%s: Environment.Variables.%s: only !Ref to a parameter is supported", id, k)
					}
					s = fmt.Sprint(v)
				}
				f.Env[k] = s
			}
		}
		for _, l := range sf.Layers {
			s, ok := ref(l)
			if !ok {
				return nil, fmt.Errorf("%s: Layers: want !Ref or an ARN", id)
			}
			if n, ok := layerNames[s]; ok {
				s = n
			}
			f.Layers = append(f.Layers, s)
		}
		if dp := sf.DeploymentPreference; dp.Type != "" && (dp.Enabled == nil || *dp.Enabled) {
			f.Deploy = dp.Type
		}
		if u := sf.FunctionURLConfig; u != nil {
			f.URL = &URL{Auth: u.AuthType}
			if c := u.Cors; c != nil {
				f.URL.Cors = &Cors{Origins: c.AllowOrigins, Methods: c.AllowMethods, Headers: c.AllowHeaders,
					Expose: c.ExposeHeaders, Credentials: c.AllowCredentials, MaxAge: c.MaxAge}
			}
		}
		for _, ev := range sortedKeys(sf.Events) {
			e := sf.Events[ev]
			var p struct {
				Schedule           string `json:"Schedule"`
				ScheduleExpression string `json:"ScheduleExpression"`
				Input              string `json:"Input"`
				Enabled            *bool  `json:"Enabled"`
				State              string `json:"State"`
				Name               string `json:"Name"`
			}
			switch e.Type {
			case "Schedule", "ScheduleV2":
			default:
				st.Warnings = append(st.Warnings, fmt.Sprintf("%s: event %s of type %s is not supported; skipped", id, ev, e.Type))
				continue
			}
			if err := remarshal(e.Properties, &p); err != nil {
				return nil, fmt.Errorf("%s: event %s: %w", id, ev, err)
			}
			expr := p.Schedule
			if expr == "" {
				expr = p.ScheduleExpression
			}
			enabled := p.Enabled
			if p.State != "" {
				on := p.State == "ENABLED"
				enabled = &on
			}
			if f.Schedules == nil {
				f.Schedules = map[string]*Schedule{}
			}
			sc := &Schedule{Expression: expr, Input: p.Input, Enabled: enabled}
			if e.Type == "Schedule" {
				sc.Rule, sc.RuleName = true, p.Name
			}
			f.Schedules[ev] = sc
		}
		st.Functions[name] = f
	}
	return st, nil
}

// mergeGlobals applies SAM's Globals: a function's own property wins, except that maps (such as
// Environment) are merged key by key.
func mergeGlobals(globals, props map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range globals {
		out[k] = v
	}
	for k, v := range props {
		gm, ok1 := out[k].(map[string]any)
		pm, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			out[k] = mergeGlobals(gm, pm)
			continue
		}
		out[k] = v
	}
	return out
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
