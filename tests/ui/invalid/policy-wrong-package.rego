# Written for OPA, not for Warden.
package authz

default allow := false
