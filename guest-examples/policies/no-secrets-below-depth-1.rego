# No secret use by sub-agents deeper than 1.
#
# A grant issued from the manifest has depth 0; a sub-agent's grant delegated from it has
# depth 1; a grant that sub-agent delegates further has depth 2. This policy denies any
# use of a host-held secret (input.call.kind == "secret": injection into a request,
# signing, reveal) under a grant deeper than 1, whatever that grant was delegated, so a
# credential's reach stops at the agent and its direct sub-agents.
#
# Use it by naming it in the tool's manifest (the path is relative to the manifest):
#
#     [policy]
#     file = "no-secrets-below-depth-1.rego"
#
# The decision depends on the grant and the call only, so it is marked cacheable.
package warden

max_depth := 1

deny contains msg if {
	input.call.kind == "secret"
	input.grant.depth > max_depth
	msg := sprintf(
		"secrets may be used at grant depth %v or less; grant %s is at depth %v (%s)",
		[max_depth, input.grant.id, input.grant.depth, concat(" > ", input.grant.chain)],
	)
}

cacheable := true
