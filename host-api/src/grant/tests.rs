//! Unit tests: each rule of `covers` with what it allows and refuses (and the words it
//! refuses with), narrowing strings, grants, and the JSON form.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::*;
use crate::env::Env;
use crate::env::manifest::EnvSection;
use crate::fs::Fs;
use crate::fs::manifest::{Access, FsGrant};
use crate::http::Http;
use crate::http::HttpRule;
use crate::http::manifest::{HttpGrant, RequestLimits};
use crate::limits::TaskLimits;
use crate::limits::manifest::Limits;
use crate::secrets::Secrets;
use crate::sockets::Tcp;
use crate::sockets::manifest::TcpRule;

const MIB: u64 = 1 << 20;

fn empty() -> Capabilities {
    Capabilities::default()
}

fn fs(guest: &str, host: &str, access: Access) -> FsGrant {
    FsGrant {
        host: host.into(),
        guest: guest.into(),
        access,
    }
}

/// `"https://x/ GET,POST"`: a rule with those methods; without a space, all methods.
fn http(rule: &str) -> HttpGrant {
    let (url, methods) = match rule.split_once(' ') {
        Some((url, methods)) => (url, Some(methods.split(',').map(String::from).collect())),
        None => (rule, None),
    };
    HttpGrant {
        rule: HttpRule::parse(url, methods).unwrap(),
        limits: RequestLimits::default(),
    }
}

fn http_with(rule: &str, timeout: u64, body: u64) -> HttpGrant {
    HttpGrant {
        limits: RequestLimits {
            timeout: Duration::from_secs(timeout),
            request_body: body,
            response_body: body,
        },
        ..http(rule)
    }
}

fn tcp(connect: &str) -> TcpRule {
    TcpRule::parse(connect).unwrap()
}

/// A secret the tool may sign with, and see where `reveal` says so.
fn secret(name: &str, reveal: bool) -> SecretGrant {
    SecretGrant {
        name: name.into(),
        inject: false,
        hmac: true,
        reveal,
    }
}

fn with_fs(grants: Vec<FsGrant>) -> Capabilities {
    Capabilities {
        fs: grants,
        ..empty()
    }
}

fn with_http(rules: Vec<HttpGrant>) -> Capabilities {
    Capabilities {
        http: rules,
        ..empty()
    }
}

fn with_tcp(rules: &[&str]) -> Capabilities {
    Capabilities {
        tcp: rules.iter().map(|r| tcp(r)).collect(),
        ..empty()
    }
}

fn with_secrets(secrets: Vec<SecretGrant>) -> Capabilities {
    Capabilities { secrets, ..empty() }
}

fn with_env(vars: &[(&str, &str)], pass: &[&str]) -> Capabilities {
    Capabilities {
        env: EnvSection {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            pass: pass.iter().map(|p| p.to_string()).collect(),
        },
        ..empty()
    }
}

fn with_limits(memory: u64, timeout: u64, fuel: Option<u64>, output: u64) -> Capabilities {
    Capabilities {
        limits: Limits {
            memory,
            timeout: Duration::from_secs(timeout),
            fuel,
            output,
        },
        ..empty()
    }
}

/// `Ok` or the error's words.
fn covers(parent: &Capabilities, child: &Capabilities) -> Result<(), String> {
    parent.covers(child).map_err(|e| e.to_string())
}

fn narrow(parent: &Capabilities, args: &[&str]) -> Result<Capabilities, String> {
    parent
        .narrow(&Narrowing::parse(args).unwrap())
        .map_err(|e| e.to_string())
}

fn parse_err(arg: &str) -> String {
    Narrowing::parse([arg]).unwrap_err().to_string()
}

mod fs_rules {
    use super::*;

    fn parent() -> Capabilities {
        with_fs(vec![
            fs("/workspace", "/srv/ws", Access::ReadWrite),
            fs("/docs", "/srv/docs", Access::Read),
        ])
    }

    #[test]
    fn the_same_and_sub_paths_are_within() {
        let p = parent();
        assert_eq!(covers(&p, &p), Ok(()));
        let child = with_fs(vec![
            fs("/workspace/src", "/srv/ws/src", Access::ReadWrite),
            fs(
                "/workspace/target/debug",
                "/srv/ws/target/debug",
                Access::Read,
            ),
            fs("/docs", "/srv/docs", Access::Read),
        ]);
        assert_eq!(covers(&p, &child), Ok(()));
        assert_eq!(covers(&p, &empty()), Ok(()));
    }

    #[test]
    fn a_sibling_is_not_within() {
        let child = with_fs(vec![fs("/workspace2", "/srv/ws2", Access::Read)]);
        assert_eq!(
            covers(&parent(), &child),
            Err(
                "fs[0]: /workspace2 read is wider than anything the parent grants \
                 (parent: /workspace read-write; /docs read)"
                    .into()
            )
        );
        let child = with_fs(vec![fs("/", "/", Access::Read)]);
        assert!(covers(&parent(), &child).is_err());
    }

    #[test]
    fn a_parent_of_the_grant_is_not_within() {
        let p = with_fs(vec![fs("/workspace/src", "/srv/ws/src", Access::Read)]);
        let child = with_fs(vec![fs("/workspace", "/srv/ws", Access::Read)]);
        assert_eq!(
            covers(&p, &child),
            Err(
                "fs[0]: /workspace read is wider than anything the parent grants \
                 (parent: /workspace/src read)"
                    .into()
            )
        );
    }

    #[test]
    fn nothing_is_within_no_grants() {
        let child = with_fs(vec![fs("/workspace", "/srv/ws", Access::Read)]);
        assert_eq!(
            covers(&empty(), &child),
            Err(
                "fs[0]: /workspace read is wider than anything the parent grants (parent: none)"
                    .into()
            )
        );
    }

    #[test]
    fn a_guest_path_not_in_normal_form_is_within_nothing() {
        for guest in ["/workspace/../etc", "/workspace/./src", "/workspace/src/"] {
            let child = with_fs(vec![fs(guest, "/srv/ws/src", Access::Read)]);
            assert!(covers(&parent(), &child).is_err(), "{guest}");
        }
    }

