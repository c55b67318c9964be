//! `[[fs]]` as a [`Capability`]: resolved from the manifest (where each host directory is
//! chosen), narrowed to sub-directories by guest path, carried in tokens, and described.

use super::manifest::{
    Access, FsError, FsGrant, RawFsGrant, RootGrant, guest_paths_overlap, normalize_guest,
    resolve_grants,
};
use super::within;
use crate::WardenView;
use crate::capability::{Capability, ResolveCx, TaskSetup, WireError, list_args};
use crate::grant::{Capabilities, NarrowingReason, Widening, Wider};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use wasmtime::component::Linker;

/// Host directories a tool sees, each at a guest path, `read` or `read-write`. None means
/// no files.
#[derive(Debug, Clone, Copy)]
pub struct Fs;

/// The `[[fs]]` entries as a manifest declares them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredFs {
    /// Each grant as resolved at load, with the directory its host path named then: what
    /// a task's directories are opened from, whatever grant it runs under.
    pub roots: Vec<RootGrant>,
    /// Guest paths of the grants with `special = true`: FIFOs, sockets and devices at or
    /// below one may be opened, and its calls run off the task's thread. Kept by guest
    /// path, so that it holds for grants narrowed from them.
    pub special: Vec<String>,
    /// Guest paths of the grants with `approval = "required"`: a change at or below one
    /// asks an approver.
    pub approval: Vec<String>,
}

/// `fs=GUEST[:ACCESS]`: the guest path normalized; no access means the parent grant's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsNarrowing {
    guest: String,
    access: Option<Access>,
}

impl FsNarrowing {
    fn parse(value: &str) -> Result<FsNarrowing, NarrowingReason> {
        let (guest, access) = match value.rsplit_once(':') {
            // `fs=/data/a:b:` is how a path with a `:` and no access is written.
            Some((guest, "")) => (guest, None),
            Some((guest, access)) => (
                guest,
                Some(
                    access
                        .parse::<Access>()
                        .map_err(|_| NarrowingReason::invalid(format_args!(
                            "expected \"read\" or \"read-write\" after the last \":\", found {access:?} (a path with a \":\" is written PATH:read, PATH:read-write or PATH:)"
                        )))?,
                ),
            ),
            None => (value, None),
        };
        let guest = normalize_guest(guest).map_err(NarrowingReason::invalid)?;
        Ok(FsNarrowing { guest, access })
    }

    /// The child's grant at `index`: the sub-directory of the parent grant holding its
    /// guest path, by name.
    fn grant(&self, parent: &[FsGrant], index: usize) -> Result<FsGrant, Widening> {
        let found = parent
            .iter()
            .find_map(|p| Some((p, guest_below(&self.guest, &p.guest)?)));
        let Some((p, rel)) = found else {
            let child = match self.access {
                Some(access) => format!("{} {access}", self.guest),
                None => self.guest.clone(),
            };
            let parent = parent.iter().map(label);
            return Err(Wider::within_none(format_args!("fs[{index}]"), child, parent).into());
        };
        Ok(FsGrant {
            host: host_below(&p.host, rel),
            guest: self.guest.clone(),
            access: self.access.unwrap_or(p.access),
        })
    }
}

/// One directory in a grant's JSON form.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsWire {
    guest: String,
    host: String,
    access: Access,
}

impl Capability for Fs {
    const KEY: &'static str = "fs";
    type Section = Vec<RawFsGrant>;
    type Declared = DeclaredFs;
    type Grant = Vec<FsGrant>;
    /// `fs=GUEST[:ACCESS]` strings in order, no two overlapping; `fs=` alone asks for none.
    type Narrowing = Vec<FsNarrowing>;
    type Wire = Vec<FsWire>;
    type Error = FsError;

    /// # Ambient Authority
    ///
    /// Canonicalizes and stats each host directory by path ([`resolve_grants`]).
    fn resolve(section: &Self::Section, cx: &ResolveCx<'_>) -> Result<DeclaredFs, FsError> {
        let roots = resolve_grants(section, cx.base_dir, cx.ambient)?;
        // Each entry resolved to one of the same index, in order.
        let guests = |keep: fn(&RawFsGrant) -> bool| {
            (section.iter().zip(&roots))
                .filter(|(raw, _)| keep(raw))
                .map(|(_, root)| root.grant.guest.clone())
                .collect()
        };
        Ok(DeclaredFs {
            special: guests(RawFsGrant::special),
            approval: guests(|raw| raw.approval().is_required()),
            roots,
        })
    }

