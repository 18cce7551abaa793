package sns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/eventfilter"
	"github.com/flint-run/flint/internal/store"
)

type subscribeInput struct {
	TopicArn              string            `json:"TopicArn"`
	Protocol              string            `json:"Protocol"`
	Endpoint              string            `json:"Endpoint"`
	Attributes            map[string]string `json:"Attributes"`
	ReturnSubscriptionArn flag              `json:"ReturnSubscriptionArn"`
}

type subscriptionArnOutput struct {
	SubscriptionArn string `json:"SubscriptionArn"`
}

// subscriptionAttributes are the attributes a subscription may be given.
var subscriptionAttributes = map[string]bool{
	"DeliveryPolicy": true, "FilterPolicy": true, "FilterPolicyScope": true, "RawMessageDelivery": true,
	"RedrivePolicy": true, "SubscriptionRoleArn": true, "ReplayPolicy": true,
}

func checkSubscriptionAttribute(name, value, protocol string) error {
	if !subscriptionAttributes[name] {
		return errInvalid("AttributeName")
	}
	switch name {
	case "FilterPolicy":
		if value == "" {
			return nil // removes the policy
		}
		if _, err := compilePolicy(value); err != nil {
			return errInvalid("FilterPolicy: " + strings.TrimPrefix(err.Error(), eventfilter.ErrInvalid.Error()+": "))
		}
	case "FilterPolicyScope":
		if value != "MessageAttributes" && value != "MessageBody" {
			return errInvalid("Attributes Reason: FilterPolicyScope: Invalid value [" + value + "]. Please use either MessageBody or MessageAttributes")
		}
	case "RawMessageDelivery":
		if value != "true" && value != "false" {
			return errInvalid("Attributes Reason: RawMessageDelivery: Invalid value [" + value + "]. Must be true or false.")
		}
		if value == "true" && protocol == "lambda" {
			return errInvalid("Attributes Reason: Delivery protocol [lambda] does not support raw message delivery.")
		}
	case "RedrivePolicy":
		if _, err := deadLetterARN(value); err != nil {
			return err
		}
	case "DeliveryPolicy", "ReplayPolicy":
		if !json.Valid([]byte(value)) {
			return errInvalid(name + ": failed to parse JSON.")
		}
	}
	return nil
}

// compilePolicy compiles a filter policy: the EventBridge pattern grammar, as SNS takes it.
func compilePolicy(policy string) (*eventfilter.Pattern, error) {
	if len(policy) > 256<<10 {
		return nil, errors.New("Filter policy is too large")
	}
	return eventfilter.Compile(policy)
}

// checkEndpoint validates a subscription's protocol and endpoint.
func (s *Service) checkEndpoint(protocol, endpoint string) error {
	switch protocol {
	case "lambda":
		p := strings.Split(endpoint, ":")
		if len(p) < 7 || len(p) > 8 || p[0] != "arn" || p[2] != "lambda" || p[5] != "function" || p[6] == "" {
			return errInvalid("Lambda endpoint ARN")
		}
	case "sqs":
		p := strings.Split(endpoint, ":")
		if len(p) != 6 || p[0] != "arn" || p[2] != "sqs" || p[5] == "" {
			return errInvalid("SQS endpoint ARN")
		}
	case "http", "https":
		if !strings.HasPrefix(endpoint, protocol+"://") {
			return errInvalid("Endpoint must match the specified protocol")
		}
	case "":
		return errInvalid("Protocol")
	default:
		return errInvalid("Amazon SNS does not support this protocol string: " + protocol)
	}
	return nil
}

