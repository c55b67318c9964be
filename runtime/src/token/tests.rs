use super::*;
use biscuit_auth::builder::BlockBuilder;
use serde_json::json;
use std::time::UNIX_EPOCH;

/// A stand-in for the grant model's subset check: lists of strings.
fn covers(parent: &Value, child: &Value) -> Result<(), String> {
    let parent = parent.as_array().ok_or("parent caps are not a list")?;
    let child = child.as_array().ok_or("child caps are not a list")?;
    match child.iter().find(|c| !parent.contains(c)) {
        Some(c) => Err(format!("{c} is not granted to the parent")),
        None => Ok(()),
    }
}

/// Whole seconds, as tokens keep them, so records compare equal.
fn at(secs_from_now: i64) -> SystemTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    UNIX_EPOCH + Duration::from_secs(now.checked_add_signed(secs_from_now).unwrap())
}

fn record(
    id: &str,
    parent: Option<&str>,
    depth: u32,
    expires: SystemTime,
    caps: Value,
) -> GrantRecord {
    GrantRecord {
        id: id.into(),
        parent: parent.map(Into::into),
        depth,
        expires,
        agent: Some(format!("agent-{depth}")),
        caps,
        tool: None,
    }
}

fn root() -> GrantRecord {
    let mut r = record("root", None, 0, at(600), json!(["read", "write", "net"]));
    r.agent = None;
    r
}

fn child() -> GrantRecord {
    record("child", Some("root"), 1, at(300), json!(["read", "write"]))
}

fn grandchild() -> GrantRecord {
    record("grandchild", Some("child"), 2, at(60), json!(["read"]))
}

/// The id the last block of `token` was given.
fn last_id(token: &str) -> String {
    unverified_records(token).unwrap().pop().unwrap().id
}

/// `r` appended to `token` as the child of its last grant, whatever `r` names.
fn under(token: &str, mut r: GrantRecord) -> String {
    r.parent = Some(last_id(token));
    attenuate(token, &r).unwrap()
}

/// A three-level token: issued, then narrowed twice.
fn three_levels(key: &IssuerKey) -> String {
    let t = issue(key, &root()).unwrap();
    let t = attenuate(&t, &child()).unwrap();
    under(&t, grandchild())
}

/// `expected` with the ids the token gave its attenuations, and parents to match.
fn as_given(chain: &[GrantRecord], expected: Vec<GrantRecord>) -> Vec<GrantRecord> {
    let mut expected = expected;
    for i in 1..expected.len() {
        expected[i].id = chain[i].id.clone();
        expected[i].parent = Some(chain[i - 1].id.clone());
    }
    expected
}

/// Appends a block as a holder could, bypassing `attenuate`'s own checks.
fn raw_append(token: &str, block: BlockBuilder) -> String {
    UnverifiedBiscuit::from_base64(token)
        .unwrap()
        .append(block)
        .unwrap()
        .to_base64()
        .unwrap()
}

fn check(token: &str, key: &IssuerKey) -> Result<Vec<GrantRecord>, TokenError> {
    verify(token, key.public(), SystemTime::now(), covers)
}

#[test]
fn three_levels_round_trip() {
    let key = IssuerKey::generate();
    let token = three_levels(&key);
    let chain = check(&token, &key).unwrap();
    assert_eq!(chain, as_given(&chain, vec![root(), child(), grandchild()]));
    assert_eq!(unverified_records(&token).unwrap(), chain);
    let grant = task_grant(&chain);
    assert_eq!(
        grant.chain,
        ["root", chain[1].id.as_str(), chain[2].id.as_str()]
    );
    for r in &chain[1..] {
        assert_eq!(r.id.len(), 32, "{}", r.id);
        assert!(r.id.bytes().all(|b| b.is_ascii_hexdigit()), "{}", r.id);
    }
    assert_eq!(grant.expires, Some(grandchild().expires));
    // Each level verifies on its own too.
    let issued = issue(&key, &root()).unwrap();
    assert_eq!(check(&issued, &key).unwrap(), vec![root()]);
}