    #[test]
    fn the_host_must_be_the_parents_sub_directory() {
        let child = with_fs(vec![fs("/workspace/src", "/etc", Access::Read)]);
        assert_eq!(
            covers(&parent(), &child),
            Err(r#"fs[0]: /workspace/src maps to host "/etc", but the parent maps it to "/srv/ws/src""#.into())
        );
        for host in [
            "/srv/ws/src/../../../etc",
            "/srv/ws/./src",
            "/srv/ws/src/",
            "/srv/ws",
        ] {
            let child = with_fs(vec![fs("/workspace/src", host, Access::Read)]);
            assert!(covers(&parent(), &child).is_err(), "{host}");
        }
    }

    #[test]
    fn read_is_within_read_write_and_not_the_other_way() {
        let child = with_fs(vec![fs("/workspace", "/srv/ws", Access::Read)]);
        assert_eq!(covers(&parent(), &child), Ok(()));
        let child = with_fs(vec![fs("/docs/api", "/srv/docs/api", Access::ReadWrite)]);
        assert_eq!(
            covers(&parent(), &child),
            Err(
                "fs[0]: /docs/api read-write is wider than the parent's /docs read, \
                 which allows only read there"
                    .into()
            )
        );
    }

    #[test]
    fn narrowing_derives_the_host_and_keeps_the_access_unless_asked() {
        let child = narrow(&parent(), &["fs=/workspace/src", "fs=/docs/api"]).unwrap();
        assert_eq!(
            child.fs,
            [
                fs("/workspace/src", "/srv/ws/src", Access::ReadWrite),
                fs("/docs/api", "/srv/docs/api", Access::Read),
            ]
        );
        let child = narrow(&parent(), &["fs=/workspace//src/./:read"]).unwrap();
        assert_eq!(
            child.fs,
            [fs("/workspace/src", "/srv/ws/src", Access::Read)]
        );
        let child = narrow(&parent(), &["fs="]).unwrap();
        assert!(child.fs.is_empty());
    }

    #[test]
    fn narrowing_refuses_what_the_parent_does_not_hold() {
        assert_eq!(
            narrow(&parent(), &["fs=/etc"]),
            Err("fs[0]: /etc is wider than anything the parent grants \
                 (parent: /workspace read-write; /docs read)"
                .into())
        );
        assert_eq!(
            narrow(&parent(), &["fs=/workspace/src", "fs=/docs:read-write"]),
            Err(
                "fs[1]: /docs read-write is wider than the parent's /docs read, \
                 which allows only read there"
                    .into()
            )
        );
        assert_eq!(
            parse_err("fs=/workspace/../etc"),
            r#"invalid narrowing "fs=/workspace/../etc": "/workspace/../etc" must not contain "..""#
        );
    }
}

mod http_rules {
    use super::*;

    fn within(child: &str, parent: &str) -> Result<(), String> {
        covers(
            &with_http(vec![http(parent)]),
            &with_http(vec![http(child)]),
        )
    }

    #[test]
    fn hosts() {
        let yes = [
            ("https://api.github.com/", "https://api.github.com/"),
            ("https://API.GitHub.com./", "https://api.github.com/"),
            ("https://api.github.com/", "https://*.github.com/"),
            ("https://a.b.github.com/", "https://*.github.com/"),
            ("https://*.api.github.com/", "https://*.github.com/"),
            ("https://*.github.com/", "https://*.github.com/"),
            ("http://10.0.0.5/", "http://10.0.0.5/"),
            ("http://10.0.0.5/", "http://10.0.0.0/8/"),
            ("http://10.1.0.0/16/", "http://10.0.0.0/8/"),
            ("http://10.0.0.0/8/", "http://10.0.0.0/8/"),
            ("http://[fd00::1]/", "http://[fd00::]/8/"),
            ("http://10.0.0.5/32/", "http://10.0.0.5/"),
        ];
        for (child, parent) in yes {
            assert_eq!(within(child, parent), Ok(()), "{child} within {parent}");
        }
        let no = [
            ("https://*.github.com/", "https://api.github.com/"),
            ("https://github.com/", "https://*.github.com/"),
            ("https://evilgithub.com/", "https://*.github.com/"),
            ("https://github.com.evil.net/", "https://*.github.com/"),
            ("https://*.github.com/", "https://*.api.github.com/"),
            ("https://*.evilgithub.com/", "https://*.github.com/"),
            ("https://*.com/", "https://*.github.com/"),
            ("https://api.github.com/", "https://api.gitlab.com/"),
            ("http://10.0.0.6/", "http://10.0.0.5/"),
            ("http://11.0.0.1/", "http://10.0.0.0/8/"),
            ("http://10.0.0.0/8/", "http://10.0.0.0/16/"),
            ("http://10.0.0.0/8/", "http://10.0.0.5/"),
            ("http://127.0.0.1/", "http://localhost/"),
            ("http://localhost/", "http://127.0.0.1/"),
            ("http://[::ffff:10.0.0.1]/", "http://[::]/0/"),
        ];
        for (child, parent) in no {
            assert!(
                within(child, parent).is_err(),
                "{child} not within {parent}"
            );
        }
    }

    #[test]
    fn the_refusal_names_the_rule_and_the_parents() {
        assert_eq!(
            covers(
                &with_http(vec![http("https://api.github.com/repos/ GET")]),
                &with_http(vec![
                    http("https://api.github.com/repos/ GET"),
                    http("https://*.github.com/")
                ]),
            ),
            Err(
                "http[1]: https://*.github.com/ is wider than anything the parent grants \
                 (parent: https://api.github.com/repos/ GET)"
                    .into()
            )
        );
        assert_eq!(
            covers(&empty(), &with_http(vec![http("https://a.example/")])),
            Err("http[0]: https://a.example/ is wider than anything the parent grants (parent: none)".into())
        );
    }

    #[test]
    fn scheme_and_port_must_be_the_same() {
        assert!(within("http://api.github.com/", "https://api.github.com/").is_err());
        assert!(within("https://api.github.com:8443/", "https://api.github.com/").is_err());
        assert_eq!(
            within("https://api.github.com:443/", "https://api.github.com/"),
            Ok(())
        );
    }

    #[test]
    fn paths_extend_by_whole_segments() {
        let parent = "https://api.github.com/repos/";
        assert_eq!(within("https://api.github.com/repos/", parent), Ok(()));
        assert_eq!(within("https://api.github.com/repos", parent), Ok(()));
        assert_eq!(
            within("https://api.github.com/repos/rust-lang/", parent),
            Ok(())
        );
        assert_eq!(
            within("https://api.github.com/repos/%72ust/", parent),
            Ok(())
        );
        for child in [
            "https://api.github.com/",
            "https://api.github.com/reposX/",
            "https://api.github.com/rep/",
            "https://api.github.com/repos/../admin/",
            "https://api.github.com/repos/%2e%2e/admin/",
            "https://api.github.com/admin/repos/",
        ] {
            assert!(within(child, parent).is_err(), "{child}");
        }
    }

