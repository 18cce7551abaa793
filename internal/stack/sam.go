// The supported subset of AWS SAM templates mapped onto a Stack. Every resource type, property
// and event Flint does not support is an error naming the resource and the property, found
// before anything is deployed; only what has no meaning on Flint (IAM roles and policies,
// permissions, encryption keys) is a warning. docs/SAM.md lists the subset for users.

package stack

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// SAM resource types.
const (
	typeFunction     = "AWS::Serverless::Function"
	typeLayer        = "AWS::Serverless::LayerVersion"
	typeQueue        = "AWS::SQS::Queue"
	typeTopic        = "AWS::SNS::Topic"
	typeSubscription = "AWS::SNS::Subscription"
	typeStream       = "AWS::Kinesis::Stream"
	typeRestAPI      = "AWS::Serverless::Api"
	typeHTTPAPI      = "AWS::Serverless::HttpApi"
)

// Implicit APIs: the ones SAM creates for Api and HttpApi events without RestApiId or ApiId.
const (
	implicitRestAPI = "ServerlessRestApi"
	implicitHTTPAPI = "ServerlessHttpApi"
)

// ignoredTypes have no meaning on Flint (it checks no IAM permissions and no resource
// policies for these principals): they are skipped with a warning.
var ignoredTypes = map[string]string{
	"AWS::IAM::Role":          "Flint does not check IAM permissions",
	"AWS::IAM::Policy":        "Flint does not check IAM permissions",
	"AWS::IAM::ManagedPolicy": "Flint does not check IAM permissions",
	"AWS::Lambda::Permission": "event sources and APIs on Flint need no invoke permission",
	"AWS::SQS::QueuePolicy":   "Flint does not check queue policies",
	"AWS::SNS::TopicPolicy":   "Flint does not check topic policies",
}

// getAtts are the attributes !GetAtt can read, by resource type (CloudFormation's return
// values of the types Flint creates).
var getAtts = map[string][]string{
	typeFunction: {"Arn"},
	typeQueue:    {"Arn", "QueueName", "QueueUrl"},
	typeTopic:    {"TopicArn", "TopicName"},
	typeStream:   {"Arn"},
}

// samParser reads one template. Problems are collected, so that one error lists them all.
type samParser struct {
	params    map[string]map[string]any // Parameters
	resources map[string]map[string]any // Resources, each with Type and Properties
	types     map[string]string         // logical ID → Type
	layers    map[string]string         // layer logical ID → layer name
	st        *Stack
	errs      []string
}

func (p *samParser) fail(format string, args ...any) {
	p.errs = append(p.errs, fmt.Sprintf(format, args...))
}

func (p *samParser) warn(format string, args ...any) {
	p.st.Warnings = append(p.st.Warnings, fmt.Sprintf(format, args...))
}

// parseSAM maps the supported subset of a SAM template onto a Stack.
func parseSAM(doc *yaml.Node) (*Stack, error) {
	generic, err := nodeValue(doc)
	if err != nil {
		return nil, err
	}
	root, _ := generic.(map[string]any)
	p := &samParser{params: map[string]map[string]any{}, resources: map[string]map[string]any{},
		types: map[string]string{}, layers: map[string]string{},
		st: &Stack{Layers: map[string]*Layer{}, Functions: map[string]*Function{}, Queues: map[string]*Queue{},
			Topics: map[string]*Topic{}, Streams: map[string]*Stream{}, APIs: map[string]*API{}, functionIDs: map[string]string{}, sam: true}}
	for _, k := range sortedKeys(root) {
		switch k {
		case "AWSTemplateFormatVersion", "Transform", "Description", "Metadata", "Outputs", "Parameters", "Globals", "Resources":
		default:
			p.fail("template section %s is not supported", k)
		}
	}
	if m, ok := root["Parameters"].(map[string]any); ok {
		for k, v := range m {
			pm, _ := v.(map[string]any)
			p.params[k] = pm
		}
	}
	var globals map[string]any
	if g, ok := root["Globals"].(map[string]any); ok {
		for _, k := range sortedKeys(g) {
			if k != "Function" {
				p.fail("Globals: section %s is not supported", k)
			}
		}
		globals, _ = g["Function"].(map[string]any)
	}
	res, _ := root["Resources"].(map[string]any)
	for _, id := range sortedKeys(res) {
		r, ok := res[id].(map[string]any)
		if !ok {
			p.fail("%s: not a resource", id)
			continue
		}
		t, _ := r["Type"].(string)
		p.types[id] = t
		p.resources[id] = r
		for _, k := range sortedKeys(r) {
			switch k {
			case "Type", "Properties", "DependsOn", "Metadata", "DeletionPolicy", "UpdateReplacePolicy":
			default:
				p.fail("%s: resource attribute %s is not supported", id, k)
			}
		}
	}
	// Layers first: functions refer to them by logical ID.
	for _, id := range sortedKeys(res) {
		if p.types[id] == typeLayer {
			p.layer(id)
		}
	}
	// Function names next: a function's !Ref is its name, wherever it is used.
	for _, id := range sortedKeys(res) {
		if p.types[id] == typeFunction {
			props := mergeGlobals(globals, p.props(id))
			name, _ := props["FunctionName"].(string)
			if name == "" {
				name = id
			}
			p.st.functionIDs[id] = name
		}
	}
	for _, id := range sortedKeys(res) {
		switch t := p.types[id]; t {
		case typeLayer:
		case typeFunction:
			p.function(id, mergeGlobals(globals, p.props(id)))
		case typeQueue:
			p.queue(id)
		case typeTopic:
			p.topic(id)
		case typeSubscription:
			p.subscription(id)
		case typeStream:
			p.stream(id)
		case typeRestAPI, typeHTTPAPI:
			p.api(id, t)
		default:
			if why, ok := ignoredTypes[t]; ok {
				p.warn("%s: resource type %s is skipped: %s", id, t, why)
				continue
			}
			p.fail("%s: resource type %s is not supported by Flint", id, t)
		}
	}
	if len(p.errs) > 0 {
		return nil, errors.New(strings.Join(p.errs, "\n"))
	}
	return p.st, nil
}

