use super::*;

fn rule(url: &str) -> HttpRule {
    HttpRule::parse(url, None).unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn rule_m(url: &str, methods: &[&str]) -> HttpRule {
    HttpRule::parse(url, Some(methods.iter().map(|m| m.to_string()).collect()))
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn egress(rules: &[&str]) -> Egress {
    Egress::new(rules.iter().map(|r| rule(r)).collect())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[track_caller]
fn allows(e: &Egress, method: &str, url: &str) -> Allowed {
    e.check(method, url)
        .unwrap_or_else(|d| panic!("{method} {url} denied: {d}"))
}

#[track_caller]
fn denies(e: &Egress, method: &str, url: &str) -> EgressDenied {
    match e.check(method, url) {
        Ok(a) => panic!("{method} {url} allowed by {a}"),
        Err(d) => d,
    }
}

// ---- rule parsing ----

#[test]
fn http_rule_parse_defaults_port_from_scheme() {
    assert_eq!(rule("https://api.github.com").port(), 443);
    assert_eq!(rule("http://example.com/").port(), 80);
    assert_eq!(rule("https://example.com:8443/").port(), 8443);
    assert_eq!(rule("HTTPS://Example.COM/").scheme(), "https");
}

#[test]
fn http_rule_parse_hosts() {
    assert_eq!(
        rule("https://API.GitHub.com./").host(),
        &HostPattern::Exact("api.github.com".into())
    );
    assert_eq!(
        rule("https://*.example.com/").host(),
        &HostPattern::Suffix("example.com".into())
    );
    assert_eq!(
        rule("http://127.0.0.1:8080/").host(),
        &HostPattern::Ip(ip("127.0.0.1"))
    );
    assert_eq!(
        rule("http://[::ffff:127.0.0.1]/").host(),
        &HostPattern::Ip(ip("127.0.0.1"))
    );
    assert_eq!(
        rule("http://10.0.0.0/8").host(),
        &HostPattern::Cidr("10.0.0.0/8".parse().unwrap())
    );
    assert_eq!(
        rule("http://[fd00::]/8/api/").host(),
        &HostPattern::Cidr("fd00::/8".parse().unwrap())
    );
}

#[test]
fn http_rule_parse_errors_name_the_value() {
    let cases: &[(&str, &str)] = &[
        ("https://user@api.github.com/", "userinfo"),
        ("https://user:pw@api.github.com/", "userinfo"),
        ("https://api.github.com/?q=1", "query"),
        ("https://api.github.com/#x", "fragment"),
        ("ftp://example.com/", "scheme \"ftp\""),
        ("file:///etc/passwd", "scheme \"file\""),
        ("https:///path", "empty host"),
        ("https://", "empty host"),
        ("https://:443/", "empty host"),
        ("https://*foo.com/", "bad wildcard"),
        ("https://a.*.com/", "bad wildcard"),
        ("https://*/", "bad wildcard"),
        ("https://*./", "bad wildcard"),
        ("https://*.*.com/", "bad wildcard"),
        ("https://*.10.0.0.1/", "bad wildcard"),
        ("http://10.0.0.1/8", "host bits"),
        ("http://10.0.0.0/33", "prefix length"),
        ("api.github.com", "malformed"),
        ("https://api.github.com\\admin", "backslash"),
        ("https://exa mple.com/", "malformed"),
        ("https://api.github.com:99999/", "malformed"),
        ("http://[::1/", "malformed"),
    ];
    for (url, want) in cases {
        let err = HttpRule::parse(url, None)
            .err()
            .unwrap_or_else(|| panic!("{url} parsed"))
            .to_string();
        assert!(err.contains(want), "{url}: {err}");
        assert!(err.contains(&format!("{url:?}")), "{url}: {err}");
    }
}

#[test]
fn http_rule_parse_methods() {
    let err = |m: &[&str]| {
        HttpRule::parse(
            "https://x.com/",
            Some(m.iter().map(|s| s.to_string()).collect()),
        )
        .unwrap_err()
    };
    assert!(matches!(err(&["get"]), RuleError::BadMethod { method } if method == "get"));
    assert!(matches!(err(&["GET POST"]), RuleError::BadMethod { .. }));
    assert!(matches!(err(&[""]), RuleError::BadMethod { .. }));
    assert!(matches!(err(&["GET\r\n"]), RuleError::BadMethod { .. }));
    assert!(matches!(err(&[]), RuleError::NoMethods { .. }));
    assert_eq!(
        rule_m("https://x.com/", &["GET", "POST"]).methods(),
        Some(&["GET".to_string(), "POST".to_string()][..])
    );
}

// ---- hosts ----

#[test]
fn http_deny_by_default() {
    let e = Egress::default();
    let d = denies(&e, "GET", "https://example.com/");
    assert!(d.to_string().contains("no [[http]] rules"), "{d}");
    assert!(d.to_string().contains("to allow this request, add"), "{d}");
}

#[test]
fn http_host_outside_rules_is_denied_with_the_line_that_allows_it() {
    let e = egress(&["https://api.github.com/"]);
    allows(&e, "GET", "https://api.github.com/user");
    let d = denies(&e, "GET", "https://evil.net/x?token=1");
    let msg = d.to_string();
    assert!(msg.contains("no rule names https://evil.net"), "{msg}");
    assert!(
        msg.contains(r#"url = "https://evil.net/x" and methods = ["GET"]"#),
        "{msg}"
    );
    denies(&e, "GET", "https://api.github.com.evil.net/");
    denies(&e, "GET", "https://github.com/");
    denies(&e, "GET", "https://xapi.github.com/");
}

#[test]
fn http_host_is_normalized() {
    let e = egress(&["https://api.github.com/"]);
    allows(&e, "GET", "https://API.GITHUB.COM./");
    allows(&e, "GET", "https://Api.GitHub.Com/repos");
    denies(&e, "GET", "https://api.github.com../");
    let e = egress(&["https://API.GITHUB.COM./"]);
    allows(&e, "GET", "https://api.github.com/");
}

#[test]
fn http_wildcard_matches_at_a_label_boundary_only() {
    let e = egress(&["https://*.example.com/"]);
    allows(&e, "GET", "https://api.example.com/");
    allows(&e, "GET", "https://a.b.example.com/");
    allows(&e, "GET", "https://API.Example.COM./");
    for url in [
        "https://example.com/",
        "https://example.com.evil.net/",
        "https://evilexample.com/",
        "https://api.example.com.evil.net/",
        "https://api.example.co/",
        "https://.example.com/",
        "http://api.example.com/",
    ] {
        denies(&e, "GET", url);
    }
}

#[test]
fn http_ip_literals_in_any_notation_need_an_ip_rule() {
    let e = egress(&["https://api.github.com/", "https://*.example.com/"]);
    for url in [
        "http://127.0.0.1/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://017700000001/",
        "http://127.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0xa9fea9fe/",
        "http://[fd00:ec2::254]/",
        "http://0/",
    ] {
        let d = denies(&e, "GET", url);
        assert!(matches!(d, EgressDenied::NotAllowed { .. }), "{url}: {d}");
    }
}

#[test]
fn http_ip_rule_matches_every_notation_of_its_ip() {
    let e = egress(&["http://127.0.0.1:8080/"]);
    for url in [
        "http://127.0.0.1:8080/",
        "http://2130706433:8080/",
        "http://0x7f.1:8080/",
        "http://0177.0.0.1:8080/x",
        "http://[::ffff:127.0.0.1]:8080/",
    ] {
        let a = allows(&e, "GET", url);
        e.check_addr(&a, ip("127.0.0.1")).unwrap();
    }
    denies(&e, "GET", "http://127.0.0.2:8080/");
    denies(&e, "GET", "http://localhost:8080/");
    denies(&e, "GET", "http://[::1]:8080/");
}

#[test]
fn http_cidr_rule() {
    let e = egress(&["http://10.0.0.0/8/api/"]);
    let a = allows(&e, "GET", "http://10.1.2.3/api/x");
    e.check_addr(&a, ip("10.1.2.3")).unwrap();
    denies(&e, "GET", "http://11.0.0.1/api/x");
    denies(&e, "GET", "http://10.1.2.3/other");
    denies(&e, "GET", "http://internal.corp/api/x");
}

#[test]
fn http_idn_homographs_and_unicode_hosts() {
    let e = egress(&["https://api.github.com/", "https://*.bücher.de/"]);
    // Cyrillic `а` is another host.
    denies(&e, "GET", "https://\u{430}pi.github.com/");
    allows(&e, "GET", "https://shop.xn--bcher-kva.de/");
    allows(&e, "GET", "https://shop.BÜCHER.de/");
    denies(&e, "GET", "https://bücher.de/");
}

#[test]
fn http_allowed_carries_what_was_checked() {
    let e = egress(&["https://api.github.com/repos/", "http://[::1]:9000/"]);
    let a = allows(&e, "GET", "https://API.GITHUB.COM./repos/a/../b?x=1#frag");
    assert_eq!(a.url(), "https://api.github.com/repos/b?x=1");
    assert_eq!(a.host(), "api.github.com");
    assert_eq!(a.port(), 443);
    let a = allows(&e, "GET", "http://[0:0::1]:9000/");
    assert_eq!(a.host(), "[::1]");
    assert_eq!(a.port(), 9000);
}

#[test]
fn http_urls_that_parsers_read_differently_are_refused() {
    let e = egress(&["https://api.github.com/"]);
    for url in [
        "https://api.github.com/re\npos",
        "https://api.github.com/re\tpos",
        " https://api.github.com/",
        "https://api.github.com/ ",
        "https://api.github.com/a b",
        "https://api.github.com\\@evil.net/",
        "https://evil.net\\@api.github.com/",
        "https://api.github.com/\0",
        "https://api.github.com/\r\nHost: evil.net",
    ] {
        let d = denies(&e, "GET", url);
        assert!(matches!(d, EgressDenied::BadUrl { .. }), "{url:?}: {d}");
    }
}

#[test]
fn http_wildcard_against_many_spellings() {
    let e = egress(&["https://*.example.com/"]);
    let labels = ["", "a", "example", "com", "evil", "example.com", "xexample"];
    let seps = ["", ".", "-"];
    for l in labels {
        for sep in seps {
            for tail in ["", ".evil.net", ".com", "."] {
                let host = format!("{l}{sep}example.com{tail}");
                let url = format!("https://{host}/");
                let want = !l.is_empty() && sep == "." && (tail.is_empty() || tail == ".");
                assert_eq!(e.check("GET", &url).is_ok(), want, "{url}");
            }
        }
    }
}

#[test]
fn http_a_name_is_not_its_address() {
    let e = egress(&["http://localhost:8080/"]);
    let a = allows(&e, "GET", "http://LOCALHOST:8080/");
    let d = e.check_addr(&a, ip("127.0.0.1")).unwrap_err();
    assert!(
        matches!(
            d,
            EgressDenied::Address {
                class: AddrClass::Loopback,
                ..
            }
        ),
        "{d}"
    );
    e.check_addr(&a, ip("::1")).unwrap_err();
}

// ---- scheme, userinfo, port ----

#[test]
fn http_userinfo_in_the_request_is_refused() {
    let e = egress(&["https://api.github.com/", "https://evil.net/"]);
    for url in [
        "https://api.github.com@evil.net/",
        "https://user:hunter2@api.github.com/",
        "https://:hunter2@api.github.com/",
        "https://api.github.com:443@evil.net/",
    ] {
        let d = denies(&e, "GET", url);
        assert!(matches!(d, EgressDenied::Userinfo { .. }), "{url}: {d}");
        assert!(!d.to_string().contains("hunter2"), "{d}");
    }
}

#[test]
fn http_only_http_and_https() {
    let e = egress(&["https://api.github.com/"]);
    for url in [
        "ftp://api.github.com/",
        "file:///etc/passwd",
        "ws://api.github.com/",
        "data:text/plain,hi",
        "javascript:alert(1)",
    ] {
        let d = denies(&e, "GET", url);
        assert!(matches!(d, EgressDenied::Scheme { .. }), "{url}: {d}");
    }
    denies(&e, "GET", "http://api.github.com/");
    denies(&e, "GET", "not a url");
    let d = denies(&e, "GET", "https://user:hunter2@/x");
    assert!(matches!(d, EgressDenied::BadUrl { .. }), "{d}");
    assert!(!d.to_string().contains("hunter2"), "{d}");
    denies(&e, "GET", "/relative");
}

#[test]
fn http_port_is_matched_exactly() {
    let e = egress(&["https://api.github.com/"]);
    allows(&e, "GET", "https://api.github.com:443/");
    let d = denies(&e, "GET", "https://api.github.com:8443/");
    let msg = d.to_string();
    assert!(msg.contains("port 8443"), "{msg}");
    assert!(msg.contains("https://api.github.com:8443/"), "{msg}");
    denies(&e, "GET", "http://api.github.com:443/");
    let e = egress(&["http://127.0.0.1:8080/"]);
    denies(&e, "GET", "http://127.0.0.1/");
    denies(&e, "GET", "http://127.0.0.1:80/");
    denies(&e, "GET", "http://127.0.0.1:08081/");
    allows(&e, "GET", "http://127.0.0.1:08080/");
}

// ---- paths ----

#[test]
fn http_path_prefix_is_matched_by_whole_segments() {
    for prefix in [
        "https://api.github.com/repos/",
        "https://api.github.com/repos",
    ] {
        let e = egress(&[prefix]);
        allows(&e, "GET", "https://api.github.com/repos/x");
        allows(&e, "GET", "https://api.github.com/repos/x/y?page=2");
        allows(&e, "GET", "https://api.github.com/repos/");
        allows(&e, "GET", "https://api.github.com/repos");
        allows(&e, "GET", "https://api.github.com/repos/a/./b");
        allows(&e, "GET", "https://api.github.com/rep%6Fs/x");
        for url in [
            "https://api.github.com/reposX",
            "https://api.github.com/repos.x/",
            "https://api.github.com/",
            "https://api.github.com/admin",
            "https://api.github.com//repos/x",
            "https://api.github.com/REPOS/x",
        ] {
            let d = denies(&e, "GET", url);
            assert!(d.to_string().contains("outside the prefix"), "{url}: {d}");
        }
    }
}

#[test]
fn http_path_traversal_does_not_escape_the_prefix() {
    let e = egress(&["https://api.github.com/repos/"]);
    for url in [
        "https://api.github.com/repos/../admin",
        "https://api.github.com/repos/./../admin",
        "https://api.github.com/repos/x/../../admin",
        "https://api.github.com/repos/%2e%2e/admin",
        "https://api.github.com/repos/%2E%2E/admin",
        "https://api.github.com/repos/.%2e/admin",
        "https://api.github.com/repos/%2e./admin",
        "https://api.github.com/repos%2F..%2Fadmin",
        "https://api.github.com/repos%2f..%2fadmin",
        "https://api.github.com/repos/..%2Fadmin",
        "https://api.github.com/repos/a%2F..%2F..%2Fadmin",
        "https://api.github.com/repos/a%5C..%5C..%5Cadmin",
        "https://api.github.com/repos\\..\\admin",
        "https://api.github.com/repos/%2e%2e%2fadmin",
        "https://api.github.com/repos/..;/admin",
        "https://api.github.com/repos/..;x=1/admin",
        "https://api.github.com/repos/x/%2e%2e%3b/admin",
        "https://api.github.com/repos/.;/..;/admin",
    ] {
        denies(&e, "GET", url);
    }
    // An encoded slash that hides no dot segment stays allowed (GitLab-style
    // `group%2Fproject` ids).
    allows(&e, "GET", "https://api.github.com/repos/group%2Fproject");
}

// ---- methods ----

#[test]
fn http_methods_are_matched_exactly() {
    let e = Egress::new(vec![rule_m(
        "https://api.github.com/repos/",
        &["GET", "HEAD"],
    )]);
    allows(&e, "GET", "https://api.github.com/repos/x");
    allows(&e, "HEAD", "https://api.github.com/repos/x");
    let d = denies(&e, "POST", "https://api.github.com/repos/x");
    let msg = d.to_string();
    assert!(msg.contains("method POST"), "{msg}");
    assert!(msg.contains(r#"methods = ["POST"]"#), "{msg}");
    denies(&e, "get", "https://api.github.com/repos/x");
    denies(&e, "DELETE", "https://api.github.com/repos/x");
    for bad in ["", "GET /admin HTTP/1.1\r\nHost: evil", "G ET", "GET\0"] {
        let d = denies(&e, bad, "https://api.github.com/repos/x");
        assert!(matches!(d, EgressDenied::BadMethod { .. }), "{bad:?}: {d}");
    }
}

#[test]
fn http_no_methods_allows_every_method() {
    let e = egress(&["https://api.github.com/"]);
    for m in [
        "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND",
    ] {
        allows(&e, m, "https://api.github.com/x");
    }
}

// ---- which rule, and its audit text ----

#[test]
fn http_first_matching_rule_decides_and_is_named() {
    let e = Egress::new(vec![
        rule_m("https://api.github.com/repos/", &["GET"]),
        rule_m("https://api.github.com/", &["POST"]),
        rule("http://127.0.0.1:8080/"),
    ]);
    let a = allows(&e, "GET", "https://api.github.com/repos/x");
    assert_eq!(a.index(), 0);
    assert_eq!(a.to_string(), "http[0] https://api.github.com/repos/ GET");
    let a = allows(&e, "POST", "https://api.github.com/repos/x");
    assert_eq!(a.index(), 1);
    let a = allows(&e, "PUT", "http://127.0.0.1:8080/");
    assert_eq!(a.to_string(), "http[2] http://127.0.0.1:8080/");
    // The nearest miss names the rule that almost matched.
    let d = denies(&e, "DELETE", "https://api.github.com/repos/x");
    assert!(d.to_string().contains("method DELETE"), "{d}");
}

// ---- addresses after DNS ----

#[test]
fn http_name_resolving_to_a_special_address_is_denied() {
    let e = egress(&["https://api.github.com/", "https://*.example.com/"]);
    let a = allows(&e, "GET", "https://api.github.com/");
    e.check_addr(&a, ip("140.82.112.6")).unwrap();
    e.check_addr(&a, ip("2606:50c0:8000::154")).unwrap();
    e.check_addr(&a, ip("8.8.8.8")).unwrap();
    let cases = [
        ("127.0.0.1", AddrClass::Loopback),
        ("127.255.255.254", AddrClass::Loopback),
        ("::1", AddrClass::Loopback),
        ("::ffff:127.0.0.1", AddrClass::Loopback),
        ("::127.0.0.1", AddrClass::Loopback),
        ("64:ff9b::7f00:1", AddrClass::Loopback),
        ("2002:7f00:1::", AddrClass::Loopback),
        ("10.0.0.1", AddrClass::Private),
        ("172.16.0.1", AddrClass::Private),
        ("172.31.255.255", AddrClass::Private),
        ("192.168.1.1", AddrClass::Private),
        ("::ffff:10.0.0.1", AddrClass::Private),
        ("::ffff:192.168.0.1", AddrClass::Private),
        ("169.254.1.1", AddrClass::LinkLocal),
        ("fe80::1", AddrClass::LinkLocal),
        ("febf::1", AddrClass::LinkLocal),
        ("fc00::1", AddrClass::UniqueLocal),
        ("fdff::1", AddrClass::UniqueLocal),
        ("fec0::1", AddrClass::UniqueLocal),
        ("0.0.0.0", AddrClass::Unspecified),
        ("0.1.2.3", AddrClass::Unspecified),
        ("::", AddrClass::Unspecified),
        ("::ffff:0.0.0.0", AddrClass::Unspecified),
        ("255.255.255.255", AddrClass::Broadcast),
        ("100.64.0.1", AddrClass::SharedCgnat),
        ("100.127.255.255", AddrClass::SharedCgnat),
        ("169.254.169.254", AddrClass::Metadata),
        ("::ffff:169.254.169.254", AddrClass::Metadata),
        ("::ffff:a9fe:a9fe", AddrClass::Metadata),
        ("fd00:ec2::254", AddrClass::Metadata),
        ("100.100.100.200", AddrClass::Metadata),
        ("224.0.0.1", AddrClass::Multicast),
        ("ff02::1", AddrClass::Multicast),
        ("240.0.0.1", AddrClass::Reserved),
        ("192.0.0.170", AddrClass::Reserved),
    ];
    for (addr, class) in cases {
        match e.check_addr(&a, ip(addr)) {
            Err(EgressDenied::Address { class: c, .. }) => assert_eq!(c, class, "{addr}"),
            other => panic!("{addr}: {other:?}"),
        }
    }
    let msg = e.check_addr(&a, ip("127.0.0.1")).unwrap_err().to_string();
    assert!(msg.contains("loopback"), "{msg}");
    assert!(msg.contains("http[0] https://api.github.com/"), "{msg}");
    assert!(msg.contains("to allow this request, add"), "{msg}");
    // Just outside the special ranges is public.
    for addr in [
        "172.15.255.255",
        "172.32.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "11.0.0.1",
        "169.253.0.1",
        "223.255.255.255",
        "fbff::1",
        "2001:db9::1",
    ] {
        e.check_addr(&a, ip(addr))
            .unwrap_or_else(|d| panic!("{addr}: {d}"));
    }
}

#[test]
fn http_explicit_loopback_rule_allows_loopback_on_that_port_only() {
    let e = egress(&["http://127.0.0.1:8080/", "https://api.github.com/"]);
    let a = allows(&e, "GET", "http://127.0.0.1:8080/echo");
    e.check_addr(&a, ip("127.0.0.1")).unwrap();
    e.check_addr(&a, ip("::ffff:127.0.0.1")).unwrap();
    // The rule names 127.0.0.1, not any other address.
    let d = e.check_addr(&a, ip("127.0.0.2")).unwrap_err();
    assert!(matches!(d, EgressDenied::AddressOutsideRule { .. }), "{d}");
    e.check_addr(&a, ip("8.8.8.8")).unwrap_err();
    denies(&e, "GET", "http://127.0.0.1:8081/");
    denies(&e, "GET", "http://127.0.0.1/");
    // Another rule's match does not inherit the loopback grant.
    let b = allows(&e, "GET", "https://api.github.com/");
    e.check_addr(&b, ip("127.0.0.1")).unwrap_err();
}

#[test]
fn http_cidr_rule_allows_private_addresses_inside_it() {
    let e = egress(&["http://10.0.0.0/8", "http://[fd00::]/8"]);
    let a = allows(&e, "GET", "http://10.9.9.9/");
    e.check_addr(&a, ip("10.9.9.9")).unwrap();
    e.check_addr(&a, ip("::ffff:10.9.9.9")).unwrap();
    e.check_addr(&a, ip("192.168.0.1")).unwrap_err();
    let b = allows(&e, "GET", "http://[fd12::1]/");
    e.check_addr(&b, ip("fd12::1")).unwrap();
    e.check_addr(&b, ip("fc00::1")).unwrap_err();
}

#[test]
fn http_check_addr_rejects_a_foreign_allowed() {
    let big = egress(&["https://a.com/", "https://b.com/"]);
    let small = egress(&["https://a.com/"]);
    let a = allows(&big, "GET", "https://b.com/");
    assert!(matches!(
        small.check_addr(&a, ip("8.8.8.8")),
        Err(EgressDenied::UnknownRule { index: 1 })
    ));
}

// ---- headers ----

#[test]
fn http_header_crlf_and_nul_are_refused() {
    check_header("Accept", b"application/json").unwrap();
    check_header("x-custom_header.1", b"a value with spaces\tand tab").unwrap();
    check_header("X-Bin", &[0x80, 0xff]).unwrap();
    for (name, value) in [
        ("X-A", &b"v\r\nX-Injected: 1"[..]),
        ("X-A", b"v\nX-Injected: 1"),
        ("X-A", b"v\r"),
        ("X-A", b"v\0"),
        ("X-A\r\nX-Injected", b"v"),
        ("X-A\n", b"v"),
        ("X-A\0", b"v"),
        ("", b"v"),
        ("X A", b"v"),
        ("X-A:", b"v"),
        ("Höst", b"v"),
    ] {
        let d = check_header(name, value).unwrap_err();
        assert!(matches!(d, EgressDenied::Header { .. }), "{name:?}: {d}");
    }
}
