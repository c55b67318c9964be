package warden

deny contains msg if {
  input.call.kind == "fs.write"
  input.context.risk > limit
  msg := "too risky"
}