    fn ceiling(declared: &DeclaredFs) -> Self::Grant {
        declared.roots.iter().map(|r| r.grant.clone()).collect()
    }

    /// Each child grant's guest path is a parent grant's guest path or inside it, its host
    /// directory is the one the parent's grant maps that guest path to, and it writes only
    /// where the parent writes (`read` is within `read-write`).
    fn covers(parent: &Self::Grant, child: &Self::Grant) -> Result<(), Widening> {
        for (index, c) in child.iter().enumerate() {
            // A path that is not in normal form could hide a `..`; it is within nothing.
            let normal = normalize_guest(&c.guest).is_ok_and(|g| g == c.guest);
            let found = parent
                .iter()
                .find_map(|p| Some((p, guest_below(&c.guest, &p.guest)?)))
                .filter(|_| normal);
            let Some((p, rel)) = found else {
                let parent = parent.iter().map(label);
                return Err(
                    Wider::within_none(format_args!("fs[{index}]"), label(c), parent).into(),
                );
            };
            let expected = host_below(&p.host, rel);
            // Compared as strings, not as `Path`s, which would call `/a/./b` and `/a/b` equal.
            if c.host.as_os_str() != expected.as_os_str() {
                let reason = format!(
                    "{} maps to host {:?}, but the parent maps it to {:?}",
                    c.guest,
                    c.host.display().to_string(),
                    expected.display().to_string()
                );
                return Err(Wider::new(format_args!("fs[{index}]"), reason).into());
            }
            if c.access == Access::ReadWrite && p.access == Access::Read {
                let reason = format!(
                    "{} is wider than the parent's {}, which allows only read there",
                    label(c),
                    label(p)
                );
                return Err(Wider::new(format_args!("fs[{index}]"), reason).into());
            }
        }
        Ok(())
    }

    fn push_narrowing(
        narrowing: &mut Self::Narrowing,
        _key: &str,
        value: &str,
    ) -> Result<(), NarrowingReason> {
        if value.is_empty() {
            return Ok(());
        }
        let entry = FsNarrowing::parse(value)?;
        if let Some(earlier) =
            (narrowing.iter()).find(|f| guest_paths_overlap(&f.guest, &entry.guest))
        {
            return Err(NarrowingReason::invalid(format_args!(
                "{:?} overlaps the earlier fs={}: give each directory once",
                entry.guest, earlier.guest
            )));
        }
        narrowing.push(entry);
        Ok(())
    }

    fn narrowing_args(narrowing: &Self::Narrowing) -> Vec<String> {
        let values = narrowing.iter().map(|f| match f.access {
            Some(access) => format!("{}:{access}", f.guest),
            // A `:` in the path would otherwise read as an access.
            None if f.guest.contains(':') => format!("{}:", f.guest),
            None => f.guest.clone(),
        });
        list_args(Self::KEY, values)
    }

    fn narrow(parent: &Self::Grant, narrowing: &Self::Narrowing) -> Result<Self::Grant, Widening> {
        (narrowing.iter().enumerate())
            .map(|(index, entry)| entry.grant(parent, index))
            .collect()
    }

    fn to_wire(grant: &Self::Grant) -> Result<Self::Wire, WireError> {
        (grant.iter().enumerate())
            .map(|(i, g)| {
                let host = g.host.to_str().ok_or_else(|| {
                    WireError::new(
                        format_args!("fs[{i}].host"),
                        format_args!(
                            "{:?} is not UTF-8, which the JSON form cannot carry",
                            g.host
                        ),
                    )
                })?;
                Ok(FsWire {
                    guest: g.guest.clone(),
                    host: host.to_owned(),
                    access: g.access,
                })
            })
            .collect()
    }

    fn from_wire(wire: Self::Wire) -> Result<Self::Grant, WireError> {
        let mut grants: Vec<FsGrant> = Vec::with_capacity(wire.len());
        for (i, entry) in wire.into_iter().enumerate() {
            let field = |name: &str| format!("fs[{i}].{name}");
            let guest =
                normalize_guest(&entry.guest).map_err(|e| WireError::new(field("guest"), e))?;
            if guest != entry.guest {
                return Err(WireError::new(
                    field("guest"),
                    format_args!(
                        "{:?} is not in normal form, expected {guest:?}",
                        entry.guest
                    ),
                ));
            }
            if let Some((j, other)) =
                (grants.iter().enumerate()).find(|(_, g)| guest_paths_overlap(&g.guest, &guest))
            {
                return Err(WireError::new(
                    field("guest"),
                    format_args!("{guest:?} overlaps fs[{j}].guest {:?}", other.guest),
                ));
            }
            let host = PathBuf::from(&entry.host);
            if !is_normal_absolute(&host, &entry.host) {
                return Err(WireError::new(
                    field("host"),
                    format_args!(
                        "{:?} is not an absolute path in normal form (no \".\", \"..\", empty or trailing components)",
                        entry.host
                    ),
                ));
            }
            grants.push(FsGrant {
                host,
                guest,
                access: entry.access,
            });
        }
        Ok(grants)
    }

