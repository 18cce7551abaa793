// SAM functions and their events: a function's properties (Globals merged), and each event
// (SQS, SNS, Kinesis, Schedule, ScheduleV2, Api, HttpApi) as a mapping, subscription, schedule
// or route. The parser and its helpers are in sam.go.

package stack

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

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
