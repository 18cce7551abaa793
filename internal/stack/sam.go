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
	"sort"
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

func (p *samParser) function(id string, m map[string]any) {
	pr := p.newProps(id, m)
	name := p.st.functionIDs[id]
	pr.raw("FunctionName")
	code, isPath := pr.m["CodeUri"].(string)
	pr.raw("CodeUri")
	if !isPath || strings.HasPrefix(code, "s3://") {
		p.fail("%s: property CodeUri must be a local path", id)
	}
	f := &Function{Code: code, Runtime: pr.str("Runtime"), Handler: pr.str("Handler"), Description: pr.str("Description"),
		Alias: pr.str("AutoPublishAlias")}
	if n := pr.num("MemorySize"); n != nil {
		f.Memory = *n
	}
	if n := pr.num("Timeout"); n != nil {
		f.Timeout = *n
	}
	if env := pr.sub("Environment"); env != nil {
		if vars := env.sub("Variables"); vars != nil {
			f.Env = map[string]string{}
			for _, k := range sortedKeys(vars.m) {
				s := vars.str(k)
				for _, rid := range refIDs(s) {
					if p.types[rid] == typeFunction {
						p.fail("%s: property Environment.Variables.%s: a function's Arn is not known before it is created", id, k)
					}
				}
				f.Env[k] = s
			}
		}
		env.done()
	}
	if l := pr.raw("Layers"); l != nil {
		list, _ := l.([]any)
		for _, e := range list {
			if r, ok := e.(map[string]any); ok {
				if lid, ok := r["Ref"].(string); ok && p.types[lid] == typeLayer {
					f.Layers = append(f.Layers, p.layers[lid])
					continue
				}
			}
			s, err := p.value(e)
			if err != nil || !strings.HasPrefix(s, "arn:") {
				p.fail("%s: property Layers: want !Ref to a layer of the template or a layer version ARN", id)
				continue
			}
			f.Layers = append(f.Layers, s)
		}
	}
	if dp := pr.sub("DeploymentPreference"); dp != nil {
		t, enabled := dp.str("Type"), dp.flag("Enabled")
		if t != "" && (enabled == nil || *enabled) {
			f.Deploy = t
		}
		dp.done()
	}
	if u := pr.sub("FunctionUrlConfig"); u != nil {
		f.URL = &URL{Auth: u.str("AuthType")}
		if c := u.sub("Cors"); c != nil {
			f.URL.Cors = &Cors{Origins: c.strs("AllowOrigins"), Methods: c.strs("AllowMethods"), Headers: c.strs("AllowHeaders"),
				Expose: c.strs("ExposeHeaders")}
			if b := c.flag("AllowCredentials"); b != nil {
				f.URL.Cors.Credentials = *b
			}
			if n := c.num("MaxAge"); n != nil {
				f.URL.Cors.MaxAge = *n
			}
			c.done()
		}
		u.done()
	}
	if pt := pr.str("PackageType"); pt != "" && pt != "Zip" {
		p.fail("%s: property PackageType %s is not supported by Flint (only Zip)", id, pt)
	}
	pr.ignore("Flint does not check IAM permissions", "Role", "Policies", "PermissionsBoundary", "RolePath", "AssumeRolePolicyDocument")
	pr.ignore("Flint has no tracing service", "Tracing")
	pr.ignore("Flint encrypts its data with its own keys", "KmsKeyArn")
	pr.ignore("Flint has no code signing", "CodeSigningConfigArn")
	pr.ignore("Flint runs functions on its host's architecture", "Architectures")
	pr.ignore("Flint does not tag functions from templates (it tags them flint:stack)", "Tags")
	pr.ignore("the version's description is not kept", "VersionDescription", "AutoPublishCodeSha256")
	if ev := pr.raw("Events"); ev != nil {
		events, ok := ev.(map[string]any)
		if !ok {
			p.fail("%s: property Events: want a map of events", id)
		}
		for _, e := range sortedKeys(events) {
			p.event(id, name, f, e, events[e])
		}
	}
	pr.done()
	p.st.Functions[name] = f
}

