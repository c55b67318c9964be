# Only during business hours: Monday to Friday, 09:00 to 17:00 UTC.
#
# Denies every capability-relevant call (files, environment, HTTP, TCP, DNS, secrets)
# outside business hours; 17:00 itself is outside. The time is input.time, in UTC, which
# the runtime fills from its clock (and a test from its own); change `workdays`, `opens`
# and `closes` for another schedule, and convert local hours to UTC.
#
# Use it by naming it in the tool's manifest (the path is relative to the manifest):
#
#     [policy]
#     file = "business-hours.rego"
#
# It does not define `cacheable`: the decision depends on the time, so a verdict reused
# at 17:01 would be wrong.
package warden

workdays := {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}

opens := 9

closes := 17

business_hours if {
	input.time.weekday in workdays
	input.time.hour >= opens
	input.time.hour < closes
}

deny contains msg if {
	not business_hours
	msg := sprintf(
		"calls are allowed Monday to Friday, %v:00 to %v:00 UTC; it is %s, hour %v UTC",
		[opens, closes, input.time.weekday, input.time.hour],
	)
}