    #[test]
    fn methods_are_a_subset() {
        let parent = "https://x.example/ GET,HEAD";
        assert_eq!(within("https://x.example/ GET", parent), Ok(()));
        assert_eq!(within("https://x.example/ HEAD,GET", parent), Ok(()));
        assert_eq!(
            within("https://x.example/ GET", "https://x.example/"),
            Ok(())
        );
        assert_eq!(within("https://x.example/", "https://x.example/"), Ok(()));
        assert_eq!(
            within("https://x.example/ GET,POST", parent),
            Err(
                "http[0]: https://x.example/ GET,POST is wider than anything the parent grants \
                 (parent: https://x.example/ GET,HEAD)"
                    .into()
            )
        );
        // No methods is every method.
        assert!(within("https://x.example/", parent).is_err());
    }

    #[test]
    fn limits_are_at_most_the_parents() {
        let parent = with_http(vec![http_with("https://x.example/", 30, 10 * MIB)]);
        let child = with_http(vec![http_with("https://x.example/a/", 5, MIB)]);
        assert_eq!(covers(&parent, &child), Ok(()));
        let child = with_http(vec![http_with("https://x.example/a/", 60, MIB)]);
        assert_eq!(
            covers(&parent, &child),
            Err(
                "http[0]: https://x.example/a/ allows a timeout of 1m, more than the parent's 30s \
                 (parent: http[0] https://x.example/)"
                    .into()
            )
        );
        let child = with_http(vec![http_with("https://x.example/a/", 30, 20 * MIB)]);
        assert_eq!(
            covers(&parent, &child),
            Err(
                "http[0]: https://x.example/a/ allows a request body of 20 MiB, more than the \
                 parent's 10 MiB (parent: http[0] https://x.example/)"
                    .into()
            )
        );
    }

    /// The parent applies the limits of its first rule that matches, which need not be the
    /// rule that holds the child's.
    #[test]
    fn limits_are_those_of_the_parent_rule_that_decides() {
        let parent = with_http(vec![
            http_with("https://x.example/slow/", 5, MIB),
            http_with("https://x.example/", 30, 10 * MIB),
        ]);
        assert_eq!(covers(&parent, &parent), Ok(()));
        // Requests to /slow/ get 5s from the parent; the child's own rule for them is first.
        let child = with_http(vec![
            http_with("https://x.example/slow/", 5, MIB),
            http_with("https://x.example/", 30, 10 * MIB),
        ]);
        assert_eq!(covers(&parent, &child), Ok(()));
        // Without it, the child would give /slow/ 30s.
        let child = with_http(vec![http_with("https://x.example/", 30, MIB)]);
        assert_eq!(
            covers(&parent, &child),
            Err(
                "http[0]: https://x.example/ allows a timeout of 30s, more than the parent's 5s \
                 (parent: http[0] https://x.example/slow/)"
                    .into()
            )
        );
        // A rule that cannot reach /slow/ is not held to its limits.
        let child = with_http(vec![http_with("https://x.example/fast/", 30, 10 * MIB)]);
        assert_eq!(covers(&parent, &child), Ok(()));
        // Methods that the earlier rule does not allow never reach it.
        let parent = with_http(vec![
            http_with("https://x.example/ POST", 5, MIB),
            http_with("https://x.example/", 30, 10 * MIB),
        ]);
        let child = with_http(vec![http_with("https://x.example/ GET", 30, 10 * MIB)]);
        assert_eq!(covers(&parent, &child), Ok(()));
    }

    #[test]
    fn narrowing_takes_methods_and_limits_from_the_parent() {
        let parent = with_http(vec![
            http_with("https://api.github.com/repos/ GET,HEAD", 5, MIB),
            http_with("https://api.github.com/ GET", 30, 10 * MIB),
        ]);
        let child = narrow(&parent, &["http=https://api.github.com/repos/rust-lang/"]).unwrap();
        assert_eq!(
            child.http,
            [http_with(
                "https://api.github.com/repos/rust-lang/ GET,HEAD",
                5,
                MIB
            )]
        );
        let child = narrow(&parent, &["http=https://api.github.com/users/ GET"]).unwrap();
        assert_eq!(
            child.http,
            [http_with("https://api.github.com/users/ GET", 30, 10 * MIB)]
        );
        // Its requests under /repos/ meet the parent's first rule first.
        let child = narrow(&parent, &["http=https://api.github.com/ GET"]).unwrap();
        assert_eq!(
            child.http,
            [http_with("https://api.github.com/ GET", 5, MIB)]
        );
        let child = narrow(
            &parent,
            &[
                "http=https://api.github.com/repos/",
                "http=https://api.github.com/",
            ],
        )
        .unwrap();
        assert_eq!(child.http, parent.http);
        assert!(narrow(&parent, &["http="]).unwrap().http.is_empty());
    }

    #[test]
    fn narrowing_refuses_wider_rules() {
        let parent = with_http(vec![http("https://api.github.com/repos/ GET")]);
        assert_eq!(
            narrow(&parent, &["http=https://*.github.com/"]),
            Err(
                "http[0]: https://*.github.com/ is wider than anything the parent grants \
                 (parent: https://api.github.com/repos/ GET)"
                    .into()
            )
        );
        assert_eq!(
            narrow(&parent, &["http=https://api.github.com/repos/ GET,DELETE"]),
            Err(
                "http[0]: https://api.github.com/repos/ GET,DELETE is wider than anything the \
                 parent grants (parent: https://api.github.com/repos/ GET)"
                    .into()
            )
        );
        assert!(narrow(&parent, &["http=https://api.github.com/"]).is_err());
        assert!(narrow(&parent, &["http=http://api.github.com/repos/"]).is_err());
    }
}

mod tcp_rules {
    use super::*;

    #[test]
    fn host_within_and_the_same_port() {
        let parent = with_tcp(&["*.internal:5432", "10.0.0.0/8:6379", "db.example.com:5432"]);
        assert_eq!(covers(&parent, &parent), Ok(()));
        let child = with_tcp(&[
            "db.internal:5432",
            "*.a.internal:5432",
            "10.1.2.3:6379",
            "10.1.0.0/16:6379",
        ]);
        assert_eq!(covers(&parent, &child), Ok(()));
        for wider in [
            "db.internal:5433",
            "internal:5432",
            "*.example.com:5432",
            "11.0.0.1:6379",
            "10.0.0.0/7:6379",
            "10.0.0.1:5432",
        ] {
            assert!(covers(&parent, &with_tcp(&[wider])).is_err(), "{wider}");
        }
        assert_eq!(
            covers(
                &with_tcp(&["db.internal:5432"]),
                &with_tcp(&["db.internal:5433"])
            ),
            Err(
                "tcp[0]: db.internal:5433 is wider than anything the parent grants \
                 (parent: db.internal:5432)"
                    .into()
            )
        );
    }

