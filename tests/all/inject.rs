//! Secrets injected into outgoing requests: the host adds the header after
//! the egress check, only on requests its `inject.url` matches, and scrubs
//! every value from what comes back. Each secret is a fresh random value, so
//! finding it anywhere the tool or the log can see is a leak.

use crate::http_server::Server;
use crate::openbao::{bao, random_hex, unique_path};
use crate::support::{Run, Sandbox};
use serde_json::json;

fn fresh_token() -> String {
    format!("ghp_{}", random_hex(16))
}

/// `github-issues` pointed at `server`, with its token injected from `source`.
fn issues(server: &Server, source: &str) -> Sandbox {
    let sb = Sandbox::new("github-issues", "github_issues");
    let base = server.base();
    sb.write_manifest(
        &format!(
            r#"[tool]
name = "github-issues"
component = ""

[limits]
timeout = "10s"

[env]
vars = {{ GITHUB_API = "{base}" }}

[[http]]
url = "{base}/repos/"
methods = ["GET"]

[[secrets]]
name = "github"
source = "{source}"
purpose = "read issues"
inject = {{ url = "{base}/repos/", header = "authorization", format = "Bearer {{}}" }}
"#
        ),
        "github_issues",
    );
    sb
}

/// `http-fetch` allowed everywhere on `server`, with `GITHUB_TOKEN` injected
/// on requests under `inject_path`.
fn fetch(server: &Server, inject_path: &str) -> Sandbox {
    let sb = Sandbox::new("http-fetch", "http_fetch");
    let base = server.base();
    sb.write_manifest(
        &format!(
            r#"[tool]
name = "http-fetch"
component = ""

[limits]
timeout = "10s"

[[http]]
url = "{base}/"

[[secrets]]
name = "github"
source = "env:GITHUB_TOKEN"
purpose = "call the test api"
inject = {{ url = "{base}{inject_path}", header = "authorization", format = "Bearer {{}}" }}
"#
        ),
        "http_fetch",
    );
    sb
}

/// The value is nowhere the tool, the agent or the log can see it.
fn assert_nowhere(sb: &Sandbox, run: &Run, value: &str) {
    let log = std::fs::read_to_string(&sb.audit).unwrap_or_default();
    let tail = &value[value.len() - 12..];
    for (what, text) in [
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
        ("audit log", &log),
    ] {
        assert!(
            !text.contains(tail),
            "the secret leaked into {what}: {text}"
        );
    }
}

#[test]
fn a_tool_calls_an_authenticated_api_with_a_token_it_never_sees() {
    let token = fresh_token();
    let server = Server::start(&token);
    let sb = issues(&server, "env:GITHUB_TOKEN");
    let run = sb.run_with(r#"{"repo":"octo/hello"}"#, &[("GITHUB_TOKEN", &token)]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        run.json(),
        json!([
            {"number": 1, "title": "first issue", "state": "open"},
            {"number": 2, "title": "second issue", "state": "closed"},
        ])
    );
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].target, "/repos/octo/hello/issues?state=open");
    assert_eq!(
        got[0].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );

    let handle = run
        .records
        .iter()
        .find(|r| r["call"] == "wasi:http/outgoing-handler.handle")
        .unwrap();
    assert_eq!(handle["args"]["secrets"], json!(["github"]));
    let uses = run.events("secret.use");
    assert_eq!(uses.len(), 1, "{run:#?}");
    let used = uses[0];
    assert_eq!(used["decision"], "allow");
    assert_eq!(used["args"]["operation"], "inject");
    assert_eq!(used["args"]["name"], "github");
    assert_eq!(used["args"]["purpose"], "read issues");
    assert_eq!(used["args"]["provider"], "env");
    assert_eq!(used["args"]["header"], "authorization");
    assert_eq!(
        used["args"]["destination"],
        format!("{}/repos/octo/hello/issues?state=open", server.base())
    );
    assert_eq!(
        used["rule"],
        format!("secrets[0] github.inject {}/repos/", server.base())
    );
    run.assert_recorded();
    assert_nowhere(&sb, &run, &token);
}

#[test]
fn a_wrong_token_is_the_api_s_refusal_not_a_leak() {
    let server = Server::start(&fresh_token());
    let sb = issues(&server, "env:GITHUB_TOKEN");
    let wrong = fresh_token();
    let run = sb.run_with(r#"{"repo":"octo/hello"}"#, &[("GITHUB_TOKEN", &wrong)]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("refused the credentials (401)"),
        "{run:#?}"
    );
    run.assert_recorded();
    assert_nowhere(&sb, &run, &wrong);
}