// event maps one of a function's Events.
func (p *samParser) event(fid, fname string, f *Function, name string, v any) {
	where := fmt.Sprintf("%s: event %s", fid, name)
	m, _ := v.(map[string]any)
	for _, k := range sortedKeys(m) {
		if k != "Type" && k != "Properties" {
			p.fail("%s: %s is not supported", where, k)
		}
	}
	t, _ := m["Type"].(string)
	pm, _ := m["Properties"].(map[string]any)
	if pm == nil {
		pm = map[string]any{}
	}
	pr := p.newProps(where, pm)
	switch t {
	case "Schedule", "ScheduleV2":
		exprProp := "Schedule"
		if t == "ScheduleV2" {
			exprProp = "ScheduleExpression"
		}
		expr := pr.str(exprProp)
		sc := &Schedule{Expression: expr, Input: pr.str("Input"), Enabled: pr.flag("Enabled")}
		switch st := pr.str("State"); st {
		case "":
		case "ENABLED", "DISABLED":
			on := st == "ENABLED"
			sc.Enabled = &on
		default:
			p.fail("%s: property State: want ENABLED or DISABLED", where)
		}
		if t == "Schedule" {
			sc.Rule, sc.RuleName = true, pr.str("Name")
		}
		if expr == "" {
			p.fail("%s: property %s is required", where, exprProp)
		}
		pr.raw("Description")
		pr.ignore("Flint does not check IAM permissions", "RoleArn", "PermissionsBoundary")
		if f.Schedules == nil {
			f.Schedules = map[string]*Schedule{}
		}
		f.Schedules[name] = sc
	case "SQS":
		mp := &Mapping{Event: name, Source: pr.str("Queue"), BatchSize: pr.num("BatchSize"),
			Window: pr.num("MaximumBatchingWindowInSeconds"), Enabled: pr.flag("Enabled"),
			ResponseTypes: pr.strs("FunctionResponseTypes")}
		p.checkSource(where, "Queue", mp.Source, typeQueue, "Arn", "arn:aws:sqs:")
		mp.Filters = p.filters(pr)
		if sc := pr.sub("ScalingConfig"); sc != nil {
			mp.MaxConcurrency = sc.num("MaximumConcurrency")
			sc.done()
		}
		p.checkMapping(where, mp, false)
		f.Mappings = append(f.Mappings, mp)
	case "Kinesis":
		mp := &Mapping{Event: name, Source: pr.str("Stream"), StartingPosition: pr.str("StartingPosition"),
			BatchSize: pr.num("BatchSize"), Window: pr.num("MaximumBatchingWindowInSeconds"),
			Parallelization: pr.num("ParallelizationFactor"), Bisect: pr.flag("BisectBatchOnFunctionError"),
			MaxRetries: pr.num("MaximumRetryAttempts"), MaxRecordAge: pr.num("MaximumRecordAgeInSeconds"),
			Enabled: pr.flag("Enabled"), ResponseTypes: pr.strs("FunctionResponseTypes")}
		p.checkSource(where, "Stream", mp.Source, typeStream, "Arn", "arn:aws:kinesis:")
		if mp.StartingPosition != "TRIM_HORIZON" && mp.StartingPosition != "LATEST" {
			p.fail("%s: property StartingPosition: want TRIM_HORIZON or LATEST", where)
		}
		if n := pr.num("TumblingWindowInSeconds"); n != nil && *n != 0 {
			p.fail("%s: property TumblingWindowInSeconds is not supported by Flint", where)
		}
		if dc := pr.sub("DestinationConfig"); dc != nil {
			if of := dc.sub("OnFailure"); of != nil {
				mp.OnFailure = of.str("Destination")
				of.str("Type")
				if !strings.HasPrefix(mp.OnFailure, "arn:flint:jetstream:") {
					p.fail("%s: property DestinationConfig.OnFailure.Destination: Flint's stream mappings send failed batches only to JetStream streams (arn:flint:jetstream:REGION:ACCOUNT:stream/NAME)", where)
				}
				of.done()
			}
			dc.done()
		}
		mp.Filters = p.filters(pr)
		p.checkMapping(where, mp, true)
		f.Mappings = append(f.Mappings, mp)
	case "SNS":
		p.snsEvent(fid, f, name, pr)
	case "Api", "HttpApi":
		p.apiEvent(fid, fname, f, name, t, pr)
	case "":
		p.fail("%s: Type is required", where)
		return
	default:
		p.fail("%s: event type %s is not supported by Flint", where, t)
		return
	}
	pr.done()
}

