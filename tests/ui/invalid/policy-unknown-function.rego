package warden

deny contains "after hours" if {
  hour := time.clock(time.now_ns())[0]
  hour >= 17
}