#[test]
fn the_injected_token_can_come_from_openbao() {
    let token = fresh_token();
    let server = Server::start(&token);
    let bao = bao();
    let path = unique_path("github");
    bao.put(&path, json!({ "token": token }));
    let sb = issues(&server, &format!("vault:secret/{path}#token"));
    let run = sb.run_with(
        r#"{"repo":"octo/hello"}"#,
        &[("VAULT_ADDR", &bao.addr), ("VAULT_TOKEN", &bao.token)],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.json().as_array().map(Vec::len), Some(2));
    assert_eq!(
        server.received()[0].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    let used = run.events("secret.use")[0];
    assert_eq!(used["args"]["provider"], "vault");
    assert_eq!(used["args"]["version"], 1);
    run.assert_recorded();
    assert_nowhere(&sb, &run, &token);
}

#[test]
fn an_echoing_server_gives_back_only_the_redaction() {
    let token = fresh_token();
    let server = Server::start("unused");
    let sb = fetch(&server, "/echo");
    let run = sb.run_with(
        &json!({ "url": format!("{}/echo/me", server.base()) }).to_string(),
        &[("GITHUB_TOKEN", &token)],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    // The server got the real header ...
    assert_eq!(
        server.received()[0].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    // ... and everything it echoed, in its headers and its body, is scrubbed.
    let out = run.json();
    let echoed = out["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "x-echo-authorization")
        .expect("the echo header");
    assert_eq!(echoed[1], "Bearer [REDACTED:github]");
    assert!(
        out["body"]
            .as_str()
            .unwrap()
            .contains(r#"["authorization","Bearer [REDACTED:github]"]"#),
        "{out}"
    );
    let end = run.events("http.end")[0];
    assert_eq!(end["args"]["redacted"], 2, "{end}");
    run.assert_recorded();
    assert_nowhere(&sb, &run, &token);
}

#[test]
fn a_value_split_across_body_chunks_is_still_redacted() {
    let token = fresh_token();
    let server = Server::start("unused");
    let sb = fetch(&server, "/chunks");
    for size in [1, 3, 7, 16] {
        let run = sb.run_with(
            &json!({ "url": format!("{}/chunks?size={size}", server.base()) }).to_string(),
            &[("GITHUB_TOKEN", &token)],
        );
        assert_eq!(run.code, 0, "{run:#?}");
        assert_eq!(
            run.json()["body"],
            "before Bearer [REDACTED:github] after",
            "chunks of {size}"
        );
        run.assert_recorded();
        assert_nowhere(&sb, &run, &token);
    }
}

#[test]
fn a_tool_that_sets_the_secret_header_itself_is_refused() {
    let token = fresh_token();
    let server = Server::start("unused");
    let sb = fetch(&server, "/echo");
    let run = sb.run_with(
        &json!({
            "url": format!("{}/echo", server.base()),
            "headers": {"authorization": "Bearer mine"},
        })
        .to_string(),
        &[("GITHUB_TOKEN", &token)],
    );
    assert_eq!(run.code, 1, "{run:#?}");
    let d = run.denial("outgoing-handler.handle");
    let why = d["rule"].as_str().unwrap();
    assert!(
        why.contains("sets header `authorization`, which the host sets on this url for secret \"github\" (secrets[0].inject)"),
        "{why}"
    );
    assert!(server.received().is_empty());
    assert!(run.events("secret.use").is_empty());
    run.assert_recorded();
}

#[test]
fn placeholders_elsewhere_get_no_secret() {
    let token = fresh_token();
    let server = Server::start("unused");
    // The secret is bound to /api/ only; the guest tries every other place.
    let sb = fetch(&server, "/api/");
    let run = sb.run_with(
        &json!({
            "url": format!("{}/echo/%7B%7Bgithub%7D%7D?t=${{GITHUB_TOKEN}}&s={{{{secret:github}}}}", server.base()),
            "method": "POST",
            "headers": {"x-token": "{{secret:github}}", "x-auth": "Bearer {}"},
            "body": "{{github}} ${GITHUB_TOKEN} [REDACTED:github]",
        })
        .to_string(),
        &[("GITHUB_TOKEN", &token)],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let got = &server.received()[0];
    assert_eq!(got.header("authorization"), None);
    assert_eq!(got.header("x-token"), Some("{{secret:github}}"));
    assert_eq!(
        String::from_utf8_lossy(&got.body),
        "{{github}} ${GITHUB_TOKEN} [REDACTED:github]"
    );
    let wire = format!("{got:?}");
    assert!(!wire.contains(&token[token.len() - 12..]), "{wire}");
    assert!(run.events("secret.use").is_empty(), "{run:#?}");
    run.assert_recorded();
    assert_nowhere(&sb, &run, &token);
}

#[test]
fn a_request_outside_the_inject_url_carries_no_secret() {
    let token = fresh_token();
    let server = Server::start("unused");
    let sb = fetch(&server, "/api/");
    let run = sb.run_with(
        &json!({ "url": format!("{}/echo/api/", server.base()) }).to_string(),
        &[("GITHUB_TOKEN", &token)],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(server.received()[0].header("authorization"), None);
    let handle = run
        .records
        .iter()
        .find(|r| r["call"] == "wasi:http/outgoing-handler.handle")
        .unwrap();
    assert_eq!(handle["args"]["secrets"], json!([]));
    run.assert_recorded();
}

// ---- a secret that comes back compressed or encoded -----------------------------------
//
// The tool asks for `accept-encoding: gzip` (or the server compresses unasked, or encodes
// the echo as text), reads the bytes it is handed with `"raw": true`, and decodes them
// every way it can: what `readable` does here is what a hostile tool would do inside the
// sandbox. No piece of the token may come out of any of it.

/// `http-fetch` fetching `/coded?QUERY` with the token injected, asking for gzip itself.
fn fetch_coded(server: &Server, sb: &Sandbox, token: &str, query: &str) -> Run {
    sb.run_with(
        &json!({
            "url": format!("{}/coded?{query}", server.base()),
            "headers": {"accept-encoding": "gzip"},
            "raw": true,
        })
        .to_string(),
        &[("GITHUB_TOKEN", token)],
    )
}

/// The bytes the guest was handed.
fn handed(run: &Run) -> Vec<u8> {
    let hex = run.json()["body_hex"].as_str().unwrap().to_owned();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Everything a tool can make of `bytes`: the bytes, their decompression in every coding
/// (as far as it gets), and every run of base64, hex, percent or `\u` escapes decoded at
/// every alignment.
fn readable(bytes: &[u8]) -> Vec<Vec<u8>> {
    use std::io::Read;
    let mut out = vec![bytes.to_vec()];
    let mut drain = |mut r: Box<dyn Read + '_>| {
        let mut got = Vec::new();
        let mut buf = [0; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        out.push(got);
    };
    drain(Box::new(flate2::read::MultiGzDecoder::new(bytes)));
    drain(Box::new(flate2::read::ZlibDecoder::new(bytes)));
    drain(Box::new(flate2::read::DeflateDecoder::new(bytes)));
    drain(Box::new(brotli::Decompressor::new(bytes, 4096)));
    if let Ok(z) = zstd::stream::read::Decoder::new(bytes) {
        drain(Box::new(z));
    }
    let runs = |ok: fn(u8) -> bool| -> Vec<&[u8]> {
        bytes.split(|b| !ok(*b)).filter(|r| r.len() >= 4).collect()
    };
    let b64 = |c: u8| -> Option<u8> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        })
    };
    for run in runs(|c| c.is_ascii_alphanumeric() || b"+/-_".contains(&c)) {
        for shift in 0..4 {
            let mut bits = 0u32;
            let mut n = 0;
            let mut decoded = Vec::new();
            for &c in &run[shift.min(run.len())..] {
                bits = (bits << 6) | u32::from(b64(c).unwrap());
                n += 6;
                if n >= 8 {
                    n -= 8;
                    decoded.push((bits >> n) as u8);
                }
            }
            out.push(decoded);
        }
    }
    for run in runs(|c| c.is_ascii_hexdigit()) {
        for shift in 0..2 {
            let digits = &run[shift.min(run.len())..];
            let decoded = digits
                .chunks_exact(2)
                .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
                .collect();
            out.push(decoded);
        }
    }
    // `%XX` and `\uXXXX`, wherever they are.
    let text = String::from_utf8_lossy(bytes).into_owned();
    let mut unescaped = Vec::new();
    let mut i = 0;
    let t = text.as_bytes();
    while i < t.len() {
        let hex_at = |from: usize, len: usize| {
            t.get(from..from + len)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok())
        };
        if t[i] == b'%'
            && let Some(v) = hex_at(i + 1, 2)
        {
            unescaped.push(v as u8);
            i += 3;
        } else if t[i..].starts_with(b"\\u")
            && let Some(v) = hex_at(i + 2, 4)
        {
            unescaped.push(v as u8);
            i += 6;
        } else {
            unescaped.push(t[i]);
            i += 1;
        }
    }
    out.push(unescaped);
    out
}

/// Panics if any reading of `bytes` holds 6 bytes in a row of the token's random part.
fn assert_unreadable(bytes: &[u8], token: &str, what: &str) {
    let secret = &token.as_bytes()["ghp_".len()..];
    for reading in readable(bytes) {
        for piece in secret.windows(6) {
            assert!(
                !reading.windows(6).any(|w| w == piece),
                "{what}: the tool can read the token: {:?} in {:?}",
                String::from_utf8_lossy(piece),
                String::from_utf8_lossy(&reading)
            );
        }
    }
}

#[test]
fn a_compressed_echo_is_decoded_and_redacted_before_the_tool_sees_it() {
    let token = fresh_token();
    let server = Server::start("unused");
    let sb = fetch(&server, "/coded");
    for coding in ["gzip", "x-gzip", "deflate", "br", "zstd", "accepted"] {
        let run = fetch_coded(&server, &sb, &token, &format!("as={coding}"));
        assert_eq!(run.code, 0, "{coding}: {run:#?}");
        // Nothing the tool can decode holds the token ...
        let body = handed(&run);
        assert_unreadable(&body, &token, coding);
        // ... as it got the echo as plain JSON, with the token redacted.
        let echoed: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{coding}: not plain JSON ({e}): {run:#?}"));
        assert!(
            echoed["headers"]
                .as_array()
                .unwrap()
                .contains(&json!(["authorization", "Bearer [REDACTED:github]"])),
            "{coding}: {echoed}"
        );
        // Warden, not the tool, said what the server may send, and the tool
        // is not told of a coding or a length that are not its body's.
        let sent = server.received().pop().unwrap();
        assert_eq!(
            sent.header("accept-encoding"),
            Some("gzip, deflate, br, zstd"),
            "{coding}"
        );
        let out = run.json();
        let headers = out["headers"].as_array().unwrap();
        assert!(
            !headers
                .iter()
                .any(|h| h[0] == "content-encoding" || h[0] == "content-length"),
            "{coding}: {headers:?}"
        );
        let end = run.events("http.end")[0];
        let expected = if coding == "accepted" || coding == "x-gzip" {
            "gzip"
        } else {
            coding
        };
        assert_eq!(end["args"]["content_encoding"], expected, "{end}");
        assert_eq!(
            end["args"]["decoded_bytes"],
            body.len() - "[REDACTED:github]".len() + token.len(),
            "{end}"
        );
        assert_eq!(end["args"]["redacted"], 1, "{end}");
        assert_eq!(end["outcome"], "ok");
        run.assert_recorded();
        assert_nowhere(&sb, &run, &token);
    }
}

#[test]
fn an_echo_encoded_as_text_is_redacted_in_every_form() {
    let token = fresh_token();
    let server = Server::start("unused");
    let sb = fetch(&server, "/coded");
    let mut queries = Vec::new();
    for form in ["base64", "base64-nopad", "base64url", "base64url-nopad"] {
        // "Bearer " is 7 bytes: pads of 0, 1 and 2 put the token at offsets 1, 2 and 0.
        for pad in 0..3 {
            queries.push(format!("as={form}&pad={pad}"));
        }
    }
    for form in ["percent", "percent-lower", "json-u", "json-U", "hex", "HEX"] {
        queries.push(format!("as={form}"));
    }
    for query in queries {
        let run = fetch_coded(&server, &sb, &token, &query);
        assert_eq!(run.code, 0, "{query}: {run:#?}");
        let body = handed(&run);
        assert!(
            String::from_utf8_lossy(&body).contains("[REDACTED:github]"),
            "{query}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_unreadable(&body, &token, &query);
        assert_eq!(run.events("http.end")[0]["args"]["redacted"], 1, "{query}");
        run.assert_recorded();
        assert_nowhere(&sb, &run, &token);
    }
}

#[test]
fn a_coding_warden_does_not_decode_is_refused() {
    let token = fresh_token();
    let server = Server::start("unused");
    let sb = fetch(&server, "/coded");
    for (form, header, value, code) in [
        (
            "compress",
            "content-encoding",
            "compress",
            "HTTP-response-content-coding",
        ),
        (
            "gzip-twice",
            "content-encoding",
            "gzip, gzip",
            "HTTP-response-content-coding",
        ),
        (
            "te-gzip",
            "transfer-encoding",
            "gzip, chunked",
            "HTTP-response-transfer-coding",
        ),
    ] {
        let run = fetch_coded(&server, &sb, &token, &format!("as={form}"));
        assert_eq!(run.code, 1, "{form}: {run:#?}");
        assert!(
            run.stderr.contains("HttpResponseContentCoding")
                || run.stderr.contains("HttpResponseTransferCoding"),
            "{form}: {run:#?}"
        );
        let end = run.events("http.end")[0];
        assert_eq!(end["decision"], "deny", "{end}");
        assert_eq!(end["outcome"], format!("error:{code}"), "{end}");
        let why = end["rule"].as_str().unwrap();
        assert!(
            why.contains(&format!(
                "the response to a request that carries secret \"github\" came with `{header}: {value}`, which warden does not decode"
            )),
            "{why}"
        );
        run.assert_recorded();
        assert_nowhere(&sb, &run, &token);
    }
}

#[test]
fn a_decompression_bomb_ends_at_the_response_limit() {
    let token = fresh_token();
    let server = Server::start("unused");
    let sb = fetch(&server, "/coded");
    let manifest = std::fs::read_to_string(&sb.manifest).unwrap();
    let manifest = manifest.replace(
        &format!("url = \"{}/\"\n", server.base()),
        &format!("url = \"{}/\"\nresponse_body = \"1 MiB\"\n", server.base()),
    );
    std::fs::write(&sb.manifest, manifest).unwrap();
    // 64 MiB of zeros: about 64 KiB on the wire, far under the limit.
    let run = fetch_coded(&server, &sb, &token, "as=bomb&mib=64");
    // (Not the whole run on failure: it would hold the body.)
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("response body size exceeds limit"),
        "{}",
        run.stderr
    );
    let end = run.events("http.end")[0];
    assert_eq!(end["outcome"], "error:HTTP-response-body-size", "{end}");
    assert!(
        end["args"]["response_bytes"].as_u64().unwrap() < 1 << 20,
        "{end}"
    );
    let decoded = end["args"]["decoded_bytes"].as_u64().unwrap();
    assert!(
        decoded > 1 << 20 && decoded <= (1 << 20) + (64 << 10),
        "{end}"
    );
    assert_eq!(
        end["args"]["error"],
        "the gzip body decodes to more than the rule's response_body limit"
    );
    run.assert_recorded();
    assert_nowhere(&sb, &run, &token);
}

#[test]
fn a_request_without_a_secret_keeps_the_tool_s_own_coding() {
    let token = fresh_token();
    let server = Server::start("unused");
    // The secret goes to /api/ only: /coded is the tool's own business.
    let sb = fetch(&server, "/api/");
    let run = fetch_coded(&server, &sb, &token, "as=accepted");
    assert_eq!(run.code, 0, "{run:#?}");
    let sent = server.received().pop().unwrap();
    assert_eq!(sent.header("accept-encoding"), Some("gzip"));
    assert_eq!(sent.header("authorization"), None);
    let headers = run.json()["headers"].clone();
    assert!(
        headers
            .as_array()
            .unwrap()
            .contains(&json!(["content-encoding", "gzip"])),
        "{headers}"
    );
    let body = handed(&run);
    assert_eq!(&body[..2], b"\x1f\x8b", "gzip, as the tool asked");
    run.assert_recorded();
}

/// A value that cannot go into a header is refused with the same words wherever its bad
/// byte is: nothing the tool is told depends on the value.
#[test]
fn a_value_that_cannot_be_injected_is_refused_without_saying_where() {
    let server = Server::start("unused");
    let sb = fetch(&server, "/");
    let url = format!("{}/echo", server.base());
    let told = |token: &str| {
        let run = sb.run_with(
            &json!({ "url": url }).to_string(),
            &[("GITHUB_TOKEN", token)],
        );
        assert_eq!(run.code, 1, "{run:#?}");
        assert!(
            run.stderr
                .contains("the value holds a control character, which a header value cannot carry"),
            "{run:#?}"
        );
        // The connection was up (the header is added then), and no request went over it.
        let got = server.received();
        assert!(
            got.iter().all(|r| r.method.is_empty()),
            "a request was sent"
        );
        // What the tool and its caller see, without the task's own id.
        let task = run.records[0]["task"].as_str().unwrap().to_owned();
        (
            run.stdout.replace(&task, "T"),
            run.stderr.replace(&task, "T"),
        )
    };
    let early = told(&format!("\x01{}", random_hex(16)));
    let late = told(&format!("{}\x1f", random_hex(16)));
    assert_eq!(early, late);
}