    /// `GUEST ACCESS`, and ` special` where FIFOs, sockets and devices may be opened.
    fn configure(_grant: &Self::Grant, _setup: &mut TaskSetup<'_>) {
        // The directories were opened before (`TaskSetup::new`): opening them can refuse
        // the task, which configuring cannot.
    }

    fn add_to_linker<T: WardenView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
        super::add_to_linker(linker)
    }

    fn summary(declared: &DeclaredFs, grant: &Self::Grant) -> Option<serde_json::Value> {
        Some(
            (grant.iter())
                .map(|g| {
                    let special = declared.special.iter().any(|s| within(&g.guest, s));
                    let special = if special { " special" } else { "" };
                    format!("{} {}{special}", g.guest, g.access)
                })
                .collect(),
        )
    }

    fn describe(declared: &DeclaredFs, out: &mut dyn fmt::Write) -> fmt::Result {
        if declared.roots.is_empty() {
            return writeln!(out, "fs: none");
        }
        writeln!(out, "fs:")?;
        for RootGrant { grant, .. } in &declared.roots {
            let asks = if declared.approval.contains(&grant.guest) {
                ", each change asks an approver"
            } else {
                ""
            };
            let special = if declared.special.contains(&grant.guest) {
                ", FIFOs, sockets and devices may be opened"
            } else {
                ""
            };
            writeln!(
                out,
                "  guest {} = host {} ({}{asks}{special})",
                grant.guest,
                grant.host.display(),
                grant.access
            )?;
        }
        Ok(())
    }

    fn denied(_declared: &DeclaredFs) -> Option<&'static str> {
        Some("no other files")
    }

    fn ungranted(declared: &DeclaredFs, import: &str) -> Option<String> {
        let files = matches!(import, "wasi:filesystem/preopens" | "wasi:filesystem/types");
        (files && declared.roots.is_empty())
            .then(|| "no [[fs]] grant: the tool sees no directories".into())
    }
}

/// What of `guest` lies below the directory `parent` (both normalized guest paths): `""`
/// when they are the same, `src/lib` for `/workspace/src/lib` under `/workspace`, `None`
/// when `guest` is not inside `parent` (`/workspace2` is not inside `/workspace`).
fn guest_below<'a>(guest: &'a str, parent: &str) -> Option<&'a str> {
    if guest == parent {
        Some("")
    } else {
        guest.strip_prefix(parent)?.strip_prefix('/')
    }
}

/// The host directory a parent grant rooted at `host` gives the guest path `rel` below its
/// own.
fn host_below(host: &Path, rel: &str) -> PathBuf {
    if rel.is_empty() {
        host.to_path_buf()
    } else {
        host.join(rel)
    }
}

/// `/workspace read`: how a directory grant is named in a [`Widening`].
fn label(grant: &FsGrant) -> String {
    format!("{} {}", grant.guest, grant.access)
}

/// Whether `path` (written `text`) is absolute with only plain names after the root, and
/// written the one way its components rebuild: a canonical directory as a manifest grant
/// holds it, or a sub-directory of one by name.
fn is_normal_absolute(path: &Path, text: &str) -> bool {
    let mut components = path.components();
    components.next() == Some(Component::RootDir)
        && components.all(|c| matches!(c, Component::Normal(_)))
        && path.components().collect::<PathBuf>().as_os_str() == text
}

impl Capabilities {
    /// The directory grants, each a preopen.
    ///
    /// In a derived set, a grant's `host` is the sub-directory of the parent's grant that
    /// its guest path names, joined by path only. Open it through the parent's directory
    /// capability, never by its host path with ambient authority: a symlink inside the
    /// parent's directory must not lead out of it. [`crate::fs::dirs::open`] does so,
    /// one component at a time without following symlinks.
    pub fn fs(&self) -> &[FsGrant] {
        &self.fs
    }
}
