//! WIT types as people read them, and which of them cross as JSON.
//!
//! wasmtime's [`Type`] carries no names for records, variants, enums or flags (only their
//! fields and cases), so messages spell the structure out instead, shortened past a depth so
//! that an error about a deeply nested value stays one readable line.

use wasmtime::component::Type;

/// How deep [`wit`] spells out nested types before it writes only their kind.
const DEPTH: usize = 3;

/// The WIT spelling of `ty`, e.g. `list<string>` or `record { name: string, age: u8 }`.
pub fn wit(ty: &Type) -> String {
    spell(ty, DEPTH)
}

fn spell(ty: &Type, depth: usize) -> String {
    let inner = |t: &Type| spell(t, depth.saturating_sub(1));
    let short = depth == 0;
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(_) | Type::Record(_) | Type::Tuple(_) | Type::Variant(_) if short => {
            kind(ty).into()
        }
        Type::Enum(_) | Type::Flags(_) | Type::Option(_) | Type::Result(_) if short => {
            kind(ty).into()
        }
        Type::List(l) => format!("list<{}>", inner(&l.ty())),
        Type::Record(r) => {
            let fields: Vec<String> = r
                .fields()
                .map(|f| format!("{}: {}", f.name, inner(&f.ty)))
                .collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        Type::Tuple(t) => {
            let types: Vec<String> = t.types().map(|t| inner(&t)).collect();
            format!("tuple<{}>", types.join(", "))
        }
        Type::Variant(v) => {
            let cases: Vec<String> = v
                .cases()
                .map(|c| match &c.ty {
                    Some(t) => format!("{}({})", c.name, inner(t)),
                    None => c.name.to_string(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Flags(f) => format!("flags {{ {} }}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", inner(&o.ty())),
        Type::Result(r) => {
            let part = |t: Option<Type>| t.map_or_else(|| "_".to_string(), |t| inner(&t));
            match (r.ok(), r.err()) {
                (None, None) => "result".into(),
                (ok, err) => format!("result<{}, {}>", part(ok), part(err)),
            }
        }
        other => kind(other).into(),
    }
}

/// The kind of `ty` in one word, as WIT writes it.
pub fn kind(ty: &Type) -> &'static str {
    match ty {
        Type::List(_) => "list",
        Type::Map(_) => "map",
        Type::FixedLengthList(_) => "fixed-length list",
        Type::Record(_) => "record",
        Type::Tuple(_) => "tuple",
        Type::Variant(_) => "variant",
        Type::Enum(_) => "enum",
        Type::Option(_) => "option",
        Type::Result(_) => "result",
        Type::Flags(_) => "flags",
        Type::Own(_) => "own<resource>",
        Type::Borrow(_) => "borrow<resource>",
        Type::Future(_) => "future",
        Type::Stream(_) => "stream",
        Type::ErrorContext => "error-context",
        _ => "scalar",
    }
}

/// Why a value of `ty` cannot be written as JSON, if it cannot: resources are handles into
/// a store that no JSON document can name, futures and streams need the component model's
/// async support, which Warden's engine leaves off, and maps and fixed-length lists are
/// still proposals behind wasmtime features Warden does not enable.
pub fn unsupported(ty: &Type) -> Option<String> {
    let nested = |t: &Type| unsupported(t);
    match ty {
        Type::Own(_) | Type::Borrow(_) => {
            Some("it passes a resource handle, which JSON cannot name".into())
        }
        Type::Future(_) | Type::Stream(_) | Type::ErrorContext => Some(format!(
            "it passes a {}, which needs component-model async support",
            kind(ty)
        )),
        Type::Map(_) | Type::FixedLengthList(_) => Some(format!(
            "it passes a {}, which Warden does not support",
            kind(ty)
        )),
        Type::List(l) => nested(&l.ty()),
        Type::Option(o) => nested(&o.ty()),
        Type::Record(r) => r.fields().find_map(|f| nested(&f.ty)),
        Type::Tuple(t) => t.types().find_map(|t| nested(&t)),
        Type::Variant(v) => v.cases().find_map(|c| c.ty.as_ref().and_then(nested)),
        Type::Result(r) => r.ok().iter().chain(r.err().iter()).find_map(nested),
        _ => None,
    }
}

/// The inclusive range of an integer type, or `None` for any other type.
pub fn int_range(ty: &Type) -> Option<(i128, i128)> {
    Some(match ty {
        Type::S8 => (i8::MIN.into(), i8::MAX.into()),
        Type::U8 => (0, u8::MAX.into()),
        Type::S16 => (i16::MIN.into(), i16::MAX.into()),
        Type::U16 => (0, u16::MAX.into()),
        Type::S32 => (i32::MIN.into(), i32::MAX.into()),
        Type::U32 => (0, u32::MAX.into()),
        Type::S64 => (i64::MIN.into(), i64::MAX.into()),
        Type::U64 => (0, u64::MAX.into()),
        _ => return None,
    })
}

/// Whether `ty` is `list<u8>`, which crosses as a base64 string rather than an array of
/// numbers four times its size.
pub fn is_bytes(ty: &Type) -> bool {
    matches!(ty, Type::List(l) if l.ty() == Type::U8)
}