func (s *Service) subscribe(ctx context.Context, c *call, in *subscribeInput) (any, error) {
	t, _, err := s.topicByARN(ctx, in.TopicArn, "TopicArn")
	if err != nil {
		return nil, err
	}
	if err := s.checkEndpoint(in.Protocol, in.Endpoint); err != nil {
		return nil, err
	}
	if t.fifo() && in.Protocol == "sqs" && !strings.HasSuffix(in.Endpoint, ".fifo") {
		return nil, errInvalid("Invalid parameter: Endpoint Reason: FIFO SNS Topics currently only support FIFO SQS Queues as endpoints")
	}
	attrs := map[string]string{}
	for k, v := range in.Attributes {
		if err := checkSubscriptionAttribute(k, v, in.Protocol); err != nil {
			return nil, err
		}
		if v != "" {
			attrs[k] = v
		}
	}
	existing, err := s.subscriptions(ctx, t.Name)
	if err != nil {
		return nil, err
	}
	for _, sub := range existing {
		if sub.Protocol == in.Protocol && sub.Endpoint == in.Endpoint {
			if !maps.Equal(sub.Attributes, attrs) && len(in.Attributes) > 0 {
				return nil, errInvalid("Attributes Reason: Subscription already exists with different attributes")
			}
			return &subscriptionArnOutput{SubscriptionArn: shownArn(sub, bool(in.ReturnSubscriptionArn))}, nil
		}
	}
	id := uuid.NewString()
	sub := &subscription{Arn: t.Arn + ":" + id, TopicArn: t.Arn, Protocol: in.Protocol, Endpoint: in.Endpoint, Attributes: attrs}
	http := in.Protocol == "http" || in.Protocol == "https"
	if http {
		var b [64]byte
		_, _ = rand.Read(b[:])
		sub.Pending, sub.Token = true, hex.EncodeToString(b[:])
		if _, err := s.store.Create(ctx, "token."+sub.Token, marshal(sub.Arn)); err != nil {
			return nil, err
		}
	}
	var confirm *httpDelivery
	if http {
		if err := s.shareCert(ctx); err != nil {
			return nil, err
		}
		if confirm, err = s.confirmation(c, t, sub); err != nil {
			return nil, err
		}
	}
	if _, err := s.store.Create(ctx, subKey(t.Name, id), marshal(sub)); err != nil {
		return nil, err
	}
	if confirm != nil {
		// Stored before Subscribe answers; Run's consumer POSTs it.
		if err := s.enqueueHTTP(ctx, confirm); err != nil {
			return nil, err
		}
	}
	return &subscriptionArnOutput{SubscriptionArn: shownArn(sub, bool(in.ReturnSubscriptionArn))}, nil
}

// shownArn is a subscription's ARN as SNS shows it: "pending confirmation" until confirmed,
// unless the caller asked for the ARN.
func shownArn(sub *subscription, always bool) string {
	if sub.Pending && !always {
		return "pending confirmation"
	}
	return sub.Arn
}

type confirmInput struct {
	TopicArn                  string `json:"TopicArn"`
	Token                     string `json:"Token"`
	AuthenticateOnUnsubscribe string `json:"AuthenticateOnUnsubscribe"`
}

func (s *Service) confirmSubscription(ctx context.Context, _ *call, in *confirmInput) (any, error) {
	t, _, err := s.topicByARN(ctx, in.TopicArn, "TopicArn")
	if err != nil {
		return nil, err
	}
	if in.Token == "" || len(in.Token) > 512 {
		return nil, errInvalid("Token")
	}
	b, _, err := s.store.Get(ctx, "token."+in.Token)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalid("Invalid token")
	}
	if err != nil {
		return nil, err
	}
	var arn string
	if err := json.Unmarshal(b, &arn); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(arn, t.Arn+":") {
		return nil, errInvalid("Invalid token")
	}
	for {
		sub, rev, err := s.loadSub(ctx, arn)
		if err != nil {
			return nil, err
		}
		sub.Pending = false
		if _, err = s.store.Update(ctx, subKeyOf(s, arn), marshal(sub), rev); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return nil, err
		}
		return &subscriptionArnOutput{SubscriptionArn: arn}, nil
	}
}

func subKeyOf(s *Service, arn string) string {
	name, id, _ := s.subParts(arn)
	return subKey(name, id)
}

type subscriptionInput struct {
	SubscriptionArn string `json:"SubscriptionArn"`
}