    #[test]
    fn narrowing() {
        let parent = with_tcp(&["*.internal:5432"]);
        let child = narrow(&parent, &["tcp=db.internal:5432"]).unwrap();
        assert_eq!(child.tcp, [tcp("db.internal:5432")]);
        assert_eq!(
            narrow(&parent, &["tcp=db.internal:5432", "tcp=127.0.0.1:5432"]),
            Err(
                "tcp[1]: 127.0.0.1:5432 is wider than anything the parent grants \
                 (parent: *.internal:5432)"
                    .into()
            )
        );
    }
}

mod secret_rules {
    use super::*;

    #[test]
    fn names_are_a_subset_and_reveal_only_where_the_parent_may() {
        let parent = with_secrets(vec![secret("github", false), secret("signer", true)]);
        assert_eq!(covers(&parent, &parent), Ok(()));
        assert_eq!(
            covers(&parent, &with_secrets(vec![secret("signer", false)])),
            Ok(())
        );
        assert_eq!(
            covers(&parent, &with_secrets(vec![secret("aws", false)])),
            Err(
                "secrets: aws is not granted by the parent (parent: github:hmac; signer:hmac+reveal)"
                    .into()
            )
        );
        assert_eq!(
            covers(&parent, &with_secrets(vec![secret("github", true)])),
            Err(
                "secrets: github:hmac+reveal is wider than the parent's github:hmac, which does \
                 not allow reveal"
                    .into()
            )
        );
        let inject = SecretGrant {
            inject: true,
            ..secret("github", false)
        };
        assert_eq!(
            covers(&parent, &with_secrets(vec![inject])),
            Err(
                "secrets: github:inject+hmac is wider than the parent's github:hmac, which does \
                 not allow inject"
                    .into()
            )
        );
    }

    #[test]
    fn narrowing_drops_reveal_unless_asked() {
        let parent = with_secrets(vec![secret("github", false), secret("signer", true)]);
        let child = narrow(&parent, &["secrets=signer"]).unwrap();
        assert_eq!(child.secrets, [secret("signer", false)]);
        let child = narrow(&parent, &["secrets=signer:hmac+reveal,github"]).unwrap();
        assert_eq!(
            child.secrets,
            [secret("signer", true), secret("github", false)]
        );
        // Uses named are exactly the uses the child gets.
        let child = narrow(&parent, &["secrets=signer:reveal"]).unwrap();
        let reveal_only = SecretGrant {
            hmac: false,
            ..secret("signer", true)
        };
        assert_eq!(child.secrets, [reveal_only]);
        assert!(narrow(&parent, &["secrets=github:inject"]).is_err());
        assert!(narrow(&parent, &["secrets="]).unwrap().secrets.is_empty());
        assert_eq!(narrow(&parent, &[]).unwrap().secrets, parent.secrets);
        assert!(narrow(&parent, &["secrets=github:reveal"]).is_err());
        assert!(narrow(&parent, &["secrets=aws"]).is_err());
    }
}

mod env_rules {
    use super::*;