func (p *samParser) props(id string) map[string]any {
	m, _ := p.resources[id]["Properties"].(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

// props is one resource's or event's properties as they are read: each property read is
// marked, and done reports the others as unsupported.
type props struct {
	p     *samParser
	where string // "Fn", "Fn: event E"
	path  string // the properties' path below where's, "" or e.g. "Environment.Variables."
	m     map[string]any
	read  map[string]bool
}

func (p *samParser) newProps(where string, m map[string]any) *props {
	return &props{p: p, where: where, m: m, read: map[string]bool{}}
}

func (pr *props) has(k string) bool {
	_, ok := pr.m[k]
	return ok
}

// raw returns property k as it is (nil when absent), marking it read.
func (pr *props) raw(k string) any {
	pr.read[k] = true
	return pr.m[k]
}

// str returns property k as a string, references resolved or written as placeholders.
func (pr *props) str(k string) string {
	v := pr.raw(k)
	if v == nil {
		return ""
	}
	s, err := pr.p.value(v)
	if err != nil {
		pr.p.fail("%s: property %s: %v", pr.where, pr.path+k, err)
	}
	return s
}

// num returns property k as a whole number (nil when absent).
func (pr *props) num(k string) *int32 {
	s := pr.str(k)
	if s == "" {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		pr.p.fail("%s: property %s: %q is not a whole number", pr.where, pr.path+k, s)
		return nil
	}
	v := int32(n)
	return &v
}

// flag returns property k as a boolean (nil when absent).
func (pr *props) flag(k string) *bool {
	s := pr.str(k)
	if s == "" {
		return nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		pr.p.fail("%s: property %s: %q is not true or false", pr.where, pr.path+k, s)
		return nil
	}
	return &b
}

// strs returns property k as a list of strings.
func (pr *props) strs(k string) []string {
	v := pr.raw(k)
	if v == nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		pr.p.fail("%s: property %s: want a list", pr.where, pr.path+k)
		return nil
	}
	var out []string
	for _, e := range l {
		s, err := pr.p.value(e)
		if err != nil {
			pr.p.fail("%s: property %s: %v", pr.where, pr.path+k, err)
		}
		out = append(out, s)
	}
	return out
}

// doc returns property k as a JSON document (a map in the template or a string holding JSON),
// references inside resolved or written as placeholders; "" when absent.
func (pr *props) doc(k string) string {
	v := pr.raw(k)
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		if !json.Valid([]byte(v)) {
			pr.p.fail("%s: property %s: not a JSON document", pr.where, pr.path+k)
		}
		return v
	}
	t, err := pr.p.tree(v)
	if err != nil {
		pr.p.fail("%s: property %s: %v", pr.where, pr.path+k, err)
		return ""
	}
	b, err := json.Marshal(t)
	if err != nil {
		pr.p.fail("%s: property %s: %v", pr.where, pr.path+k, err)
	}
	return string(b)
}

// sub returns property k as nested properties (nil when absent).
func (pr *props) sub(k string) *props {
	v := pr.raw(k)
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		pr.p.fail("%s: property %s: want a map", pr.where, pr.path+k)
		return nil
	}
	sub := pr.p.newProps(pr.where, m)
	sub.path = pr.path + k + "."
	return sub
}

// tags reads a CloudFormation Tags list ([{Key, Value}]) or a SAM tag map.
func (pr *props) tags(k string) map[string]string {
	v := pr.raw(k)
	out := map[string]string{}
	switch v := v.(type) {
	case nil:
	case map[string]any:
		for tk, tv := range v {
			s, err := pr.p.value(tv)
			if err != nil {
				pr.p.fail("%s: property %s.%s: %v", pr.where, pr.path+k, tk, err)
			}
			out[tk] = s
		}
	case []any:
		for _, e := range v {
			m, _ := e.(map[string]any)
			key, _ := m["Key"].(string)
			val, err := pr.p.value(m["Value"])
			if key == "" || err != nil {
				pr.p.fail("%s: property %s: want a list of Key and Value", pr.where, pr.path+k)
				continue
			}
			out[key] = val
		}
	default:
		pr.p.fail("%s: property %s: want a list of Key and Value", pr.where, pr.path+k)
	}
	return out
}