// checkMapping checks a mapping's settings against Lambda's limits, so that a value Lambda
// refuses fails the template before anything is deployed.
func (p *samParser) checkMapping(where string, m *Mapping, stream bool) {
	between := func(prop string, v *int32, lo, hi int32) {
		if v != nil && (*v < lo || *v > hi) {
			p.fail("%s: property %s: %d is not between %d and %d", where, prop, *v, lo, hi)
		}
	}
	between("BatchSize", m.BatchSize, 1, 10000)
	between("MaximumBatchingWindowInSeconds", m.Window, 0, 300)
	if !stream && m.BatchSize != nil && *m.BatchSize > 10 && (m.Window == nil || *m.Window < 1) {
		p.fail("%s: property MaximumBatchingWindowInSeconds: at least 1 is required with a BatchSize over 10", where)
	}
	between("ScalingConfig.MaximumConcurrency", m.MaxConcurrency, 2, 1000)
	between("ParallelizationFactor", m.Parallelization, 1, 10)
	between("MaximumRetryAttempts", m.MaxRetries, -1, 10000)
	if a := m.MaxRecordAge; a != nil && *a != -1 && (*a < 60 || *a > 604800) {
		p.fail("%s: property MaximumRecordAgeInSeconds: want -1 or 60 to 604800", where)
	}
	for _, t := range m.ResponseTypes {
		if t != "ReportBatchItemFailures" {
			p.fail("%s: property FunctionResponseTypes: %s is not ReportBatchItemFailures", where, t)
		}
	}
	if len(m.Filters) > 5 {
		p.fail("%s: property FilterCriteria: %d filters, Lambda allows at most 5", where, len(m.Filters))
	}
}

// checkSource checks that an event's source is a reference to a resource of type t (its
// attribute attr) or an ARN with prefix.
func (p *samParser) checkSource(where, prop, s, t, attr, prefix string) {
	if s == "" {
		p.fail("%s: property %s is required", where, prop)
		return
	}
	if _, ok := p.refTo(s, t, attr); ok || (!hasRef(s) && strings.HasPrefix(s, prefix)) {
		return
	}
	p.fail("%s: property %s: want !GetAtt of an %s's %s or an %s… ARN", where, prop, t, attr, prefix)
}

