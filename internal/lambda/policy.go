package lambda

// Policy is a function's (or version's, or alias's) resource-based policy as GetPolicy returns
// it (serialised as a string).
type Policy struct {
	Version   string            `json:"Version"`
	ID        string            `json:"Id"`
	Statement []PolicyStatement `json:"Statement"`
}

// PolicyStatement is one AddPermission grant. Principal is "*" or a one-key object
// ({"Service": …} or {"AWS": …}), as AWS renders it.
type PolicyStatement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Principal any                          `json:"Principal"`
	Action    string                       `json:"Action"`
	Resource  string                       `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// StoredPolicy is a policy with the revision id AddPermission/RemovePermission check.
type StoredPolicy struct {
	Policy     Policy `json:"policy"`
	RevisionID string `json:"revision_id"`
}

// AllowsPublicURL reports whether the policy lets anyone invoke a function URL whose AuthType
// is NONE: an Allow for Principal "*" of lambda:InvokeFunctionUrl (or lambda:*, *) with no
// condition an anonymous caller could not meet (lambda:FunctionUrlAuthType NONE is the one
// condition it meets).
func (p *Policy) AllowsPublicURL() bool {
	for _, s := range p.Statement {
		if s.Effect != "Allow" || !anyone(s.Principal) {
			continue
		}
		if s.Action != "lambda:InvokeFunctionUrl" && s.Action != "lambda:*" && s.Action != "*" {
			continue
		}
		ok := true
		for op, kv := range s.Condition {
			for k, v := range kv {
				if op != "StringEquals" || k != "lambda:FunctionUrlAuthType" || v != "NONE" {
					ok = false
				}
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func anyone(principal any) bool {
	switch p := principal.(type) {
	case string:
		return p == "*"
	case map[string]any:
		return len(p) == 1 && p["AWS"] == "*"
	case map[string]string:
		return len(p) == 1 && p["AWS"] == "*"
	}
	return false
}
