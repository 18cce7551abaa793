// SAM's other resources: Api and HttpApi, SQS queues, SNS topics and subscriptions, Kinesis
// streams. The parser and its helpers are in sam.go.

package stack

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

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