// ignore marks properties that have no meaning on Flint: each one present is a warning.
func (pr *props) ignore(why string, keys ...string) {
	for _, k := range keys {
		if pr.has(k) {
			pr.read[k] = true
			pr.p.warn("%s: property %s is ignored: %s", pr.where, pr.path+k, why)
		}
	}
}

// done reports every property not read as unsupported.
func (pr *props) done() {
	for _, k := range sortedKeys(pr.m) {
		if !pr.read[k] {
			pr.p.fail("%s: property %s is not supported by Flint", pr.where, pr.path+k)
		}
	}
}

// value renders a scalar or an intrinsic function as a string: !Ref of a parameter is its
// Default and of a function its name; !Ref and !GetAtt of the resources Flint creates become
// placeholders.
func (p *samParser) value(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		if strings.ContainsAny(v, refOpen+refClose) {
			return "", errors.New("the characters U+E000 and U+E001 are reserved")
		}
		return v, nil
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(v), nil
	case map[string]any:
		if len(v) != 1 {
			return "", errors.New("want a value, not a map")
		}
		if r, ok := v["Ref"]; ok {
			id, _ := r.(string)
			return p.ref(id)
		}
		if g, ok := v["Fn::GetAtt"]; ok {
			var id, attr string
			switch g := g.(type) {
			case []any:
				if len(g) == 2 {
					id, _ = g[0].(string)
					attr, _ = g[1].(string)
				}
			case string:
				id, attr, _ = strings.Cut(g, ".")
			}
			return p.getAtt(id, attr)
		}
		for k := range v {
			return "", fmt.Errorf("intrinsic function %s is not supported (only !Ref and !GetAtt)", k)
		}
	}
	return "", fmt.Errorf("want a value, not %T", v)
}

func (p *samParser) ref(id string) (string, error) {
	if pm, ok := p.params[id]; ok {
		d, ok := pm["Default"]
		if !ok {
			return "", fmt.Errorf("!Ref %s: the parameter has no Default (Flint takes no parameter overrides)", id)
		}
		return fmt.Sprint(d), nil
	}
	switch t := p.types[id]; t {
	case typeFunction:
		return p.st.functionIDs[id], nil
	case typeQueue, typeTopic, typeStream:
		return placeholder(id, ""), nil
	case "":
		if strings.HasPrefix(id, "AWS::") {
			return "", fmt.Errorf("!Ref %s: pseudo parameters are not supported", id)
		}
		return "", fmt.Errorf("!Ref %s: no such parameter or resource", id)
	default:
		return "", fmt.Errorf("!Ref %s: a reference to a %s is not supported here", id, t)
	}
}

func (p *samParser) getAtt(id, attr string) (string, error) {
	t, ok := p.types[id]
	if !ok {
		return "", fmt.Errorf("!GetAtt %s.%s: no such resource", id, attr)
	}
	if !slices.Contains(getAtts[t], attr) {
		if len(getAtts[t]) == 0 {
			return "", fmt.Errorf("!GetAtt %s.%s: attributes of a %s are not supported", id, attr, t)
		}
		return "", fmt.Errorf("!GetAtt %s.%s: a %s has the attributes %s", id, attr, t, strings.Join(getAtts[t], ", "))
	}
	return placeholder(id, attr), nil
}

// tree resolves the intrinsic functions inside a JSON-like document.
func (p *samParser) tree(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 1 {
			for k := range v {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					return p.value(v)
				}
			}
		}
		out := map[string]any{}
		for k, e := range v {
			t, err := p.tree(e)
			if err != nil {
				return nil, err
			}
			out[k] = t
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			t, err := p.tree(e)
			if err != nil {
				return nil, err
			}
			out[i] = t
		}
		return out, nil
	case string:
		return p.value(v)
	}
	return v, nil
}

// refTo returns the logical ID s refers to when it is exactly one placeholder of a resource
// of type t with attribute attr.
func (p *samParser) refTo(s, t, attr string) (string, bool) {
	ids := refIDs(s)
	if len(ids) != 1 || s != placeholder(ids[0], attr) || p.types[ids[0]] != t {
		return "", false
	}
	return ids[0], true
}

func (p *samParser) layer(id string) {
	pr := p.newProps(id, p.props(id))
	dir := pr.str("ContentUri")
	if _, ok := pr.m["ContentUri"].(string); !ok || strings.HasPrefix(dir, "s3://") {
		p.fail("%s: property ContentUri must be a local path", id)
	}
	name := pr.str("LayerName")
	if name == "" {
		name = id
	}
	p.layers[id] = name
	p.st.Layers[name] = &Layer{Dir: dir, Runtimes: pr.strs("CompatibleRuntimes")}
	pr.raw("Description")
	pr.ignore("layers on Flint are not shared across accounts", "LicenseInfo", "RetentionPolicy", "CompatibleArchitectures")
	pr.done()
}
