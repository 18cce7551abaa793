package runtimes

import (
	"maps"
	"slices"
)

// Family groups runtimes by how they start.
type Family int

const (
	Provided Family = iota + 1 // an executable named bootstrap in the package or a layer
	Python                     // Flint's Python client under the host's python3
	Node                       // Flint's Node client under the host's node
)

// String returns the family's lower-case name.
func (f Family) String() string {
	switch f {
	case Provided:
		return "provided"
	case Python:
		return "python"
	case Node:
		return "node"
	}
	return "unknown"
}

// Runtime is one supported value of a function's Runtime field.
type Runtime struct {
	Name   string // the AWS identifier, e.g. "python3.12"
	Family Family
}

// catalogue is every supported runtime by identifier.
var catalogue = func() map[string]Runtime {
	m := make(map[string]Runtime)
	add := func(f Family, ids ...string) {
		for _, id := range ids {
			m[id] = Runtime{Name: id, Family: f}
		}
	}
	add(Provided, "provided", "provided.al2", "provided.al2023")
	add(Python, "python3.9", "python3.10", "python3.11", "python3.12", "python3.13")
	add(Node, "nodejs18.x", "nodejs20.x", "nodejs22.x")
	return m
}()

var names = slices.Sorted(maps.Keys(catalogue))

// Lookup returns the runtime with the given AWS identifier. Identifiers are case-sensitive, as
// in Lambda.
func Lookup(name string) (Runtime, bool) {
	r, ok := catalogue[name]
	return r, ok
}

// Names returns the supported identifiers, sorted. The caller owns the slice.
func Names() []string {
	return slices.Clone(names)
}