// filters reads an event's FilterCriteria: {Filters: [{Pattern: …}]}, a pattern a JSON
// string or a map.
func (p *samParser) filters(pr *props) []string {
	fc := pr.sub("FilterCriteria")
	if fc == nil {
		return nil
	}
	var out []string
	list, _ := fc.raw("Filters").([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		fp := p.newProps(fc.where, m)
		fp.path = fc.path + "Filters."
		out = append(out, fp.doc("Pattern"))
		fp.done()
	}
	fc.done()
	return out
}

// qualified is a function's ARN placeholder, on its alias when it has one: events invoke the
// alias, as SAM wires them.
func qualified(fid string, f *Function) string {
	s := placeholder(fid, "Arn")
	if f.Alias != "" {
		s += ":" + f.Alias
	}
	return s
}

func (p *samParser) snsEvent(fid string, f *Function, name string, pr *props) {
	where := pr.where
	topic := pr.str("Topic")
	if topic == "" {
		p.fail("%s: property Topic is required", where)
	} else if _, ok := p.refTo(topic, typeTopic, ""); !ok && (hasRef(topic) || !strings.HasPrefix(topic, "arn:aws:sns:")) {
		p.fail("%s: property Topic: want !Ref of an %s or an arn:aws:sns:… ARN", where, typeTopic)
	}
	if r := pr.str("Region"); r != "" {
		p.fail("%s: property Region is not supported by Flint (its topics are in its own region)", where)
	}
	attrs := map[string]string{}
	if fp := pr.doc("FilterPolicy"); fp != "" {
		attrs["FilterPolicy"] = fp
	}
	if s := pr.str("FilterPolicyScope"); s != "" {
		attrs["FilterPolicyScope"] = s
	}
	if rp := pr.doc("RedrivePolicy"); rp != "" {
		attrs["RedrivePolicy"] = rp
	}
	sqsSub := pr.raw("SqsSubscription")
	var subQueue *props
	switch v := sqsSub.(type) {
	case nil:
	case bool:
		if !v {
			sqsSub = nil
		}
	case map[string]any:
		subQueue = p.newProps(where, v)
		subQueue.path = "SqsSubscription."
	default:
		p.fail("%s: property SqsSubscription: want true or a map", where)
		return
	}
	if sqsSub == nil {
		p.st.Subscriptions = append(p.st.Subscriptions, &Subscription{Topic: topic, Protocol: "lambda",
			Endpoint: qualified(fid, f), Attributes: attrs, Owner: fid + " event " + name})
		return
	}
	// SqsSubscription: the topic delivers to a queue (the template's own, or one SAM would
	// create, named <function><event>Queue), and the queue to the function.
	mp := &Mapping{Event: name}
	if subQueue != nil {
		mp.Source = subQueue.str("QueueArn")
		subQueue.str("QueueUrl")
		mp.BatchSize, mp.Enabled = subQueue.num("BatchSize"), subQueue.flag("Enabled")
		subQueue.ignore("Flint does not check queue policies", "QueuePolicyLogicalId")
		subQueue.done()
		p.checkSource(where, "SqsSubscription.QueueArn", mp.Source, typeQueue, "Arn", "arn:aws:sqs:")
	} else {
		qid := fid + name + "Queue"
		if _, taken := p.types[qid]; taken {
			p.fail("%s: SqsSubscription's queue %s: the template has a resource of that name", where, qid)
			return
		}
		p.types[qid] = typeQueue
		p.st.Queues[qid] = &Queue{Attributes: map[string]string{}, Tags: map[string]string{}}
		mp.Source = placeholder(qid, "Arn")
	}
	p.st.Subscriptions = append(p.st.Subscriptions, &Subscription{Topic: topic, Protocol: "sqs",
		Endpoint: mp.Source, Attributes: attrs, Owner: fid + " event " + name})
	f.Mappings = append(f.Mappings, mp)
}

func (p *samParser) apiEvent(fid, fname string, f *Function, name, t string, pr *props) {
	where := pr.where
	protocol, idProp, implicit, apiType := "REST", "RestApiId", implicitRestAPI, typeRestAPI
	if t == "HttpApi" {
		protocol, idProp, implicit, apiType = "HTTP", "ApiId", implicitHTTPAPI, typeHTTPAPI
	}
	r := Route{Path: pr.str("Path"), Method: strings.ToUpper(pr.str("Method")), Function: fname, Qualifier: f.Alias}
	if r.Method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
		r.Method = "ANY"
	}
	if t == "HttpApi" {
		r.PayloadFormatVersion = pr.str("PayloadFormatVersion")
		if r.PayloadFormatVersion == "" {
			r.PayloadFormatVersion = "2.0"
		}
		if r.Path == "" && r.Method == "" {
			r.Path, r.Method = "$default", "ANY" // SAM's catch-all route
		}
	}
	switch {
	case r.Path == "" || r.Method == "":
		p.fail("%s: properties Path and Method are required", where)
	case !slices.Contains([]string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"}, r.Method):
		p.fail("%s: property Method: %s is not an HTTP method API Gateway routes", where, r.Method)
	case r.Path != "$default" && !strings.HasPrefix(r.Path, "/") || r.Path == "$default" && t != "HttpApi":
		p.fail("%s: property Path: %q does not start with /", where, r.Path)
	}
	if v := r.PayloadFormatVersion; v != "" && v != "1.0" && v != "2.0" {
		p.fail("%s: property PayloadFormatVersion: want 1.0 or 2.0", where)
	}
	if ms := pr.num("TimeoutInMillis"); ms != nil {
		max := int32(29000) // API Gateway's longest integration timeouts
		if t == "HttpApi" {
			max = 30000
		}
		if *ms < 50 || *ms > max {
			p.fail("%s: property TimeoutInMillis: %d is not between 50 and %d", where, *ms, max)
		}
		r.TimeoutInMillis = *ms
	}
	if a := pr.sub("Auth"); a != nil {
		if az := a.str("Authorizer"); az != "NONE" {
			p.fail("%s: property Auth is not supported by Flint (only Authorizer: NONE): its routes are public", where)
		}
		a.done()
	}
	apiID := implicit
	if raw := pr.raw(idProp); raw != nil {
		rm, _ := raw.(map[string]any)
		id, _ := rm["Ref"].(string)
		if p.types[id] != apiType {
			p.fail("%s: property %s: want !Ref of an %s of the template", where, idProp, apiType)
			return
		}
		apiID = id
	}
	api := p.st.APIs[apiID]
	if api == nil {
		if apiID != implicit {
			p.api(apiID, apiType)
			api = p.st.APIs[apiID]
		} else {
			api = &API{Protocol: protocol, Stage: "Prod"}
			if protocol == "HTTP" {
				api.Stage = "$default"
			}
			p.st.APIs[apiID] = api
		}
	}
	if api == nil {
		return
	}
	for _, o := range api.Routes {
		if o.Method == r.Method && o.Path == r.Path {
			p.fail("%s: route %s %s is already %s's", where, r.Method, r.Path, o.Function)
			return
		}
	}
	api.Routes = append(api.Routes, r)
	sort.Slice(api.Routes, func(i, j int) bool {
		a, b := api.Routes[i], api.Routes[j]
		return a.Path < b.Path || (a.Path == b.Path && a.Method < b.Method)
	})
}

// api reads an AWS::Serverless::Api or HttpApi resource (once: events may get to it first).
func (p *samParser) api(id, t string) {
	if _, ok := p.st.APIs[id]; ok {
		return
	}
	pr := p.newProps(id, p.props(id))
	api := &API{Protocol: "REST", Stage: pr.str("StageName")}
	vars := "Variables"
	if t == typeHTTPAPI {
		api.Protocol, vars = "HTTP", "StageVariables"
		if api.Stage == "" {
			api.Stage = "$default"
		}
	} else if api.Stage == "" {
		p.fail("%s: property StageName is required", id)
	}
	if v := pr.sub(vars); v != nil {
		api.Variables = map[string]string{}
		for _, k := range sortedKeys(v.m) {
			api.Variables[k] = v.str(k)
		}
		v.done()
	}
	pr.raw("Name")
	pr.raw("Description")
	pr.ignore("Flint does not tag APIs from templates (it tags them flint:stack)", "Tags")
	pr.done()
	p.st.APIs[id] = api
}

func (p *samParser) queue(id string) {
	pr := p.newProps(id, p.props(id))
	q := &Queue{Name: pr.str("QueueName"), Attributes: map[string]string{}, Tags: pr.tags("Tags")}
	for _, k := range []string{"DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
		"VisibilityTimeout", "FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"} {
		if s := pr.str(k); s != "" {
			q.Attributes[k] = s
		}
	}
	limits := map[string][2]int{"DelaySeconds": {0, 900}, "MaximumMessageSize": {1024, 262144},
		"MessageRetentionPeriod": {60, 1209600}, "ReceiveMessageWaitTimeSeconds": {0, 20}, "VisibilityTimeout": {0, 43200}}
	for _, k := range sortedKeys(limits) {
		lim := limits[k]
		if v, ok := q.Attributes[k]; ok {
			if n, err := strconv.Atoi(v); err != nil || n < lim[0] || n > lim[1] {
				p.fail("%s: property %s: %q is not a whole number between %d and %d", id, k, v, lim[0], lim[1])
			}
		}
	}
	if rp := pr.sub("RedrivePolicy"); rp != nil {
		target, max := rp.str("deadLetterTargetArn"), rp.num("maxReceiveCount")
		if max != nil && (*max < 1 || *max > 1000) {
			p.fail("%s: property RedrivePolicy.maxReceiveCount: %d is not between 1 and 1000", id, *max)
		}
		rp.done()
		if target == "" || max == nil {
			p.fail("%s: property RedrivePolicy: want deadLetterTargetArn and maxReceiveCount", id)
		} else {
			b, _ := json.Marshal(struct {
				Target string `json:"deadLetterTargetArn"`
				Max    int32  `json:"maxReceiveCount"`
			}{target, *max})
			q.Attributes["RedrivePolicy"] = string(b)
		}
	}
	if rap := pr.doc("RedriveAllowPolicy"); rap != "" {
		q.Attributes["RedriveAllowPolicy"] = rap
	}
	if q.Attributes["FifoQueue"] == "true" && q.Name != "" && !strings.HasSuffix(q.Name, ".fifo") {
		p.fail("%s: property QueueName: a FIFO queue's name ends with .fifo", id)
	}
	pr.ignore("Flint encrypts its data with its own keys", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled")
	pr.done()
	p.st.Queues[id] = q
}

func (p *samParser) topic(id string) {
	pr := p.newProps(id, p.props(id))
	t := &Topic{Name: pr.str("TopicName"), Attributes: map[string]string{}, Tags: pr.tags("Tags")}
	for _, k := range []string{"DisplayName", "FifoTopic", "ContentBasedDeduplication", "FifoThroughputScope"} {
		if s := pr.str(k); s != "" {
			t.Attributes[k] = s
		}
	}
	if t.Attributes["FifoTopic"] == "true" && t.Name != "" && !strings.HasSuffix(t.Name, ".fifo") {
		p.fail("%s: property TopicName: a FIFO topic's name ends with .fifo", id)
	}
	if l := pr.raw("Subscription"); l != nil {
		list, _ := l.([]any)
		for i, e := range list {
			m, _ := e.(map[string]any)
			sp := p.newProps(id, m)
			sp.path = fmt.Sprintf("Subscription[%d].", i)
			s := &Subscription{Topic: placeholder(id, ""), Protocol: sp.str("Protocol"), Endpoint: sp.str("Endpoint"), Owner: id}
			sp.done()
			p.checkSubscription(id, sp.path, s)
			p.st.Subscriptions = append(p.st.Subscriptions, s)
		}
	}
	pr.ignore("Flint encrypts its data with its own keys", "KmsMasterKeyId")
	pr.ignore("Flint has no tracing service", "TracingConfig")
	pr.ignore("Flint logs no delivery status to CloudWatch", "DeliveryStatusLogging")
	pr.ignore("Flint signs no messages", "SignatureVersion")
	pr.done()
	p.st.Topics[id] = t
}

func (p *samParser) subscription(id string) {
	pr := p.newProps(id, p.props(id))
	s := &Subscription{Topic: pr.str("TopicArn"), Protocol: pr.str("Protocol"), Endpoint: pr.str("Endpoint"),
		Attributes: map[string]string{}, Owner: id}
	if s.Topic == "" {
		p.fail("%s: property TopicArn is required", id)
	} else if _, ok := p.refTo(s.Topic, typeTopic, ""); !ok && (hasRef(s.Topic) || !strings.HasPrefix(s.Topic, "arn:aws:sns:")) {
		p.fail("%s: property TopicArn: want !Ref of an %s or an arn:aws:sns:… ARN", id, typeTopic)
	}
	if fp := pr.doc("FilterPolicy"); fp != "" {
		s.Attributes["FilterPolicy"] = fp
	}
	if rp := pr.doc("RedrivePolicy"); rp != "" {
		s.Attributes["RedrivePolicy"] = rp
	}
	for _, k := range []string{"FilterPolicyScope", "RawMessageDelivery"} {
		if v := pr.str(k); v != "" {
			s.Attributes[k] = v
		}
	}
	if r := pr.str("Region"); r != "" {
		p.fail("%s: property Region is not supported by Flint (its topics are in its own region)", id)
	}
	pr.ignore("Flint does not check IAM permissions", "SubscriptionRoleArn")
	pr.done()
	p.checkSubscription(id, "", s)
	p.st.Subscriptions = append(p.st.Subscriptions, s)
}

// checkSubscription checks a subscription's protocol and endpoint: SNS's to Lambda, SQS and
// HTTP(S); a !GetAtt of the template's function or queue for the first two.
func (p *samParser) checkSubscription(where, path string, s *Subscription) {
	switch s.Protocol {
	case "lambda":
		if _, ok := p.refTo(s.Endpoint, typeFunction, "Arn"); !ok && (hasRef(s.Endpoint) || !strings.HasPrefix(s.Endpoint, "arn:aws:lambda:")) {
			p.fail("%s: property %sEndpoint: want !GetAtt of a function's Arn or a function ARN", where, path)
		}
	case "sqs":
		if _, ok := p.refTo(s.Endpoint, typeQueue, "Arn"); !ok && (hasRef(s.Endpoint) || !strings.HasPrefix(s.Endpoint, "arn:aws:sqs:")) {
			p.fail("%s: property %sEndpoint: want !GetAtt of a queue's Arn or a queue ARN", where, path)
		}
	case "http", "https":
		if !strings.HasPrefix(s.Endpoint, s.Protocol+"://") {
			p.fail("%s: property %sEndpoint: want an %s:// URL", where, path, s.Protocol)
		}
	case "":
		p.fail("%s: property %sProtocol is required", where, path)
	default:
		p.fail("%s: property %sProtocol %s is not supported by Flint (lambda, sqs, http or https)", where, path, s.Protocol)
	}
}

func (p *samParser) stream(id string) {
	pr := p.newProps(id, p.props(id))
	s := &Stream{Name: pr.str("Name"), Shards: pr.num("ShardCount"), RetentionHours: pr.num("RetentionPeriodHours"),
		Tags: pr.tags("Tags")}
	if md := pr.sub("StreamModeDetails"); md != nil {
		s.Mode = md.str("StreamMode")
		md.done()
	}
	switch {
	case s.Mode != "" && s.Mode != "PROVISIONED" && s.Mode != "ON_DEMAND":
		p.fail("%s: property StreamModeDetails.StreamMode: want PROVISIONED or ON_DEMAND", id)
	case s.Mode == "ON_DEMAND" && s.Shards != nil:
		p.fail("%s: property ShardCount: an ON_DEMAND stream has no shard count", id)
	case s.Mode == "PROVISIONED" && s.Shards == nil:
		p.fail("%s: property ShardCount is required for a PROVISIONED stream", id)
	case s.Shards != nil && *s.Shards < 1:
		p.fail("%s: property ShardCount: at least 1", id)
	}
	if h := s.RetentionHours; h != nil && (*h < 24 || *h > 8760) {
		p.fail("%s: property RetentionPeriodHours: %d is not between 24 and 8760", id, *h)
	}
	pr.ignore("Flint encrypts its data with its own keys", "StreamEncryption")
	pr.ignore("Flint has no shard-level metrics", "DesiredShardLevelMetrics")
	pr.done()
	p.st.Streams[id] = s
}