    #[test]
    fn variables_are_a_subset_with_the_same_values() {
        let parent = with_env(&[("LANG", "C.UTF-8"), ("MODE", "ci")], &["TZ"]);
        assert_eq!(covers(&parent, &parent), Ok(()));
        assert_eq!(covers(&parent, &with_env(&[("MODE", "ci")], &[])), Ok(()));
        assert_eq!(
            covers(&parent, &with_env(&[("MODE", "prod")], &[])),
            Err(r#"env: MODE = "prod" differs from the parent's MODE = "ci""#.into())
        );
        assert_eq!(
            covers(&parent, &with_env(&[("HOME", "/root")], &[])),
            Err(r#"env: HOME = "/root" is not granted by the parent (parent: LANG = "C.UTF-8"; MODE = "ci"; TZ from the host)"#.into())
        );
        assert_eq!(
            covers(&parent, &with_env(&[], &["LANG"])),
            Err(r#"env: LANG from the host is not granted by the parent (parent: LANG = "C.UTF-8"; MODE = "ci"; TZ from the host)"#.into())
        );
        assert!(covers(&parent, &with_env(&[("TZ", "UTC")], &[])).is_err());
    }

    #[test]
    fn narrowing_by_name() {
        let parent = with_env(&[("LANG", "C.UTF-8"), ("MODE", "ci")], &["TZ"]);
        let child = narrow(&parent, &["env=LANG,TZ"]).unwrap();
        assert_eq!(child.env, with_env(&[("LANG", "C.UTF-8")], &["TZ"]).env);
        assert_eq!(
            narrow(&parent, &["env="]).unwrap().env,
            EnvSection::default()
        );
        assert_eq!(
            narrow(&parent, &["env=HOME"]),
            Err(r#"env: HOME is not granted by the parent (parent: LANG = "C.UTF-8"; MODE = "ci"; TZ from the host)"#.into())
        );
    }
}

mod limit_rules {
    use super::*;

    #[test]
    fn each_at_most_the_parents() {
        let parent = with_limits(64 * MIB, 10, Some(1_000_000), MIB);
        assert_eq!(covers(&parent, &parent), Ok(()));
        assert_eq!(covers(&parent, &with_limits(MIB, 1, Some(1), 1)), Ok(()));
        assert_eq!(
            covers(&parent, &with_limits(128 * MIB, 10, Some(1_000_000), MIB)),
            Err("limits.memory: 128 MiB is more than the parent's 64 MiB".into())
        );
        assert_eq!(
            covers(&parent, &with_limits(64 * MIB, 11, Some(1_000_000), MIB)),
            Err("limits.timeout: 11s is more than the parent's 10s".into())
        );
        assert_eq!(
            covers(&parent, &with_limits(64 * MIB, 10, Some(1_000_001), MIB)),
            Err("limits.fuel: 1000001 is more than the parent's 1000000".into())
        );
        assert_eq!(
            covers(
                &parent,
                &with_limits(64 * MIB, 10, Some(1_000_000), 2 * MIB)
            ),
            Err("limits.output: 2 MiB is more than the parent's 1 MiB".into())
        );
    }

    #[test]
    fn unmetered_fuel_is_the_widest() {
        let metered = with_limits(64 * MIB, 10, Some(1_000_000), MIB);
        let unmetered = with_limits(64 * MIB, 10, None, MIB);
        assert_eq!(covers(&unmetered, &metered), Ok(()));
        assert_eq!(covers(&unmetered, &unmetered), Ok(()));
        assert_eq!(
            covers(&metered, &unmetered),
            Err("limits.fuel: unmetered is more than the parent's 1000000".into())
        );
    }

    #[test]
    fn narrowing() {
        let parent = with_limits(64 * MIB, 10, None, MIB);
        let child = narrow(
            &parent,
            &[
                "memory=32MiB",
                "timeout=2s",
                "fuel=1_000_000",
                "output=64KiB",
            ],
        )
        .unwrap();
        assert_eq!(
            child.limits,
            with_limits(32 * MIB, 2, Some(1_000_000), 64 << 10).limits
        );
        assert_eq!(
            narrow(&parent, &["timeout=500ms"]).unwrap().limits.timeout,
            Duration::from_millis(500)
        );
        assert_eq!(
            narrow(&parent, &["memory=128MiB"]),
            Err("limits.memory: 128 MiB is more than the parent's 64 MiB".into())
        );
        let metered = with_limits(64 * MIB, 10, Some(5), MIB);
        assert_eq!(
            narrow(&metered, &["memory=1MiB"]).unwrap().limits.fuel,
            Some(5)
        );
    }
}

mod narrowing_strings {
    use super::*;

    #[test]
    fn the_documented_forms_parse_and_print_back() {
        let args = [
            "fs=/workspace/src:read",
            "fs=/workspace/docs",
            "fs=/data/a:b:read-write",
            "fs=/data/c:d:",
            "http=https://api.github.com/repos/rust-lang/ GET",
            "http=https://*.example.com/",
            "tcp=db.internal:5432",
            "secrets=github,signer:reveal",
            "env=LANG",
            "env=TZ",
            "memory=32 MiB",
            "timeout=2s",
            "fuel=1000000",
            "output=64KiB",
        ];
        let narrowing = Narrowing::parse(args).unwrap();
        let canonical = narrowing.to_args();
        assert_eq!(
            canonical,
            [
                "fs=/workspace/src:read",
                "fs=/workspace/docs",
                "fs=/data/a:b:read-write",
                "fs=/data/c:d:",
                "http=https://api.github.com/repos/rust-lang/ GET",
                "http=https://*.example.com/",
                "tcp=db.internal:5432",
                "secrets=github",
                "secrets=signer:reveal",
                "env=LANG",
                "env=TZ",
                "memory=32 MiB",
                "timeout=2s",
                "fuel=1000000",
                "output=64 KiB",
            ]
        );
        assert_eq!(Narrowing::parse(&canonical).unwrap(), narrowing);
        let empties = Narrowing::parse(["fs=", "http=", "tcp=", "secrets=", "env="]).unwrap();
        assert_eq!(
            empties.to_args(),
            ["fs=", "http=", "tcp=", "secrets=", "env="]
        );
        assert!(!empties.is_empty());
        assert!(Narrowing::parse::<[&str; 0]>([]).unwrap().is_empty());
        assert_eq!(Narrowing::default().to_string(), "(nothing)");
        assert_eq!(
            Narrowing::parse(["fs=/a", "http=https://x.example/ GET"])
                .unwrap()
                .to_string(),
            r#""fs=/a" "http=https://x.example/ GET""#
        );
    }

    #[test]
    fn errors_name_the_string() {
        let cases = [
            (
                "fs",
                r#"invalid narrowing "fs": expected KEY=VALUE with KEY one of fs, http, tcp, secrets, env, memory, timeout, fuel, output"#,
            ),
            (
                "net=x",
                r#"invalid narrowing "net=x": unknown key "net", expected one of fs, http, tcp, secrets, env, memory, timeout, fuel, output"#,
            ),
            (
                "fs=workspace",
                r#"invalid narrowing "fs=workspace": "workspace" is not absolute, expected a path such as "/workspace""#,
            ),
            (
                "fs=/workspace:rw",
                r#"invalid narrowing "fs=/workspace:rw": expected "read" or "read-write" after the last ":", found "rw" (a path with a ":" is written PATH:read, PATH:read-write or PATH:)"#,
            ),
            (
                "fs=/",
                r#"invalid narrowing "fs=/": "/" is the guest root, expected a directory such as "/workspace""#,
            ),
            (
                "http=https://x.example/ GET POST",
                r#"invalid narrowing "http=https://x.example/ GET POST": expected URL [METHOD,...], as in "https://api.github.com/repos/ GET,HEAD""#,
            ),
            (
                "http=https://x.example/ get",
                r#"invalid narrowing "http=https://x.example/ get": http rule method "get" is not an uppercase HTTP method such as "GET""#,
            ),
            (
                "http=ftp://x.example/",
                r#"invalid narrowing "http=ftp://x.example/": http rule url "ftp://x.example/" has scheme "ftp": only http and https are allowed"#,
            ),
            (
                "tcp=db.internal",
                r#"invalid narrowing "tcp=db.internal": "db.internal": expected "host:port" with a port from 1 to 65535, as in "db.example.com:5432" (IPv6 in brackets: "[::1]:5432")"#,
            ),
            (
                "secrets=GitHub",
                r#"invalid narrowing "secrets=GitHub": invalid secret name "GitHub": use lowercase letters, digits, "_" and "-", starting with a letter or digit"#,
            ),
            (
                "secrets=github:show",
                r#"invalid narrowing "secrets=github:show": expected github or github:USES with USES from inject, hmac, reveal joined by +, found "show""#,
            ),
            (
                "secrets=github,github",
                r#"invalid narrowing "secrets=github,github": github is named twice"#,
            ),
            (
                "secrets=a,,b",
                r#"invalid narrowing "secrets=a,,b": invalid secret name "": use lowercase letters, digits, "_" and "-", starting with a letter or digit"#,
            ),
            (
                "env=A=B",
                r#"invalid narrowing "env=A=B": invalid variable name "A=B": must not contain "=""#,
            ),
            (
                "memory=32M",
                r#"invalid narrowing "memory=32M": unknown unit "M" in "32M", expected one of B, kB, MB, GB, TB, KiB, MiB, GiB, TiB"#,
            ),
            (
                "memory=1KiB",
                r#"invalid narrowing "memory=1KiB": 1 KiB is out of range, expected between 1 MiB and 4 GiB"#,
            ),
            (
                "output=0",
                r#"invalid narrowing "output=0": expected at least 1 byte, found 0 B"#,
            ),
            (
                "timeout=2",
                r#"invalid narrowing "timeout=2": missing unit in "2", expected one of ns, us, ms, s, m, h"#,
            ),
            (
                "timeout=0s",
                r#"invalid narrowing "timeout=0s": 0s is out of range, expected more than 0s and at most 1h"#,
            ),
            (
                "fuel=0",
                r#"invalid narrowing "fuel=0": expected a positive whole number of instructions such as 1000000, found "0""#,
            ),
            (
                "fuel=-5",
                r#"invalid narrowing "fuel=-5": expected a positive whole number of instructions such as 1000000, found "-5""#,
            ),
            (
                "fuel=9223372036854775808",
                r#"invalid narrowing "fuel=9223372036854775808": expected a positive whole number of instructions such as 1000000, found "9223372036854775808""#,
            ),
        ];
        for (arg, message) in cases {
            assert_eq!(parse_err(arg), message, "{arg}");
        }
        let err = Narrowing::parse(["memory=32MiB", "memory=16MiB"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid narrowing "memory=16MiB": memory is given twice; give each limit once"#
        );
        let err = Narrowing::parse(["fs=/workspace", "fs=/workspace/src"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid narrowing "fs=/workspace/src": "/workspace/src" overlaps the earlier fs=/workspace: give each directory once"#
        );
        assert!(matches!(err.reason, NarrowingReason::Invalid(_)));
    }

    #[test]
    fn a_refused_string_changes_nothing() {
        let mut narrowing = Narrowing::parse(["secrets=github", "fs=/a"]).unwrap();
        let before = narrowing.clone();
        for bad in [
            "fs=/a/b",
            "fs=relative",
            "http=ftp://x/",
            "tcp=x",
            "secrets=signer,GitHub",
            "secrets=signer,github",
            "env=A,B=C",
            "memory=1",
        ] {
            assert!(narrowing.push(bad).is_err(), "{bad}");
            assert_eq!(narrowing, before, "{bad}");
        }
        let mut empty = Narrowing::default();
        assert!(empty.push("http=ftp://x/").is_err());
        assert!(empty.is_empty());
    }

    #[test]
    fn an_empty_narrowing_is_the_parent() {
        let parent = Capabilities::default()
            .with::<Fs>(vec![fs("/w", "/srv/w", Access::ReadWrite)])
            .with::<Http>(vec![http("https://x.example/ GET")])
            .with::<Tcp>(vec![tcp("db:1")])
            .with::<Secrets>(vec![secret("s", true)])
            .with::<Env>(with_env(&[("A", "1")], &["B"]).env)
            .with::<TaskLimits>(Limits {
                fuel: Some(7),
                ..Limits::default()
            });
        assert_eq!(parent.narrow(&Narrowing::default()).unwrap(), parent);
    }
}

mod grants {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn ceiling() -> Capabilities {
        Capabilities {
            fs: vec![fs("/workspace", "/srv/ws", Access::ReadWrite)],
            secrets: vec![secret("github", true)],
            ..empty()
        }
    }

    #[test]
    fn a_root_grant() {
        let root = Grant::root_at(
            ceiling(),
            at(0),
            Duration::from_secs(300),
            Some("planner".into()),
        );
        assert!(super::super::issue::is_id(root.id()));
        assert_eq!(root.parent(), None);
        assert_eq!(root.agent(), Some("planner"));
        assert_eq!(root.issued(), at(0));
        assert_eq!(root.expires(), at(300));
        assert_eq!(root.depth(), 0);
        assert_eq!(root.caps(), &ceiling());
        assert_eq!(root.check_within(&ceiling()), Ok(()));
        assert!(!root.is_expired(at(299)));
        assert!(root.is_expired(at(300)));
        assert_eq!(root.remaining(at(100)), Some(Duration::from_secs(200)));
        assert_eq!(root.remaining(at(300)), None);
        let other = Grant::root_at(ceiling(), at(0), Duration::from_secs(300), None);
        assert_ne!(root.id(), other.id());
    }

    #[test]
    fn a_ttl_beyond_the_json_form_is_cut() {
        let root = Grant::root(ceiling(), Duration::MAX, None);
        assert_eq!(root.expires(), time::latest());
        assert!(serde_json::to_string(&root).is_ok());
    }

    #[test]
    fn attenuating() {
        let root = Grant::root_at(
            ceiling(),
            at(0),
            Duration::from_secs(300),
            Some("planner".into()),
        );
        let narrowing = Narrowing::parse(["fs=/workspace/src:read", "secrets=github"]).unwrap();
        let child = root
            .attenuate_at(
                &narrowing,
                at(10),
                Some(Duration::from_secs(60)),
                Some("coder".into()),
            )
            .unwrap();
        assert_eq!(child.parent(), Some(root.id()));
        assert_ne!(child.id(), root.id());
        assert_eq!(child.agent(), Some("coder"));
        assert_eq!(child.issued(), at(10));
        assert_eq!(child.expires(), at(70));
        assert_eq!(child.depth(), 1);
        assert_eq!(
            child.caps().fs(),
            [fs("/workspace/src", "/srv/ws/src", Access::Read)]
        );
        assert_eq!(
            child.caps().secret("github"),
            Some(&secret("github", false))
        );
        assert_eq!(child.check_within(&ceiling()), Ok(()));

        // No ttl: it expires with its parent; no agent: its parent's.
        let grandchild = child
            .attenuate_at(&Narrowing::default(), at(20), None, None)
            .unwrap();
        assert_eq!(grandchild.expires(), child.expires());
        assert_eq!(grandchild.agent(), Some("coder"));
        assert_eq!(grandchild.depth(), 2);
        assert_eq!(grandchild.parent(), Some(child.id()));

        // Exactly the time left is fine.
        let last = child
            .attenuate_at(
                &Narrowing::default(),
                at(20),
                Some(Duration::from_secs(50)),
                None,
            )
            .unwrap();
        assert_eq!(last.expires(), child.expires());
    }

    #[test]
    fn a_longer_ttl_is_refused() {
        let root = Grant::root_at(ceiling(), at(0), Duration::from_secs(300), None);
        let err = root
            .attenuate_at(
                &Narrowing::default(),
                at(100),
                Some(Duration::from_secs(600)),
                None,
            )
            .unwrap_err();
        assert_eq!(
            err,
            Widening::Ttl {
                requested: Duration::from_secs(600),
                remaining: Duration::from_secs(200),
                parent: root.id().to_owned(),
            }
        );
        assert_eq!(
            err.to_string(),
            format!(
                "ttl: 10m reaches past the expiry of parent grant {}, 200s from now; ask for at \
                 most that, or leave the ttl out to expire with the parent",
                root.id()
            )
        );
    }

    #[test]
    fn an_expired_grant_cannot_be_attenuated() {
        let root = Grant::root_at(ceiling(), at(0), Duration::from_secs(300), None);
        let err = root
            .attenuate_at(&Narrowing::default(), at(300), None, None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "grant {} expired at 2027-01-15T08:05:00.000000000Z: an expired grant cannot be attenuated",
                root.id()
            )
        );
    }

    #[test]
    fn a_widening_is_refused_with_its_capability() {
        let root = Grant::root_at(ceiling(), at(0), Duration::from_secs(300), None);
        let child = root
            .attenuate_at(
                &Narrowing::parse(["fs=/workspace/src:read", "secrets=github"]).unwrap(),
                at(1),
                None,
                None,
            )
            .unwrap();
        let err = child
            .attenuate_at(
                &Narrowing::parse(["fs=/workspace:read"]).unwrap(),
                at(2),
                None,
                None,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "fs[0]: /workspace read is wider than anything the parent grants (parent: /workspace/src read)"
        );
        let err = child
            .attenuate_at(
                &Narrowing::parse(["secrets=github:reveal"]).unwrap(),
                at(2),
                None,
                None,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "secrets: github:reveal is wider than the parent's github:hmac, which does not allow reveal"
        );
    }
}

mod json {
    use super::*;

    fn sample() -> Capabilities {
        Capabilities::default()
            .with::<Fs>(vec![fs("/workspace", "/srv/ws", Access::Read)])
            .with::<Http>(vec![HttpGrant {
                limits: RequestLimits {
                    timeout: Duration::from_millis(1500),
                    ..RequestLimits::default()
                },
                ..http("https://api.github.com/repos/ GET")
            }])
            .with::<Tcp>(vec![tcp("db.internal:5432")])
            .with::<Secrets>(vec![secret("github", false)])
            .with::<Env>(with_env(&[("LANG", "C.UTF-8")], &["TZ"]).env)
    }

    fn sample_json() -> serde_json::Value {
        json!({
            "fs": [{"guest": "/workspace", "host": "/srv/ws", "access": "read"}],
            "http": [{
                "url": "https://api.github.com/repos/",
                "methods": ["GET"],
                "timeout": "1.5s",
                "request_body": 10485760,
                "response_body": 10485760
            }],
            "tcp": ["db.internal:5432"],
            "secrets": [{"name": "github", "inject": false, "hmac": true, "reveal": false}],
            "env": {"vars": {"LANG": "C.UTF-8"}, "pass": ["TZ"]},
            "limits": {"memory": 67108864, "timeout": "10s", "fuel": null, "output": 1048576}
        })
    }

    /// The decoding error's words for `sample_json()` changed by `edit`.
    fn refused(edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut value = sample_json();
        edit(&mut value);
        serde_json::from_value::<Capabilities>(value)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn capabilities_have_a_stable_form() {
        assert_eq!(serde_json::to_value(sample()).unwrap(), sample_json());
        assert_eq!(
            serde_json::from_value::<Capabilities>(sample_json()).unwrap(),
            sample()
        );
        let all_methods = with_http(vec![http("http://10.0.0.0/8/api/")]);
        let value = serde_json::to_value(&all_methods).unwrap();
        assert_eq!(value["http"][0]["methods"], serde_json::Value::Null);
        assert_eq!(
            serde_json::from_value::<Capabilities>(value).unwrap(),
            all_methods
        );
    }

    #[test]
    fn decoding_checks_as_a_manifest_does() {
        type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|v| v["extra"] = json!(1)), "unknown field `extra`"),
            (
                Box::new(|v| {
                    v.as_object_mut()
                        .unwrap()
                        .remove("limits")
                        .map(drop)
                        .unwrap()
                }),
                "missing field `limits`",
            ),
            (
                Box::new(|v| v["fs"][0]["guest"] = json!("/workspace/../etc")),
                r#"fs[0].guest: "/workspace/../etc" must not contain "..""#,
            ),
            (
                Box::new(|v| v["fs"][0]["guest"] = json!("/workspace/")),
                r#"fs[0].guest: "/workspace/" is not in normal form, expected "/workspace""#,
            ),
            (
                Box::new(|v| v["fs"][0]["access"] = json!("rw")),
                r#"expected "read" or "read-write", found "rw""#,
            ),
            (
                Box::new(|v| v["fs"][0]["host"] = json!("/srv/ws/../../etc")),
                r#"fs[0].host: "/srv/ws/../../etc" is not an absolute path in normal form (no ".", "..", empty or trailing components)"#,
            ),
            (
                Box::new(|v| v["fs"][0]["host"] = json!("srv/ws")),
                r#"fs[0].host: "srv/ws" is not an absolute path"#,
            ),
            (
                Box::new(|v| v["fs"][0]["host"] = json!("/srv//ws")),
                r#"fs[0].host: "/srv//ws" is not an absolute path"#,
            ),
            (
                Box::new(|v| v["fs"][0]["host"] = json!("/srv/ws/")),
                r#"fs[0].host: "/srv/ws/" is not an absolute path"#,
            ),
            (
                Box::new(|v| {
                    v["fs"] = json!([
                        {"guest": "/a", "host": "/x", "access": "read"},
                        {"guest": "/a/b", "host": "/y", "access": "read"}
                    ])
                }),
                r#"fs[1].guest: "/a/b" overlaps fs[0].guest "/a""#,
            ),
            (
                Box::new(|v| v["http"][0]["url"] = json!("https://*x.example/")),
                r#"http[0]: http rule url "https://*x.example/" has a bad wildcard"#,
            ),
            (
                Box::new(|v| v["http"][0]["methods"] = json!([])),
                "http[0]: http rule \"https://api.github.com/repos/\" has an empty methods list",
            ),
            (
                Box::new(|v| v["http"][0]["timeout"] = json!("0s")),
                "http[0].timeout: must be greater than zero",
            ),
            (
                Box::new(|v| v["tcp"][0] = json!("db.internal")),
                r#"tcp[0]: "db.internal": expected "host:port""#,
            ),
            (
                Box::new(|v| v["secrets"][0]["name"] = json!("Git Hub")),
                r#"secrets[0].name: "Git Hub" is not a secret name"#,
            ),
            (
                Box::new(|v| {
                    v["secrets"] = json!([
                        {"name": "a", "inject": false, "hmac": true, "reveal": false},
                        {"name": "a", "inject": false, "hmac": false, "reveal": true}
                    ])
                }),
                r#"secrets[1].name: "a" is already given in secrets[0]"#,
            ),
            (
                Box::new(|v| v["env"]["pass"] = json!(["LANG"])),
                r#"env.pass[0]: "LANG" is already given in env.vars"#,
            ),
            (
                Box::new(|v| v["env"]["vars"] = json!({"A=B": "x"})),
                r#"env.vars."A=B": invalid variable name "A=B""#,
            ),
            (
                Box::new(|v| v["limits"]["memory"] = json!(0)),
                "limits.memory: 0 B is out of range, expected between 1 MiB and 4 GiB",
            ),
            (
                Box::new(|v| v["limits"]["timeout"] = json!("2h")),
                "limits.timeout: 2h is out of range",
            ),
            (
                Box::new(|v| v["limits"]["timeout"] = json!(10)),
                "invalid type: integer `10`, expected a string",
            ),
            (
                Box::new(|v| v["limits"]["fuel"] = json!(0)),
                "limits.fuel: expected a positive integer, found 0",
            ),
            (
                Box::new(|v| v["limits"]["fuel"] = json!(u64::MAX)),
                "limits.fuel: 18446744073709551615 is too large",
            ),
            (
                Box::new(|v| v["limits"]["output"] = json!(0)),
                "limits.output: expected at least 1 byte, found 0 B",
            ),
        ];
        for (edit, message) in cases {
            let err = refused(edit);
            assert!(
                err.starts_with(message),
                "{err:?} should start with {message:?}"
            );
        }
    }

    fn grant() -> Grant {
        let root = Grant::root_at(
            sample(),
            UNIX_EPOCH + Duration::new(1_795_636_038, 5),
            Duration::from_secs(300),
            Some("planner".into()),
        );
        root.attenuate_at(
            &Narrowing::parse(["fs=/workspace/src"]).unwrap(),
            UNIX_EPOCH + Duration::new(1_795_636_040, 0),
            Some(Duration::from_secs(60)),
            None,
        )
        .unwrap()
    }

    #[test]
    fn grants_have_a_stable_form() {
        let child = grant();
        let value = serde_json::to_value(&child).unwrap();
        let mut caps = sample_json();
        caps["fs"] = json!([{"guest": "/workspace/src", "host": "/srv/ws/src", "access": "read"}]);
        assert_eq!(
            value,
            json!({
                "v": 1,
                "id": child.id(),
                "parent": child.parent(),
                "agent": "planner",
                "issued": "2026-11-25T19:47:20.000000000Z",
                "expires": "2026-11-25T19:48:20.000000000Z",
                "depth": 1,
                "caps": caps,
            })
        );
        let text = serde_json::to_string(&child).unwrap();
        assert!(text.starts_with(r#"{"v":1,"id":""#), "{text}");
        assert_eq!(serde_json::from_str::<Grant>(&text).unwrap(), child);
    }

    #[test]
    fn decoding_a_grant_checks_it() {
        let refused = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut value = serde_json::to_value(grant()).unwrap();
            edit(&mut value);
            serde_json::from_value::<Grant>(value)
                .unwrap_err()
                .to_string()
        };
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            refused(&|v| v["v"] = json!(2)),
            "v: version 2 is not one this warden reads, expected 1"
        );
        assert_eq!(
            refused(&|v| v["id"] = json!("ABC")),
            r#"id: "ABC" is not a grant id (32 lowercase hex digits)"#
        );
        assert_eq!(
            refused(&|v| v["parent"] = json!("0123")),
            r#"parent: "0123" is not a grant id (32 lowercase hex digits)"#
        );
        assert_eq!(
            refused(&|v| v["depth"] = json!(0)),
            "depth: 0 for a grant with a parent, expected 1 or more"
        );
        assert_eq!(
            refused(&|v| v["parent"] = json!(null)),
            "depth: 1 for a grant without a parent, expected 0"
        );
        assert_eq!(
            refused(&|v| v["expires"] = json!("2026-11-25T19:47:19Z")),
            "expires: 2026-11-25T19:47:19Z is before issued 2026-11-25T19:47:20.000000000Z"
        );
        assert_eq!(
            refused(&|v| v["issued"] = json!("2026-11-25 19:47:20")),
            r#"issued: "2026-11-25 19:47:20" is not an RFC 3339 UTC time such as "2026-11-25T19:47:18.000000005Z""#
        );
        assert!(
            refused(&|v| v["caps"]["fs"][0]["guest"] = json!("relative"))
                .starts_with("fs[0].guest")
        );
        assert!(refused(&|v| v["root"] = json!(true)).starts_with("unknown field `root`"));
        let mut ok = serde_json::to_value(grant()).unwrap();
        ok["parent"] = json!(id);
        assert!(serde_json::from_value::<Grant>(ok).is_ok());
    }

    #[test]
    fn a_decoded_grant_can_be_checked_against_its_manifest() {
        let decoded: Grant =
            serde_json::from_value(serde_json::to_value(grant()).unwrap()).unwrap();
        assert_eq!(decoded.check_within(&sample()), Ok(()));
        let other = with_fs(vec![fs("/workspace", "/home/eve", Access::ReadWrite)]);
        assert_eq!(
            decoded.check_within(&other).unwrap_err().to_string(),
            r#"fs[0]: /workspace/src maps to host "/srv/ws/src", but the parent maps it to "/home/eve/src""#
        );
    }

    #[test]
    fn env_values_keep_their_order_and_bytes() {
        let caps = with_env(&[("B", "2"), ("A", "é \" \\ \t")], &["Z", "Y"]);
        let back: Capabilities =
            serde_json::from_str(&serde_json::to_string(&caps).unwrap()).unwrap();
        assert_eq!(back, caps);
        assert_eq!(back.env.pass, ["Z", "Y"]);
        let vars: BTreeMap<_, _> = back.env.vars.clone();
        assert_eq!(vars["A"], "é \" \\ \t");
    }
}
