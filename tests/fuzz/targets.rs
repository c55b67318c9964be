//! The bodies of Warden's fuzz targets, one function each, shared by the libFuzzer
//! harness (`tests/fuzz/fuzz_targets/`, run by `tests/fuzz/run`) and by the replay of the
//! committed corpus in `cargo test` (`tests/all/fuzz.rs`). Each must never panic on any
//! input; where an input is accepted, each checks a property of what was accepted.

use std::path::Path;
use std::sync::OnceLock;

use warden_host_api::grant::Capabilities;
use warden_host_api::http::{Egress, HttpRule};

/// Every target, by the name of its corpus directory.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("manifest", manifest),
    ("token", token),
    ("covers", covers),
    ("egress", egress),
];

/// The manifest parser: any text, as if read from a file in a directory that does not
/// exist (so relative grant paths resolve to nothing). What it accepts, `check` prints.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/nonexistent-warden-fuzz/warden.toml");
    if let Ok(m) = warden::manifest::Manifest::parse(text, path) {
        let _ = m.effective_grants();
        // What a manifest allows, it allows its own grants.
        let ceiling = m.ceiling();
        assert!(
            ceiling.covers(&ceiling).is_ok(),
            "a ceiling does not cover itself"
        );
    }
}

/// Grant token decoding: the protobuf, the symbol tables and the grant facts of each
/// block, before any signature is checked. A token whose records decode keeps its
/// links readable: every attenuation has a 32-digit id.
pub fn token(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(records) = warden::token::unverified_records(text) {
        for r in records.iter().skip(1) {
            assert_eq!(r.id.len(), 32, "an attenuation's id is derived: {}", r.id);
        }
        // The same text verifies against a key that did not sign it only if it is
        // not a token at all: never.
        let key = issuer();
        let verified =
            warden::token::verify(text, key.public(), std::time::SystemTime::now(), |_, _| {
                Ok(())
            });
        assert!(
            verified.is_err(),
            "a token verified against a key that never signed"
        );
    }
}

fn issuer() -> &'static warden::token::IssuerKey {
    static KEY: OnceLock<warden::token::IssuerKey> = OnceLock::new();
    KEY.get_or_init(warden::token::IssuerKey::generate)
}

/// The grant model's capabilities as JSON (two documents, one a line: parent, then
/// child) and `covers`: each decodable set covers itself, and covering is transitive
/// through the pair (parent ⊇ child and child ⊇ parent means they cover each other's
/// covers).
pub fn covers(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut docs = text.splitn(2, '\n');
    let decode = |doc: Option<&str>| -> Option<Capabilities> { serde_json::from_str(doc?).ok() };
    let (parent, child) = (decode(docs.next()), decode(docs.next()));
    for caps in [&parent, &child].into_iter().flatten() {
        assert!(
            caps.covers(caps).is_ok(),
            "a grant does not cover itself: {caps:?}"
        );
    }
    if let (Some(parent), Some(child)) = (parent, child)
        && parent.covers(&child).is_ok()
        && child.covers(&parent).is_ok()
    {
        // Equal reach: each covers whatever the other covers, itself included.
        assert!(parent.covers(&parent).is_ok() && child.covers(&child).is_ok());
    }
}

/// The egress URL check: the first line is an `[[http]]` rule, the second a method and
/// the rest a request URL. A request allowed is allowed again as normalized (what is
/// sent is what was checked), by the same rule, to the same host and port.
pub fn egress(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let (Some(rule), Some(method), Some(url)) = (lines.next(), lines.next(), lines.next()) else {
        return;
    };
    let Ok(rule) = HttpRule::parse(rule, None) else {
        return;
    };
    let egress = Egress::new(vec![rule]);
    let Ok(allowed) = egress.check(method, url) else {
        return;
    };
    let again = egress.check(method, allowed.url()).unwrap_or_else(|d| {
        panic!(
            "{url:?} was allowed as {:?}, which is not: {d}",
            allowed.url()
        )
    });
    assert_eq!(
        again.url(),
        allowed.url(),
        "normalizing twice changed {url:?}"
    );
    assert_eq!(
        (again.index(), again.host(), again.port()),
        (allowed.index(), allowed.host(), allowed.port())
    );
    let parsed = url::Url::parse(allowed.url()).expect("an allowed URL parses");
    assert_eq!(parsed.port_or_known_default(), Some(allowed.port()));
    assert!(parsed.username().is_empty() && parsed.password().is_none());
}
