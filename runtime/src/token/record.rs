//! One grant record per block: how a [`GrantRecord`] is written into a
//! biscuit block, and read back out of one.
//!
//! Biscuit offers no way to ask which block a fact came from: its queries
//! merge the facts of all trusted blocks, and the datalog it prints does not
//! escape quotes, so it cannot be parsed back safely. The records are
//! therefore read from the token's protobuf form, block by block, with
//! biscuit's own schema types: the same bytes whose signatures biscuit
//! checks.

use super::TokenError;
use biscuit_auth::builder::{BlockBuilder, Term, int, string};
use biscuit_auth::datalog::SymbolTable;
use biscuit_auth::format::schema;
use prost::Message as _;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One grant as a token carries it: block 0 holds the issued grant, block
/// `n` the `n`th attenuation.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantRecord {
    /// The grant's id, as revocation names it: no whitespace or control
    /// characters.
    ///
    /// The issuer chooses the id of the issued grant. The id of an attenuation is
    /// never written by its holder: it is derived from the signature of its block
    /// ([`derived_id`]), which the holder cannot choose, so no holder can give its
    /// grant the id of another (to borrow its records, or to have it revoked along
    /// with its own). What [`attenuate`](super::attenuate) is given here is ignored.
    pub id: String,
    /// The id of the grant this one was narrowed from; `None` for the
    /// issued (root) grant.
    pub parent: Option<String>,
    /// 0 for the issued grant, one more for each attenuation: the index of
    /// the block that holds the record.
    pub depth: u32,
    /// When the grant ends. Tokens keep whole seconds (biscuit dates are
    /// seconds), rounded down: a token never outlives its grant.
    pub expires: SystemTime,
    /// The agent the grant was handed to, if named.
    pub agent: Option<String>,
    /// The capabilities, in the grant model's JSON form. Carried as is:
    /// only the `covers` check passed to [`verify`](super::verify)
    /// interprets them.
    pub caps: serde_json::Value,
    /// The tool the grant is for: set in the issued grant only, and carried by
    /// every attenuation of it (an attenuation that names one is refused).
    pub tool: Option<ToolId>,
}

/// The tool a grant token is for: its name and the digest of its component, so
/// that the token cannot be spent on another tool, nor on another build of this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolId {
    /// The manifest's `tool.name`.
    pub name: String,
    /// `blake3:<hex>` of the component's bytes.
    pub component: String,
}

/// The id of the attenuation whose block carries `signature`: 128 bits of its
/// BLAKE3, as 32 lowercase hex digits, like the ids Warden issues.
pub fn derived_id(signature: &[u8]) -> String {
    let hash = blake3::derive_key("warden grant id v1", signature);
    hash[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The datalog of one block. `expires` is a biscuit date, so the check can
/// compare it with the verifier's `time(now)`.
const BLOCK: &str = r#"
grant({depth}, {id}, {parent}, {expires}, {agent});
caps({depth}, {caps});
check if time($now), $now < {expires};
"#;

/// What block 0 adds: the tool the token is for.
const TOOL: &str = r#"
tool({name}, {component});
"#;

impl GrantRecord {
    /// The block that carries this record.
    pub(crate) fn block(&self) -> Result<BlockBuilder, TokenError> {
        // An attenuation's id comes from its block's signature: it writes none.
        let root = self.depth == 0;
        if root {
            check_id("id", &self.id)?;
        }
        if let Some(parent) = &self.parent {
            check_id("parent", parent)?;
        }
        let optional = |v: &Option<String>| v.as_deref().map_or(Term::Null, string);
        let caps = serde_json::to_string(&self.caps)
            .map_err(|e| TokenError::Build(format!("grant {}: caps: {e}", self.id)))?;
        let id = if root { string(&self.id) } else { Term::Null };
        let params = HashMap::from([
            ("depth".to_string(), int(self.depth.into())),
            ("id".to_string(), id),
            ("parent".to_string(), optional(&self.parent)),
            ("expires".to_string(), Term::Date(unix_secs(self.expires)?)),
            ("agent".to_string(), optional(&self.agent)),
            ("caps".to_string(), string(&caps)),
        ]);
        let block = BlockBuilder::new()
            .code_with_params(BLOCK, params, HashMap::new())
            .map_err(|e| TokenError::Build(format!("grant {}: {e}", self.id)))?;
        match (&self.tool, root) {
            (Some(tool), true) => {
                let params = HashMap::from([
                    ("name".to_string(), string(&tool.name)),
                    ("component".to_string(), string(&tool.component)),
                ]);
                block
                    .code_with_params(TOOL, params, HashMap::new())
                    .map_err(|e| TokenError::Build(format!("grant {}: {e}", self.id)))
            }
            // An attenuation keeps its root's tool; it has no say in it.
            _ => Ok(block),
        }
    }
}

/// Seconds since the Unix epoch, rounded down.
pub(crate) fn unix_secs(t: SystemTime) -> Result<u64, TokenError> {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| TokenError::Build("an expiry before 1970 cannot be written".into()))
}

/// Ids end up one per line in the revocation list, and in error messages.
fn check_id(field: &str, id: &str) -> Result<(), TokenError> {
    if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TokenError::Build(format!(
            "{field} {id:?} is not a grant id: it must be non-empty, without whitespace or control characters"
        )));
    }
    Ok(())
}

