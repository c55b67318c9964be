package warden

deny contains msg if {
  input.call.kind ==
}