#[test]
fn expiry_is_kept_to_the_second_rounded_down() {
    let key = IssuerKey::generate();
    let mut r = root();
    r.expires += Duration::from_millis(999);
    let chain = check(&issue(&key, &r).unwrap(), &key).unwrap();
    assert_eq!(chain[0].expires, root().expires);
}

#[test]
fn no_flipped_byte_is_accepted() {
    let key = IssuerKey::generate();
    let token = three_levels(&key);
    let bytes = decode(&token).unwrap();
    for i in 0..bytes.len() {
        let mut changed = bytes.clone();
        changed[i] ^= 0x01;
        let text = base64::engine::general_purpose::URL_SAFE.encode(&changed);
        // The root key id is an unsigned hint: changing it names another
        // issuer, and is refused as such.
        if let Ok(chain) = check(&text, &key) {
            panic!("byte {i} flipped, still accepted: {chain:?}");
        }
    }
}

#[test]
fn an_altered_record_is_a_bad_signature() {
    let key = IssuerKey::generate();
    let token = three_levels(&key);
    let mut bytes = decode(&token).unwrap();
    // Rename the grandchild's agent in place: the protobuf stays well formed.
    let at = bytes.windows(7).position(|w| w == b"agent-2").unwrap();
    bytes[at] = b'G';
    let text = base64::engine::general_purpose::URL_SAFE.encode(&bytes);
    let err = check(&text, &key).unwrap_err();
    assert!(matches!(err, TokenError::BadSignature { .. }), "{err}");
    assert!(err.to_string().contains("altered or forged"), "{err}");
}

