# No writes unless risk < 0.3.
#
# Denies every file write (input.call.kind == "fs.write": creating, truncating, writing,
# renaming, removing) unless the agent host rated the task's risk below 0.3, as a number
# in the task's context:
#
#     warden run tool.toml --context risk=0.1 ...
#
# A task with no risk, or a risk that is not a number, may not write: an unknown risk is
# not a low one. Reads, HTTP and everything else are left to the grant.
#
# Use it by naming it in the tool's manifest (the path is relative to the manifest):
#
#     [policy]
#     file = "no-writes-unless-low-risk.rego"
#
# The decision depends on the call and the task's context, never on the time, so it is
# marked cacheable: a task that writes one file many times asks the policy once.
package warden

threshold := 0.3

low_risk if {
	is_number(input.context.risk)
	input.context.risk < threshold
}

default risk_note := "no context.risk was given"

risk_note := sprintf("context.risk is %v", [input.context.risk])

deny contains msg if {
	input.call.kind == "fs.write"
	not low_risk
	msg := sprintf("writes need context.risk below %v; %s", [threshold, risk_note])
}

cacheable := true