/// The record of every block of the serialized token `bytes`, in order.
///
/// Checks the shape of each block, not the links between them nor any
/// signature.
pub(crate) fn read(bytes: &[u8]) -> Result<Vec<GrantRecord>, TokenError> {
    let malformed = |m: String| TokenError::Malformed(m);
    let token = schema::Biscuit::decode(bytes)
        .map_err(|e| malformed(format!("not a biscuit token: {e}")))?;
    // Symbols accumulate from block to block, as biscuit reads them; a
    // third-party block would have a table of its own, but grant tokens
    // have none.
    let mut symbols = SymbolTable::new();
    let mut records = Vec::with_capacity(1 + token.blocks.len());
    for (index, signed) in std::iter::once(&token.authority)
        .chain(&token.blocks)
        .enumerate()
    {
        if signed.external_signature.is_some() {
            return Err(malformed(format!(
                "block {index} is a third-party block; grant tokens have none"
            )));
        }
        let block = schema::Block::decode(&signed.block[..])
            .map_err(|e| malformed(format!("block {index}: {e}")))?;
        SymbolTable::from(block.symbols.clone())
            .and_then(|own| symbols.extend(&own))
            .map_err(|e| malformed(format!("block {index}: symbols: {e}")))?;
        let mut record = record_of(index, &block, &symbols)?;
        if index > 0 {
            record.id = derived_id(&signed.signature);
            record.tool = records.first().and_then(|r: &GrantRecord| r.tool.clone());
        }
        records.push(record);
    }
    Ok(records)
}

/// A datalog term as a record uses them.
enum Value {
    Int(i64),
    Str(String),
    Date(u64),
    Null,
    Other,
}

fn record_of(
    index: usize,
    block: &schema::Block,
    symbols: &SymbolTable,
) -> Result<GrantRecord, TokenError> {
    let malformed = |m: String| TokenError::Malformed(format!("block {index}: {m}"));
    // Rules could derive grant facts that some other verifier trusts;
    // checks can only refuse, so an attenuator may add its own.
    if !block.rules.is_empty() {
        return Err(malformed(
            "holds datalog rules; a grant block holds its record's facts and checks only".into(),
        ));
    }
    let symbol = |i: u64| {
        symbols
            .get_symbol(i)
            .map(str::to_owned)
            .ok_or_else(|| malformed(format!("unknown symbol {i}")))
    };
    let mut grant = None;
    let mut caps = None;
    let mut tool = None;
    for fact in &block.facts {
        let name = symbol(fact.predicate.name)?;
        let terms = fact
            .predicate
            .terms
            .iter()
            .map(|t| {
                use schema::term::Content;
                Ok(match &t.content {
                    Some(Content::Integer(i)) => Value::Int(*i),
                    Some(Content::String(s)) => Value::Str(symbol(*s)?),
                    Some(Content::Date(d)) => Value::Date(*d),
                    Some(Content::Null(_)) => Value::Null,
                    _ => Value::Other,
                })
            })
            .collect::<Result<Vec<_>, TokenError>>()?;
        match (name.as_str(), terms.as_slice()) {
            ("grant", [Value::Int(depth), id, parent, Value::Date(exp), agent])
                if grant.is_none() =>
            {
                let id = match (id, index) {
                    (Value::Str(id), 0) => id.clone(),
                    (Value::Null, 1..) => String::new(),
                    (Value::Str(id), _) => {
                        return Err(malformed(format!(
                            "names its own grant id {id:?}; the id of an attenuation is \
                             derived from its block's signature, never written by its holder"
                        )));
                    }
                    _ => return Err(malformed("grant: bad id".into())),
                };
                grant = Some((
                    *depth,
                    id,
                    optional(parent).ok_or_else(|| malformed("grant: bad parent".into()))?,
                    *exp,
                    optional(agent).ok_or_else(|| malformed("grant: bad agent".into()))?,
                ));
            }
            ("caps", [Value::Int(depth), Value::Str(json)]) if caps.is_none() => {
                caps = Some((*depth, json.clone()));
            }
            ("tool", [Value::Str(name), Value::Str(component)]) if index == 0 && tool.is_none() => {
                tool = Some(ToolId {
                    name: name.clone(),
                    component: component.clone(),
                });
            }
            ("tool", _) if index > 0 => {
                return Err(malformed(
                    "names a tool; only the issued grant says which tool a token is for".into(),
                ));
            }
            _ => {
                return Err(malformed(format!(
                    "unexpected fact {name}/{}; a grant block holds one grant(depth, id, parent, \
                     expires, agent) and one caps(depth, json) fact (and block 0 one tool(name, \
                     component))",
                    terms.len()
                )));
            }
        }
    }
    let Some((depth, id, parent, expires, agent)) = grant else {
        return Err(malformed("holds no grant(...) fact".into()));
    };
    let Some((caps_depth, caps)) = caps else {
        return Err(malformed(format!("grant {id} has no caps(...) fact")));
    };
    if caps_depth != depth {
        return Err(malformed(format!(
            "grant {id} has depth {depth}, its caps depth {caps_depth}"
        )));
    }
    let depth =
        u32::try_from(depth).map_err(|_| malformed(format!("grant {id} has depth {depth}")))?;
    let caps = serde_json::from_str(&caps)
        .map_err(|e| malformed(format!("grant {id}: caps are not JSON: {e}")))?;
    let expires = UNIX_EPOCH
        .checked_add(Duration::from_secs(expires))
        .ok_or_else(|| malformed(format!("grant {id} expires at {expires}s, out of range")))?;
    Ok(GrantRecord {
        id,
        parent,
        depth,
        expires,
        agent,
        caps,
        tool,
    })
}

/// `null` or a string; `None` for anything else.
fn optional(v: &Value) -> Option<Option<String>> {
    match v {
        Value::Null => Some(None),
        Value::Str(s) => Some(Some(s.clone())),
        _ => None,
    }
}