#[test]
fn another_issuers_token_is_named_foreign() {
    let ours = IssuerKey::generate();
    let theirs = IssuerKey::generate();
    let err = check(&three_levels(&theirs), &ours).unwrap_err();
    match &err {
        TokenError::ForeignIssuer { token, expected } => {
            assert_eq!(token, &format!("{:08x}", theirs.public().id()));
            assert!(expected.contains(&ours.public().to_string()), "{expected}");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("warden grant key"), "{err}");
}

#[test]
fn a_token_claiming_our_key_id_but_signed_by_another_is_forged() {
    let ours = IssuerKey::generate();
    let theirs = IssuerKey::generate();
    let forged = Biscuit::builder()
        .merge(root().block().unwrap())
        .root_key_id(ours.public().id())
        .build(theirs.pair())
        .unwrap()
        .to_base64()
        .unwrap();
    let err = check(&forged, &ours).unwrap_err();
    assert!(matches!(err, TokenError::BadSignature { .. }), "{err}");
}

#[test]
fn a_widening_attenuation_is_refused_by_verify() {
    let key = IssuerKey::generate();
    let t = attenuate(&issue(&key, &root()).unwrap(), &child()).unwrap();
    // attenuate does not know the capability model: verify does.
    let child_id = last_id(&t);
    let wider = record("wide", None, 2, at(60), json!(["read", "net"]));
    let t = under(&t, wider);
    let err = check(&t, &key).unwrap_err();
    match &err {
        TokenError::Widened { id, parent, why } => {
            assert_eq!((id, parent), (&last_id(&t), &child_id));
            assert!(why.contains("\"net\" is not granted"), "{why}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn an_expired_root_is_refused() {
    let key = IssuerKey::generate();
    let mut r = root();
    r.expires = at(-5);
    let t = issue(&key, &r).unwrap();
    let err = check(&t, &key).unwrap_err();
    match &err {
        TokenError::Expired { id, at } => {
            assert_eq!(id, "root");
            assert_eq!(*at, r.expires);
        }
        other => panic!("{other}"),
    }
    assert!(
        err.to_string().starts_with("grant root expired at 20"),
        "{err}"
    );
}

#[test]
fn an_expired_attenuation_is_refused_and_named() {
    let key = IssuerKey::generate();
    let mut c = child();
    c.expires = at(-1);
    let t = attenuate(&issue(&key, &root()).unwrap(), &c).unwrap();
    let err = check(&t, &key).unwrap_err();
    assert!(
        matches!(&err, TokenError::Expired { id, .. } if *id == last_id(&t)),
        "{err}"
    );
    // The same token, verified as of before the expiry, holds.
    let earlier = c.expires - Duration::from_secs(10);
    assert!(verify(&t, key.public(), earlier, covers).is_ok());
}

#[test]
fn an_attenuation_outliving_its_parent_is_refused() {
    let key = IssuerKey::generate();
    let issued = issue(&key, &root()).unwrap();
    let mut late = child();
    late.expires = root().expires + Duration::from_secs(1);
    let err = attenuate(&issued, &late).unwrap_err();
    assert!(matches!(err, TokenError::Widened { .. }), "{err}");

    let forced = raw_append(&issued, late.block().unwrap());
    let err = check(&forced, &key).unwrap_err();
    match &err {
        TokenError::Widened { id, why, .. } => {
            assert_eq!(*id, last_id(&forced));
            assert!(why.contains("after its parent"), "{why}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_block_with_a_wrong_parent_or_depth_breaks_the_chain() {
    let key = IssuerKey::generate();
    let issued = issue(&key, &root()).unwrap();

    let orphan = record("child", Some("someone-else"), 1, at(300), json!(["read"]));
    let err = attenuate(&issued, &orphan).unwrap_err();
    assert!(
        matches!(err, TokenError::BrokenChain { block: 1, .. }),
        "{err}"
    );
    let err = check(&raw_append(&issued, orphan.block().unwrap()), &key).unwrap_err();
    assert!(
        matches!(err, TokenError::BrokenChain { block: 1, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("names parent someone-else, but block 0 holds grant root"),
        "{err}"
    );

    let deep = record("child", Some("root"), 2, at(300), json!(["read"]));
    let err = attenuate(&issued, &deep).unwrap_err();
    assert!(
        matches!(err, TokenError::BrokenChain { block: 1, .. }),
        "{err}"
    );
    let err = check(&raw_append(&issued, deep.block().unwrap()), &key).unwrap_err();
    assert!(
        err.to_string()
            .contains("has depth 2; block 1 holds depth 1"),
        "{err}"
    );
}

/// The attack: a holder writes its attenuation by hand, naming it with an id of its
/// choice (another agent's grant, to borrow its records or to have it revoked along
/// with its own). Ids of attenuations come from their blocks' signatures: a block that
/// names one is refused, and ids given to `attenuate` are not written.
#[test]
fn a_holder_cannot_choose_the_id_of_its_attenuation() {
    let key = IssuerKey::generate();
    let issued = issue(&key, &root()).unwrap();
    // depth 0 makes `block` write the id; the block still sits at index 1.
    let named = record(
        "someone-elses-grant",
        Some("root"),
        0,
        at(300),
        json!(["read"]),
    );
    let err = check(&raw_append(&issued, named.block().unwrap()), &key).unwrap_err();
    assert!(matches!(err, TokenError::Malformed(_)), "{err}");
    assert!(
        err.to_string()
            .contains("block 1: names its own grant id \"someone-elses-grant\""),
        "{err}"
    );
    assert!(unverified_records(&raw_append(&issued, named.block().unwrap())).is_err());

    // Through attenuate, the id asked for is ignored; two children of one parent get
    // two ids, neither of which is the one asked for.
    let mut asked = child();
    asked.id = "someone-elses-grant".into();
    let (a, b) = (
        attenuate(&issued, &asked).unwrap(),
        attenuate(&issued, &asked).unwrap(),
    );
    let (a, b) = (check(&a, &key).unwrap(), check(&b, &key).unwrap());
    assert_ne!(a[1].id, "someone-elses-grant");
    assert_ne!(a[1].id, b[1].id);
}

#[test]
fn the_tool_is_named_by_the_root_and_kept_by_every_attenuation() {
    let key = IssuerKey::generate();
    let mut r = root();
    let tool = ToolId {
        name: "probe".into(),
        component: format!("blake3:{}", "ab".repeat(32)),
    };
    r.tool = Some(tool.clone());
    let issued = issue(&key, &r).unwrap();
    let t = attenuate(&issued, &child()).unwrap();
    let chain = check(&t, &key).unwrap();
    assert_eq!(chain[0].tool.as_ref(), Some(&tool));
    assert_eq!(chain[1].tool.as_ref(), Some(&tool));

    // An attenuation may not name another.
    let retooled = child()
        .block()
        .unwrap()
        .fact("tool(\"other\", \"blake3:00\")")
        .unwrap();
    let err = check(&raw_append(&issued, retooled), &key).unwrap_err();
    assert!(err.to_string().contains("block 1: names a tool"), "{err}");
}

#[test]
fn only_a_root_can_be_issued() {
    let key = IssuerKey::generate();
    let err = issue(&key, &child()).unwrap_err();
    assert!(
        err.to_string().contains("an issued grant is a root"),
        "{err}"
    );
}

#[test]
fn blocks_holding_anything_but_one_record_are_refused() {
    let key = IssuerKey::generate();
    let issued = issue(&key, &root()).unwrap();

    let bare = raw_append(&issued, BlockBuilder::new().check("check if true").unwrap());
    let err = check(&bare, &key).unwrap_err();
    assert!(
        err.to_string()
            .contains("block 1: holds no grant(...) fact"),
        "{err}"
    );

    let extra = child().block().unwrap().fact("right(\"all\")").unwrap();
    let err = check(&raw_append(&issued, extra), &key).unwrap_err();
    assert!(err.to_string().contains("unexpected fact right/1"), "{err}");

    let rule = child()
        .block()
        .unwrap()
        .rule("grant(1, \"x\", null, 2000000000, null) <- time($t)")
        .unwrap();
    let err = check(&raw_append(&issued, rule), &key).unwrap_err();
    assert!(err.to_string().contains("holds datalog rules"), "{err}");
}

#[test]
fn a_check_added_by_a_holder_is_enforced() {
    let key = IssuerKey::generate();
    let issued = issue(&key, &root()).unwrap();
    let picky = child()
        .block()
        .unwrap()
        .check("check if resource(\"only-this\")")
        .unwrap();
    let err = check(&raw_append(&issued, picky), &key).unwrap_err();
    match &err {
        TokenError::Refused { block, check } => {
            assert_eq!(*block, 1);
            assert!(check.contains("only-this"), "{check}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn text_that_is_no_token_says_what_it_is() {
    let key = IssuerKey::generate();
    for (text, expect) in [
        ("", "malformed grant token: the token is empty"),
        ("  \n", "the token is empty"),
        ("not a token!", "not base64url"),
        ("aGVsbG8", "malformed grant token: not a biscuit token"),
    ] {
        let err = check(text, &key).unwrap_err().to_string();
        assert!(err.contains(expect), "{text:?}: {err}");
        let err = attenuate(text, &child()).unwrap_err().to_string();
        assert!(err.contains(expect), "{text:?}: {err}");
    }
}

#[test]
fn ids_that_revocation_could_not_name_are_refused() {
    let key = IssuerKey::generate();
    for id in ["", "a b", "a\nb"] {
        let mut r = root();
        r.id = id.into();
        let err = issue(&key, &r).unwrap_err().to_string();
        assert!(err.contains("is not a grant id"), "{id:?}: {err}");
    }
}

#[test]
fn ids_and_caps_with_quotes_survive() {
    let key = IssuerKey::generate();
    let mut r = root();
    r.id = r#"a"b\c"#.into();
    r.caps = json!({"fs": [{"path": "/w\"x", "access": "read"}]});
    let chain = verify(
        &issue(&key, &r).unwrap(),
        key.public(),
        SystemTime::now(),
        |_, _| Ok(()),
    )
    .unwrap();
    assert_eq!(chain, vec![r]);
}
