package warden

cacheable := true