func (s *Service) deleteSub(ctx context.Context, sub *subscription) error {
	if sub.Token != "" {
		if err := s.store.Delete(ctx, "token."+sub.Token); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if err := s.store.Delete(ctx, subKeyOf(s, sub.Arn)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

func (s *Service) unsubscribe(ctx context.Context, _ *call, in *subscriptionInput) (any, error) {
	sub, _, err := s.loadSub(ctx, in.SubscriptionArn)
	if isNotFound(err) {
		return nil, nil // already gone: Unsubscribe is idempotent
	}
	if err != nil {
		return nil, err
	}
	return nil, s.deleteSub(ctx, sub)
}

type subscriptionEntry struct {
	SubscriptionArn string `json:"SubscriptionArn"`
	Owner           string `json:"Owner"`
	Protocol        string `json:"Protocol"`
	Endpoint        string `json:"Endpoint"`
	TopicArn        string `json:"TopicArn"`
}

type listSubscriptionsOutput struct {
	Subscriptions []subscriptionEntry `json:"Subscriptions"`
	NextToken     string              `json:"NextToken,omitempty"`
}

func (s *Service) listSubs(ctx context.Context, topicName, token string) (any, error) {
	subs, err := s.subscriptions(ctx, topicName)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(subs, func(a, b *subscription) int { return strings.Compare(a.Arn, b.Arn) })
	pg, next := page(subs, func(s *subscription) string { return s.Arn }, token, 100)
	out := &listSubscriptionsOutput{Subscriptions: []subscriptionEntry{}, NextToken: next}
	for _, sub := range pg {
		arn := sub.Arn
		if sub.Pending {
			arn = "PendingConfirmation"
		}
		out.Subscriptions = append(out.Subscriptions, subscriptionEntry{SubscriptionArn: arn, Owner: s.account,
			Protocol: sub.Protocol, Endpoint: sub.Endpoint, TopicArn: sub.TopicArn})
	}
	return out, nil
}

func (s *Service) listSubscriptions(ctx context.Context, _ *call, in *listInput) (any, error) {
	return s.listSubs(ctx, "", in.NextToken)
}

type listByTopicInput struct {
	TopicArn  string `json:"TopicArn"`
	NextToken string `json:"NextToken"`
}

func (s *Service) listSubscriptionsByTopic(ctx context.Context, _ *call, in *listByTopicInput) (any, error) {
	t, _, err := s.topicByARN(ctx, in.TopicArn, "TopicArn")
	if err != nil {
		return nil, err
	}
	return s.listSubs(ctx, t.Name, in.NextToken)
}

func (s *Service) getSubscriptionAttributes(ctx context.Context, _ *call, in *subscriptionInput) (any, error) {
	sub, _, err := s.loadSub(ctx, in.SubscriptionArn)
	if err != nil {
		return nil, err
	}
	attrs := map[string]string{
		"SubscriptionArn": sub.Arn, "TopicArn": sub.TopicArn, "Owner": s.account, "Protocol": sub.Protocol,
		"Endpoint": sub.Endpoint, "PendingConfirmation": boolString(sub.Pending), "ConfirmationWasAuthenticated": boolString(!sub.Pending),
		"RawMessageDelivery": "false", "SubscriptionPrincipal": "arn:aws:iam::" + s.account + ":root",
	}
	if sub.Protocol == "http" || sub.Protocol == "https" {
		attrs["EffectiveDeliveryPolicy"] = defaultDeliveryPolicy
	}
	maps.Copy(attrs, sub.Attributes)
	if sub.Attributes["FilterPolicy"] != "" && sub.Attributes["FilterPolicyScope"] == "" {
		attrs["FilterPolicyScope"] = "MessageAttributes"
	}
	return &attributesOutput{Attributes: attrs}, nil
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func (s *Service) setSubscriptionAttributes(ctx context.Context, _ *call, in *setAttributeInput) (any, error) {
	if in.AttributeName == "" {
		return nil, errInvalid("AttributeName")
	}
	val := ""
	if in.AttributeValue != nil {
		val = *in.AttributeValue
	}
	for {
		sub, rev, err := s.loadSub(ctx, in.SubscriptionArn)
		if err != nil {
			return nil, err
		}
		if err := checkSubscriptionAttribute(in.AttributeName, val, sub.Protocol); err != nil {
			return nil, err
		}
		if sub.Attributes == nil {
			sub.Attributes = map[string]string{}
		}
		if val == "" {
			delete(sub.Attributes, in.AttributeName)
		} else {
			sub.Attributes[in.AttributeName] = val
		}
		_, err = s.store.Update(ctx, subKeyOf(s, sub.Arn), marshal(sub), rev)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return nil, err
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// deadLetterARN reads a subscription's RedrivePolicy: the SQS queue undeliverable messages go to.
func deadLetterARN(policy string) (string, error) {
	if policy == "" {
		return "", nil
	}
	var p struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
	}
	if err := json.Unmarshal([]byte(policy), &p); err != nil {
		return "", errInvalid("RedrivePolicy: failed to parse JSON.")
	}
	a := strings.Split(p.DeadLetterTargetArn, ":")
	if len(a) != 6 || a[0] != "arn" || a[2] != "sqs" || a[5] == "" {
		return "", errInvalid("RedrivePolicy: deadLetterTargetArn is an invalid arn")
	}
	return p.DeadLetterTargetArn, nil
}
