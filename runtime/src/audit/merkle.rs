//! The Merkle tree that makes the audit log tamper-evident (RFC 9162 §2.1).
//!
//! Every line of the log is a leaf, in order: record `seq` is leaf index
//! `seq`. A checkpoint signs the tree's size and root; with the two proofs
//! below an auditor can then check a single record, or that a later log
//! still begins with everything an earlier checkpoint covered, without
//! trusting the host that wrote it.
//!
//! # Hashes
//!
//! Leaves and inner nodes are hashed with different one-byte prefixes, so a
//! leaf can never be passed off as a node (RFC 9162 §2.1.1):
//!
//! ```text
//! leaf hash   = H(0x00 ‖ leaf bytes)          leaf_hash::<H>(line)
//! node hash   = H(0x01 ‖ left ‖ right)        node_hash::<H>(left, right)
//! empty tree  = H("")                         empty_root::<H>()
//! ```
//!
//! `H` is a [`Hasher`]: [`Blake3`] for the log, [`Sha256`] for the reference
//! vectors of RFC 6962 implementations and for logs an auditor may get from
//! elsewhere.
//!
//! # Shape
//!
//! A tree of `n > 1` leaves is split at `k`, the largest power of two
//! smaller than `n`: the root is the node hash of the tree over the first `k`
//! leaves and the tree over the other `n - k`. The left part is always a full
//! binary tree, so a tree is a row of full subtrees, one per bit of `n`,
//! largest first, joined from the right. Seven leaves:
//!
//! ```text
//!                 root
//!            /            \
//!        n(0..4)          n(4..7)
//!        /     \          /     \
//!    n(0..2) n(2..4)  n(4..6)    l6
//!     /  \    /  \     /  \
//!    l0  l1  l2  l3   l4  l5
//! ```
//!
//! Appending a leaf never changes a full subtree; it only grows the ragged
//! right edge. That is why a tree of size `m` is a prefix of every later
//! tree, and why a consistency proof from `m` to `n` exists.
//!
//! # Proofs
//!
//! An inclusion proof for leaf `i` in a tree of size `n` lists the sibling
//! hashes on the path from the leaf to the root, lowest first (RFC 9162
//! §2.1.3). A consistency proof from size `m` to size `n` lists the hashes
//! needed to compute both roots from a common set (§2.1.4). Both are
//! about `log2 n` hashes long. [`verify_inclusion`] and
//! [`verify_consistency`] check them with the RFC's algorithms and need
//! nothing but the proof, the sizes and the roots; they take hashes as
//! bytes, as an auditor reads them from a file, and check every length.
//!
//! Two edge cases are decided here, the way the transparency-dev/merkle test
//! vectors decide them:
//!
//! - `size1 == size2`: the proof must be empty and the two roots equal. Two
//!   different roots for one size are [`ProofError::RootsDiffer`], which for
//!   two signed checkpoints means the log forked.
//! - `size1 == 0`: rejected with [`ProofError::EmptyFirstTree`]. Every tree
//!   extends the empty one, so there is nothing to prove and a caller that
//!   starts from an empty checkpoint skips the check.
//!
//! # What a proof does not prove
//!
//! A proof ties a leaf hash, or an earlier root, to a root, not to a size.
//! The verifier takes the shape of the path from the sizes it is given, and
//! a proof hash does not show whether it covers one leaf or many, so a proof
//! can fit a root under a size that root does not have: the consistency
//! proof from size 1 to 4 also checks out "from 1 to 3" against the root of
//! size 4. Take each size and its root together from one checkpoint whose
//! signature was checked first.
//!
//! # Storage
//!
//! [`MerkleTree`] keeps, for every level, the hashes of the full subtrees
//! that exist so far: the leaf hashes, then each completed pair, and so on,
//! at most `2n - 1` hashes in all. Appending is O(1) amortized (one new node
//! per completed pair); [`MerkleTree::root`] and [`MerkleTree::root_at`]
//! join at most one full subtree per bit of the size, so they cost O(log n)
//! hashes; proofs cost O(log² n). It is for tests and small trees.
//!
//! The audit log's writer and verifier hold only a [`Frontier`], the tree's
//! right edge: one hash per bit of the size, all that appending and the
//! current root need. A proof is made from the log itself: its hashes are
//! those of a few disjoint subtrees ([`inclusion_ranges`],
//! [`consistency_ranges`]), which [`Subtrees`] computes in one pass over the
//! leaves with one right edge each. Memory stays O(log² n) whatever the
//! log's length.
//!
//! # Example
//!
//! ```
//! use warden::audit::merkle::{
//!     Blake3, MerkleTree, ProofError, leaf_hash, verify_consistency, verify_inclusion,
//! };
//!
//! let lines: [&[u8]; 3] = [b"{\"seq\":0}", b"{\"seq\":1}", b"{\"seq\":2}"];
//! let mut tree = MerkleTree::<Blake3>::new();
//! for line in lines {
//!     tree.push(line);
//! }
//! let old_root = tree.root_at(2)?; // from an earlier checkpoint
//! let root = tree.root(); // from the latest checkpoint
//!
//! // Line 1 is in the tree of size 3.
//! let proof = tree.inclusion_proof(1, 3)?;
//! verify_inclusion::<Blake3>(&leaf_hash::<Blake3>(lines[1]), 1, 3, &proof, &root)?;
//!
//! // The tree of size 3 begins with the tree of size 2.
//! let proof = tree.consistency_proof(2, 3)?;
//! verify_consistency::<Blake3>(2, 3, &old_root, &root, &proof)?;
//!
//! // A changed line is caught.
//! let proof = tree.inclusion_proof(1, 3)?;
//! let forged = leaf_hash::<Blake3>(b"{\"seq\":1,\"decision\":\"allow\"}");
//! assert!(matches!(
//!     verify_inclusion::<Blake3>(&forged, 1, 3, &proof, &root),
//!     Err(ProofError::RootMismatch { .. })
//! ));
//! # Ok::<(), ProofError>(())
//! ```

use std::fmt;
use warden_host_api::hex::encode as hex;

/// A hash function for the tree: hashes a concatenation of byte strings
/// into a fixed-size value.
///
/// The prefixes that separate leaves from nodes are added by
/// [`leaf_hash`] and [`node_hash`], not by implementations.
pub trait Hasher {
    /// Lowercase name for messages and `name:<hex>` strings, e.g. `"blake3"`.
    const NAME: &'static str;
    /// Length of a hash in bytes.
    const SIZE: usize;
    /// A hash: exactly [`SIZE`](Self::SIZE) bytes. Converting a byte slice of
    /// another length must fail.
    type Output: AsRef<[u8]> + Copy + Eq + fmt::Debug + Send + Sync + for<'a> TryFrom<&'a [u8]>;

    /// Hashes the concatenation of `parts`.
    fn hash(parts: &[&[u8]]) -> Self::Output;
}

/// BLAKE3 with 32-byte output: the hasher of Warden's audit log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Blake3;

impl Hasher for Blake3 {
    const NAME: &'static str = "blake3";
    const SIZE: usize = 32;
    type Output = [u8; 32];

    fn hash(parts: &[&[u8]]) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        for part in parts {
            hasher.update(part);
        }
        *hasher.finalize().as_bytes()
    }
}

/// SHA-256: the hasher of RFC 6962 / RFC 9162 logs and their test vectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Sha256;

impl Hasher for Sha256 {
    const NAME: &'static str = "sha256";
    const SIZE: usize = 32;
    type Output = [u8; 32];

    fn hash(parts: &[&[u8]]) -> [u8; 32] {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        hasher.finalize().into()
    }
}

/// The hash of a leaf: `H(0x00 ‖ bytes)`. For the audit log, `bytes` is a
/// record's exact line.
pub fn leaf_hash<H: Hasher>(bytes: &[u8]) -> H::Output {
    H::hash(&[&[0x00], bytes])
}

/// The hash of an inner node: `H(0x01 ‖ left ‖ right)`.
pub fn node_hash<H: Hasher>(left: &H::Output, right: &H::Output) -> H::Output {
    H::hash(&[&[0x01], left.as_ref(), right.as_ref()])
}

/// The root of the tree with no leaves: `H("")`.
pub fn empty_root<H: Hasher>() -> H::Output {
    H::hash(&[])
}

/// Why a proof could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The tree size it was asked in.
        size: u64,
    },
    /// A [`MerkleTree`] was asked about a size larger than it is.
    #[error("size {size} is beyond the tree, which has {len} leaves")]
    SizeBeyondTree {
        /// The size asked for.
        size: u64,
        /// The number of leaves in the tree.
        len: u64,
    },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error("size1 {size1} is larger than size2 {size2}")]
    SizesOutOfOrder {
        /// The earlier size.
        size1: u64,
        /// The later size.
        size2: u64,
    },
    /// A consistency proof was asked from the empty tree, which every tree
    /// extends: there is nothing to prove, so callers skip the check.
    #[error(
        "size1 is 0: every tree extends the empty tree, there is no consistency proof to size {size2}"
    )]
    EmptyFirstTree {
        /// The later size.
        size2: u64,
    },
    /// An inclusion proof has the wrong number of hashes for its index and
    /// tree size: it was truncated, padded or made for another position.
    #[error("proof has {len} hashes, a tree of size {size} needs {want} for index {index}")]
    InclusionProofLength {
        /// Hashes in the proof.
        len: usize,
        /// Hashes a proof for `index` in `size` has.
        want: usize,
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof has the wrong number of hashes for its two sizes.
    #[error(
        "proof has {len} hashes, a consistency proof from size {size1} to {size2} needs {want}"
    )]
    ConsistencyProofLength {
        /// Hashes in the proof.
        len: usize,
        /// Hashes a proof between the two sizes has.
        want: usize,
        /// The earlier size.
        size1: u64,
        /// The later size.
        size2: u64,
    },
    /// A leaf hash, root or proof hash is not a hash of this hasher: it has
    /// the wrong length.
    #[error("{what} has {len} bytes, a {hasher} hash has {want}")]
    HashLength {
        /// Which input: `leaf hash`, `root`, `root1`, `root2` or `proof[i]`.
        what: String,
        /// Its length.
        len: usize,
        /// The hasher's length.
        want: usize,
        /// The hasher's name.
        hasher: &'static str,
    },
    /// The root computed from the proof is not the root given: the leaf,
    /// the proof, the index, a size or the root is wrong.
    #[error("computed root {} does not match {} at size {size}", hex(.computed), hex(.expected))]
    RootMismatch {
        /// The tree size whose root was computed.
        size: u64,
        /// The root computed from the proof.
        computed: Vec<u8>,
        /// The root given.
        expected: Vec<u8>,
    },
    /// Two roots given for the same tree size differ. For two signed
    /// checkpoints this means the log was forked or rewritten.
    #[error("two roots for size {size} differ: {} and {}", hex(.root1), hex(.root2))]
    RootsDiffer {
        /// The tree size of both roots.
        size: u64,
        /// The first root.
        root1: Vec<u8>,
        /// The second root.
        root2: Vec<u8>,
    },
}

/// An append-only Merkle tree that keeps every leaf hash, and every full
/// subtree hash so that roots and proofs for any earlier size are cheap.
///
/// The tree holds hashes only; the leaves themselves (the log's lines) live
/// in the log. Sizes and indices are `u64` like the log's `seq`.
pub struct MerkleTree<H: Hasher = Blake3> {
    /// `levels[k][i]` is the hash of the full subtree of `2^k` leaves that
    /// starts at leaf `i * 2^k`; `levels[0]` are the leaf hashes. Always at
    /// least one level.
    levels: Vec<Vec<H::Output>>,
}

impl<H: Hasher> MerkleTree<H> {
    /// An empty tree.
    pub fn new() -> Self {
        MerkleTree {
            levels: vec![Vec::new()],
        }
    }

    /// The number of leaves.
    pub fn len(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.levels[0].is_empty()
    }

    /// Appends a leaf, hashing it with [`leaf_hash`], and returns its index.
    pub fn push(&mut self, leaf: &[u8]) -> u64 {
        self.push_hash(leaf_hash::<H>(leaf))
    }

    /// Appends a leaf by its hash (as made by [`leaf_hash`]) and returns its
    /// index.
    pub fn push_hash(&mut self, hash: H::Output) -> u64 {
        let index = self.levels[0].len();
        self.levels[0].push(hash);
        // Every odd position completes a pair whose parent is the next
        // entry of the level above.
        let (mut level, mut i) = (0, index);
        while i % 2 == 1 {
            let parent = node_hash::<H>(&self.levels[level][i - 1], &self.levels[level][i]);
            level += 1;
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(parent);
            i /= 2;
        }
        index as u64
    }

    /// The root of the whole tree; [`empty_root`] when it has no leaves.
    pub fn root(&self) -> H::Output {
        self.subtree(0, self.len())
    }

    /// The root of the tree of the first `size` leaves, as it was when the
    /// tree had `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<H::Output, ProofError> {
        self.check_size(size)?;
        Ok(self.subtree(0, size))
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size`
    /// leaves (RFC 9162 §2.1.3.1): sibling hashes from the leaf up.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<H::Output>, ProofError> {
        self.check_size(size)?;
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        Ok(inclusion_ranges(index, size)
            .into_iter()
            .map(|r| self.subtree(r.start, r.len))
            .collect())
    }

    /// The consistency proof from the tree of the first `size1` leaves to
    /// the tree of the first `size2` (RFC 9162 §2.1.4.1). Empty when the
    /// sizes are equal; an error when `size1` is 0 (see the module docs).
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<H::Output>, ProofError> {
        self.check_size(size2)?;
        check_sizes(size1, size2)?;
        if size1 == size2 {
            return Ok(Vec::new());
        }
        Ok(consistency_ranges(size1, size2)
            .into_iter()
            .map(|r| self.subtree(r.start, r.len))
            .collect())
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        let len = self.len();
        if size > len {
            return Err(ProofError::SizeBeyondTree { size, len });
        }
        Ok(())
    }

    /// The hash of the tree over the `n` leaves from `start`, where `start`
    /// is a multiple of the largest power of two not above `n` (true of
    /// every subtree the RFC's recursion visits). The full subtrees of the
    /// binary decomposition of `n` are joined from the right.
    fn subtree(&self, start: u64, n: u64) -> H::Output {
        let mut end = start + n;
        let mut rest = n;
        let mut acc: Option<H::Output> = None;
        while rest > 0 {
            let level = rest.trailing_zeros() as usize;
            let first = end - (1 << level);
            let node = self.levels[level][(first >> level) as usize];
            acc = Some(match acc {
                None => node,
                Some(right) => node_hash::<H>(&node, &right),
            });
            end = first;
            rest &= rest - 1;
        }
        acc.unwrap_or_else(empty_root::<H>)
    }
}

impl<H: Hasher> Default for MerkleTree<H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H: Hasher> Clone for MerkleTree<H> {
    fn clone(&self) -> Self {
        MerkleTree {
            levels: self.levels.clone(),
        }
    }
}

impl<H: Hasher> fmt::Debug for MerkleTree<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerkleTree")
            .field("hasher", &H::NAME)
            .field("len", &self.len())
            .field("root", &hex(self.root().as_ref()))
            .finish()
    }
}

/// Verifies that the leaf with hash `leaf_hash` is leaf `index` of the tree
/// of `size` leaves whose root is `root`, by RFC 9162 §2.1.3.2.
///
/// The proof does not bind `size` to `root`: take both from one checkpoint.
///
/// # Errors
///
/// [`ProofError::IndexOutOfRange`] unless `index < size`;
/// [`ProofError::HashLength`] for a hash of the wrong length;
/// [`ProofError::InclusionProofLength`] for too few or too many hashes;
/// [`ProofError::RootMismatch`] when the computed root is not `root`.
pub fn verify_inclusion<H: Hasher>(
    leaf_hash: &[u8],
    index: u64,
    size: u64,
    proof: &[impl AsRef<[u8]>],
    root: &[u8],
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let want = inclusion_proof_len(index, size);
    let length_error = || ProofError::InclusionProofLength {
        len: proof.len(),
        want,
        index,
        size,
    };
    if proof.len() != want {
        return Err(length_error());
    }
    let leaf = to_hash::<H>(leaf_hash, || "leaf hash".into())?;
    let root = to_hash::<H>(root, || "root".into())?;
    let proof = to_hashes::<H>(proof)?;

    // RFC 9162 §2.1.3.2, steps 2 to 5. With the length checked above, `sn`
    // reaches 0 exactly at the end of the proof.
    let (mut fnn, mut sn) = (index, size - 1);
    let mut r = leaf;
    for p in &proof {
        if sn == 0 {
            return Err(length_error());
        }
        if fnn & 1 == 1 || fnn == sn {
            r = node_hash::<H>(p, &r);
            while fnn & 1 == 0 && fnn != 0 {
                fnn >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash::<H>(&r, p);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(length_error());
    }
    check_root::<H>(size, &r, &root)
}

/// Verifies that the tree of `size2` leaves with root `root2` begins with
/// the tree of `size1` leaves with root `root1`, by RFC 9162 §2.1.4.2.
///
/// When `size1 == size2` the proof must be empty and the roots equal byte
/// for byte (whatever their length: equal roots are consistent).
///
/// The proof does not bind the sizes to the roots: take each size and its
/// root from one checkpoint.
///
/// # Errors
///
/// [`ProofError::SizesOutOfOrder`] when `size1 > size2`;
/// [`ProofError::EmptyFirstTree`] when `size1` is 0;
/// [`ProofError::RootsDiffer`] when the sizes are equal and the roots not;
/// [`ProofError::HashLength`] for a hash of the wrong length;
/// [`ProofError::ConsistencyProofLength`] for too few or too many hashes;
/// [`ProofError::RootMismatch`] when a computed root is not the one given.
pub fn verify_consistency<H: Hasher>(
    size1: u64,
    size2: u64,
    root1: &[u8],
    root2: &[u8],
    proof: &[impl AsRef<[u8]>],
) -> Result<(), ProofError> {
    check_sizes(size1, size2)?;
    let want = if size1 == size2 {
        0
    } else {
        consistency_proof_len(size1, size2)
    };
    let length_error = || ProofError::ConsistencyProofLength {
        len: proof.len(),
        want,
        size1,
        size2,
    };
    if proof.len() != want {
        return Err(length_error());
    }
    if size1 == size2 {
        if root1 != root2 {
            return Err(ProofError::RootsDiffer {
                size: size1,
                root1: root1.to_vec(),
                root2: root2.to_vec(),
            });
        }
        return Ok(());
    }
    let root1 = to_hash::<H>(root1, || "root1".into())?;
    let root2 = to_hash::<H>(root2, || "root2".into())?;
    let proof = to_hashes::<H>(proof)?;

    // RFC 9162 §2.1.4.2. Step 1 (an empty proof fails) is covered by the
    // length check: for 0 < size1 < size2 a proof is never empty.
    // Step 2: if size1 is a power of two, the proof starts with root1.
    let seed = size1.is_power_of_two().then_some(root1);
    let mut path = seed.into_iter().chain(proof.iter().copied());
    // Step 3.
    let (mut fnn, mut sn) = (size1 - 1, size2 - 1);
    // Step 4.
    while fnn & 1 == 1 {
        fnn >>= 1;
        sn >>= 1;
    }
    // Step 5.
    let first = path.next().ok_or_else(length_error)?;
    let (mut fr, mut sr) = (first, first);
    // Step 6.
    for c in path {
        if sn == 0 {
            return Err(length_error());
        }
        if fnn & 1 == 1 || fnn == sn {
            fr = node_hash::<H>(&c, &fr);
            sr = node_hash::<H>(&c, &sr);
            while fnn & 1 == 0 && fnn != 0 {
                fnn >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash::<H>(&sr, &c);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(length_error());
    }
    check_root::<H>(size1, &fr, &root1)?;
    check_root::<H>(size2, &sr, &root2)
}

/// The checks on a pair of sizes that the tree and the verifier share.
fn check_sizes(size1: u64, size2: u64) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::SizesOutOfOrder { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::EmptyFirstTree { size2 });
    }
    Ok(())
}

fn check_root<H: Hasher>(
    size: u64,
    computed: &H::Output,
    expected: &H::Output,
) -> Result<(), ProofError> {
    if computed != expected {
        return Err(ProofError::RootMismatch {
            size,
            computed: computed.as_ref().to_vec(),
            expected: expected.as_ref().to_vec(),
        });
    }
    Ok(())
}

fn to_hash<H: Hasher>(
    bytes: &[u8],
    what: impl FnOnce() -> String,
) -> Result<H::Output, ProofError> {
    let error = |what: String| ProofError::HashLength {
        what,
        len: bytes.len(),
        want: H::SIZE,
        hasher: H::NAME,
    };
    if bytes.len() != H::SIZE {
        return Err(error(what()));
    }
    H::Output::try_from(bytes).map_err(|_| error(what()))
}

fn to_hashes<H: Hasher>(proof: &[impl AsRef<[u8]>]) -> Result<Vec<H::Output>, ProofError> {
    proof
        .iter()
        .enumerate()
        .map(|(i, h)| to_hash::<H>(h.as_ref(), || format!("proof[{i}]")))
        .collect()
}

/// The leaves `start..start + len` whose subtree hash is one hash of a
/// proof. Every range the RFC's recursion names starts at a multiple of the
/// largest power of two not above its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The first leaf.
    pub start: u64,
    /// The number of leaves.
    pub len: u64,
}

impl Range {
    fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// The subtrees whose hashes make the inclusion proof of leaf `index` in a
/// tree of `size` leaves, in proof order, for `index < size`. They are
/// disjoint, so one pass over the leaves computes them all ([`Subtrees`]).
pub fn inclusion_ranges(index: u64, size: u64) -> Vec<Range> {
    let mut out = Vec::with_capacity(inclusion_proof_len(index, size));
    path(index, 0, size, &mut out);
    out
}

/// The subtrees whose hashes make the consistency proof from `size1` to
/// `size2` leaves, in proof order, for `0 < size1 < size2`. Disjoint, as
/// [`inclusion_ranges`] are.
pub fn consistency_ranges(size1: u64, size2: u64) -> Vec<Range> {
    let mut out = Vec::with_capacity(consistency_proof_len(size1, size2));
    subproof(size1, 0, size2, true, &mut out);
    out
}

/// RFC 9162 `PATH(m, D[start..start + n])`, appended to `out` as ranges.
fn path(m: u64, start: u64, n: u64, out: &mut Vec<Range>) {
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, start, k, out);
        out.push(Range {
            start: start + k,
            len: n - k,
        });
    } else {
        path(m - k, start + k, n - k, out);
        out.push(Range { start, len: k });
    }
}

/// RFC 9162 `SUBPROOF(m, D[start..start + n], whole)`, appended to `out`
/// as ranges, for `0 < m <= n`.
fn subproof(m: u64, start: u64, n: u64, whole: bool, out: &mut Vec<Range>) {
    if m == n {
        if !whole {
            out.push(Range { start, len: n });
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, start, k, whole, out);
        out.push(Range {
            start: start + k,
            len: n - k,
        });
    } else {
        subproof(m - k, start + k, n - k, false, out);
        out.push(Range { start, len: k });
    }
}

/// The right edge of a tree: the hashes of its full subtrees, one per bit
/// of its size, largest first. That is all appending and the root need, so
/// a writer that never makes proofs keeps O(log n) hashes, however long
/// the log grows.
pub struct Frontier<H: Hasher = Blake3> {
    size: u64,
    nodes: Vec<H::Output>,
}

impl<H: Hasher> Frontier<H> {
    /// The edge of the empty tree.
    pub fn new() -> Self {
        Frontier {
            size: 0,
            nodes: Vec::new(),
        }
    }

    /// The number of leaves pushed.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether no leaf was pushed.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Appends a leaf by its hash (as made by [`leaf_hash`]) and returns its
    /// index.
    pub fn push_hash(&mut self, hash: H::Output) -> u64 {
        // Like a binary counter: each trailing one bit of the size is a full
        // subtree that the new leaf's subtree now pairs with.
        let mut node = hash;
        let mut carry = self.size;
        while carry & 1 == 1 {
            let left = self.nodes.pop().expect("one node per set bit of the size");
            node = node_hash::<H>(&left, &node);
            carry >>= 1;
        }
        self.nodes.push(node);
        self.size += 1;
        self.size - 1
    }

    /// The edge of a tree of `size` leaves from its full subtrees' hashes,
    /// largest first, as [`Frontier::nodes`] gives them; `None` unless there
    /// is one per bit of `size`.
    pub fn from_parts(size: u64, nodes: Vec<H::Output>) -> Option<Self> {
        (nodes.len() == size.count_ones() as usize).then_some(Frontier { size, nodes })
    }

    /// The hashes of the tree's full subtrees, largest first: one per bit
    /// of its size.
    pub fn nodes(&self) -> &[H::Output] {
        &self.nodes
    }

    /// The root of the tree so far; [`empty_root`] when it has no leaves.
    pub fn root(&self) -> H::Output {
        let mut nodes = self.nodes.iter().rev();
        let Some(&last) = nodes.next() else {
            return empty_root::<H>();
        };
        nodes.fold(last, |right, left| node_hash::<H>(left, &right))
    }
}

impl<H: Hasher> Default for Frontier<H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H: Hasher> Clone for Frontier<H> {
    fn clone(&self) -> Self {
        Frontier {
            size: self.size,
            nodes: self.nodes.clone(),
        }
    }
}

impl<H: Hasher> fmt::Debug for Frontier<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frontier")
            .field("hasher", &H::NAME)
            .field("len", &self.size)
            .field("root", &hex(self.root().as_ref()))
            .finish()
    }
}

/// The hashes of a few disjoint subtrees, computed in one pass over the
/// leaves: how a proof is made from a log on disk without holding its tree.
/// Memory is one [`Frontier`] per range.
pub struct Subtrees<H: Hasher = Blake3> {
    ranges: Vec<Range>,
    edges: Vec<Frontier<H>>,
    next: u64,
}

impl<H: Hasher> Subtrees<H> {
    /// Collects the hashes of `ranges`, which must not overlap.
    pub fn new(ranges: Vec<Range>) -> Self {
        let edges = ranges.iter().map(|_| Frontier::new()).collect();
        Subtrees {
            ranges,
            edges,
            next: 0,
        }
    }

    /// The leaves the ranges need: one past the last leaf of any of them.
    pub fn needs(&self) -> u64 {
        self.ranges.iter().map(Range::end).max().unwrap_or(0)
    }

    /// Takes the next leaf's hash, in order from leaf 0.
    pub fn push_hash(&mut self, hash: H::Output) {
        let i = self.next;
        self.next += 1;
        if let Some(k) = self.ranges.iter().position(|r| r.start <= i && i < r.end()) {
            self.edges[k].push_hash(hash);
        }
    }

    /// The hashes, in the order of the ranges.
    ///
    /// # Errors
    ///
    /// [`ProofError::SizeBeyondTree`] when fewer leaves were pushed than a
    /// range needs.
    pub fn finish(self) -> Result<Vec<H::Output>, ProofError> {
        let needs = self.needs();
        if self.next < needs {
            return Err(ProofError::SizeBeyondTree {
                size: needs,
                len: self.next,
            });
        }
        Ok(self.edges.iter().map(Frontier::root).collect())
    }
}

/// The largest power of two smaller than `n`, for `n >= 2`: where RFC 9162
/// splits a tree of `n` leaves.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The number of hashes in the inclusion proof of `index` in a tree of
/// `size` leaves, for `index < size`: one per level below the point where
/// the paths to `index` and to the last leaf part (`inner`), then one per
/// full subtree left of that point (`border`).
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let (inner, border) = decompose(index, size);
    inner + border
}

/// The number of hashes in the consistency proof from `size1` to `size2`,
/// for `0 < size1 < size2`: the inclusion proof of leaf `size1 - 1` without
/// the levels inside the largest full subtree that ends at `size1` (which
/// `shift` counts), plus that subtree's hash unless it is the whole first
/// tree, whose root the verifier has.
fn consistency_proof_len(size1: u64, size2: u64) -> usize {
    let (inner, border) = decompose(size1 - 1, size2);
    let shift = size1.trailing_zeros() as usize;
    // The paths to size1 - 1 and size2 - 1 part above the full subtree
    // that ends at size1, so inner > shift.
    let seed = usize::from(!size1.is_power_of_two());
    seed + inner - shift + border
}

fn decompose(index: u64, size: u64) -> (usize, usize) {
    let inner = (u64::BITS - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = index.checked_shr(inner as u32).unwrap_or(0).count_ones() as usize;
    (inner, border)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use std::path::{Path, PathBuf};

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // ---- transparency-dev/merkle probes ---------------------------------

    /// A copy of transparency-dev/merkle's probes, with their licence, in `tests/testdata/`.
    fn vectors_dir() -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/testdata/merkle");
        assert!(
            dir.join("inclusion").is_dir() && dir.join("consistency").is_dir(),
            "the Merkle test vectors are missing: expected transparency-dev/merkle probes in \
             {}/{{inclusion,consistency}}",
            dir.display()
        );
        dir
    }

    fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                json_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct InclusionProbe {
        leaf_idx: u64,
        tree_size: u64,
        root: String,
        leaf_hash: String,
        proof: Option<Vec<String>>,
        desc: String,
        want_err: bool,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct ConsistencyProbe {
        size1: u64,
        size2: u64,
        root1: String,
        root2: String,
        proof: Option<Vec<String>>,
        desc: String,
        want_err: bool,
    }

    /// Runs one probe file; `None` if it is not under `inclusion/` or
    /// `consistency/`.
    fn run_probe(kind: &str, text: &str) -> Option<(String, bool, Result<(), ProofError>)> {
        let b64 = |s: &str| {
            BASE64
                .decode(s)
                .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"))
        };
        let proof = |p: Option<Vec<String>>| -> Vec<Vec<u8>> {
            p.unwrap_or_default().iter().map(|h| b64(h)).collect()
        };
        match kind {
            "inclusion" => {
                let p: InclusionProbe = serde_json::from_str(text).unwrap();
                let result = verify_inclusion::<Sha256>(
                    &b64(&p.leaf_hash),
                    p.leaf_idx,
                    p.tree_size,
                    &proof(p.proof),
                    &b64(&p.root),
                );
                Some((p.desc, p.want_err, result))
            }
            "consistency" => {
                let p: ConsistencyProbe = serde_json::from_str(text).unwrap();
                let result = verify_consistency::<Sha256>(
                    p.size1,
                    p.size2,
                    &b64(&p.root1),
                    &b64(&p.root2),
                    &proof(p.proof),
                );
                Some((p.desc, p.want_err, result))
            }
            _ => None,
        }
    }

    #[test]
    fn transparency_dev_vectors() {
        let dir = vectors_dir();
        let mut files = Vec::new();
        json_files(&dir, &mut files);
        files.sort();
        let (mut checked, mut verified, mut rejected) = (0, 0, 0);
        let mut failures = Vec::new();
        for path in &files {
            let rel = path.strip_prefix(&dir).unwrap();
            let kind = rel.iter().next().and_then(|c| c.to_str()).unwrap_or("");
            let text = std::fs::read_to_string(path).unwrap();
            let Some((desc, want_err, result)) = run_probe(kind, &text) else {
                failures.push(format!(
                    "{}: not under inclusion/ or consistency/",
                    rel.display()
                ));
                continue;
            };
            checked += 1;
            match (want_err, result) {
                (false, Ok(())) => verified += 1,
                (true, Err(_)) => rejected += 1,
                (false, Err(e)) => {
                    failures.push(format!("{} ({desc}): should verify: {e}", rel.display()))
                }
                (true, Ok(())) => {
                    failures.push(format!("{} ({desc}): should be rejected", rel.display()))
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} vector files failed:\n{}",
            failures.len(),
            files.len(),
            failures.join("\n")
        );
        assert_eq!(checked, files.len(), "every .json file is checked");
        assert!(
            verified > 0 && rejected > 0,
            "{verified} verified, {rejected} rejected"
        );
        eprintln!("{checked} vector files: {verified} verified, {rejected} rejected");
    }

    /// Leaves and roots from transparency-dev/merkle `testonly/constants.go`,
    /// as listed in the vectors' README.
    const REFERENCE_LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const REFERENCE_ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn reference_roots() {
        let mut tree = MerkleTree::<Sha256>::new();
        assert_eq!(hex(&tree.root()), REFERENCE_ROOTS[0]);
        for (i, leaf) in REFERENCE_LEAVES.iter().enumerate() {
            assert_eq!(tree.push(&unhex(leaf)), i as u64);
            assert_eq!(hex(&tree.root()), REFERENCE_ROOTS[i + 1], "root after {i}");
        }
        for (size, root) in REFERENCE_ROOTS.iter().enumerate() {
            assert_eq!(
                hex(&tree.root_at(size as u64).unwrap()),
                *root,
                "size {size}"
            );
        }
        assert_eq!(
            tree.root_at(9),
            Err(ProofError::SizeBeyondTree { size: 9, len: 8 })
        );
    }

    #[test]
    fn hashers() {
        assert_eq!(
            hex(&empty_root::<Blake3>()),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(hex(&empty_root::<Sha256>()), REFERENCE_ROOTS[0]);
        // The prefix and the parts are hashed as one string.
        assert_eq!(
            leaf_hash::<Blake3>(b"ab"),
            Blake3::hash(&[&b"\x00a"[..], &b"b"[..]])
        );
        assert_eq!(
            node_hash::<Sha256>(&[1; 32], &[2; 32]),
            Sha256::hash(&[&[1][..], &[1; 32][..], &[2; 32][..]])
        );
        assert_eq!(Blake3::hash(&[]).len(), Blake3::SIZE);
        assert_eq!(Sha256::hash(&[]).len(), Sha256::SIZE);
    }

    #[test]
    fn push_hash_is_push() {
        let mut a = MerkleTree::<Blake3>::default();
        let mut b = MerkleTree::<Blake3>::new();
        for i in 0..10u8 {
            a.push(&[i]);
            b.push_hash(leaf_hash::<Blake3>(&[i]));
        }
        assert_eq!(a.root(), b.root());
        assert_eq!((a.len(), a.is_empty()), (10, false));
        assert!(MerkleTree::<Sha256>::new().is_empty());
        let debug = format!("{:?}", a.clone());
        assert!(debug.starts_with("MerkleTree { hasher: \"blake3\", len: 10, root: \""));
    }

    #[test]
    fn messages() {
        let root = empty_root::<Sha256>();
        let leaf = leaf_hash::<Sha256>(b"x");
        let err = |r: Result<(), ProofError>| r.unwrap_err().to_string();
        assert_eq!(
            err(verify_inclusion::<Sha256>(&leaf, 9, 8, &[root; 3], &root)),
            "index 9 is outside a tree of size 8"
        );
        assert_eq!(
            err(verify_inclusion::<Sha256>(&leaf, 2, 8, &[root; 4], &root)),
            "proof has 4 hashes, a tree of size 8 needs 3 for index 2"
        );
        assert_eq!(
            err(verify_inclusion::<Sha256>(&leaf, 0, 2, &[&[][..]], &root)),
            "proof[0] has 0 bytes, a sha256 hash has 32"
        );
        assert_eq!(
            err(verify_inclusion::<Sha256>(
                &leaf,
                0,
                1,
                &[] as &[&[u8]],
                &root
            )),
            format!(
                "computed root {} does not match {} at size 1",
                hex(&leaf),
                REFERENCE_ROOTS[0]
            )
        );
        assert_eq!(
            err(verify_consistency::<Sha256>(3, 2, &root, &root, &[root])),
            "size1 3 is larger than size2 2"
        );
        assert_eq!(
            err(verify_consistency::<Sha256>(
                0,
                2,
                &root,
                &root,
                &[] as &[&[u8]]
            )),
            "size1 is 0: every tree extends the empty tree, there is no consistency proof to size 2"
        );
        assert_eq!(
            err(verify_consistency::<Sha256>(
                4,
                4,
                &[1, 2],
                &[1, 3],
                &[] as &[&[u8]]
            )),
            "two roots for size 4 differ: 0102 and 0103"
        );
        assert_eq!(
            err(verify_consistency::<Sha256>(3, 8, &root, &root, &[root; 2])),
            "proof has 2 hashes, a consistency proof from size 3 to 8 needs 4"
        );
        assert_eq!(
            err(verify_consistency::<Sha256>(
                4,
                8,
                &root[1..],
                &root,
                &[root]
            )),
            "root1 has 31 bytes, a sha256 hash has 32"
        );
    }

    #[test]
    fn extreme_sizes_do_not_panic() {
        let h = [0u8; 32];
        let none: &[[u8; 32]] = &[];
        for (index, size) in [(0, u64::MAX), (u64::MAX - 1, u64::MAX), (1 << 63, u64::MAX)] {
            let r = verify_inclusion::<Blake3>(&h, index, size, none, &h);
            assert!(
                matches!(r, Err(ProofError::InclusionProofLength { .. })),
                "{r:?}"
            );
        }
        for (size1, size2) in [(1, u64::MAX), (u64::MAX - 1, u64::MAX), (1 << 63, u64::MAX)] {
            let r = verify_consistency::<Blake3>(size1, size2, &h, &h, none);
            assert!(
                matches!(r, Err(ProofError::ConsistencyProofLength { .. })),
                "{r:?}"
            );
        }
    }

    // ---- properties against the RFC's recursive definitions -------------

    /// Every tree size up to this is checked exhaustively.
    const MAX: usize = 64;

    fn naive_split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// RFC 9162 §2.1.1 `MTH(D[n])` over leaf hashes.
    fn naive_root<H: Hasher>(leaves: &[H::Output]) -> H::Output {
        match leaves.len() {
            0 => H::hash(&[]),
            1 => leaves[0],
            n => {
                let k = naive_split(n);
                node_hash::<H>(
                    &naive_root::<H>(&leaves[..k]),
                    &naive_root::<H>(&leaves[k..]),
                )
            }
        }
    }

    /// RFC 9162 §2.1.3.1 `PATH(m, D[n])`.
    fn naive_path<H: Hasher>(m: usize, leaves: &[H::Output]) -> Vec<H::Output> {
        let n = leaves.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = naive_split(n);
        let (mut path, sibling) = if m < k {
            (naive_path::<H>(m, &leaves[..k]), &leaves[k..])
        } else {
            (naive_path::<H>(m - k, &leaves[k..]), &leaves[..k])
        };
        path.push(naive_root::<H>(sibling));
        path
    }

    /// RFC 9162 §2.1.4.1 `SUBPROOF(m, D[n], b)`.
    fn naive_subproof<H: Hasher>(m: usize, leaves: &[H::Output], b: bool) -> Vec<H::Output> {
        let n = leaves.len();
        if m == n {
            return if b {
                Vec::new()
            } else {
                vec![naive_root::<H>(leaves)]
            };
        }
        let k = naive_split(n);
        let (mut proof, sibling) = if m <= k {
            (naive_subproof::<H>(m, &leaves[..k], b), &leaves[k..])
        } else {
            (
                naive_subproof::<H>(m - k, &leaves[k..], false),
                &leaves[..k],
            )
        };
        proof.push(naive_root::<H>(sibling));
        proof
    }

    /// A tree of `2 * MAX` distinct leaves (so that sizes up to twice `MAX`
    /// have roots), its leaf hashes and its root at every size, checked
    /// against [`naive_root`].
    fn fixture<H: Hasher>() -> (MerkleTree<H>, Vec<H::Output>, Vec<H::Output>) {
        let mut tree = MerkleTree::<H>::new();
        let mut hashes = Vec::new();
        assert_eq!(tree.root(), naive_root::<H>(&[]));
        for i in 0..2 * MAX {
            let leaf = format!("{{\"seq\":{i}}}");
            assert_eq!(tree.push(leaf.as_bytes()), i as u64);
            hashes.push(leaf_hash::<H>(leaf.as_bytes()));
            assert_eq!(tree.root(), naive_root::<H>(&hashes), "root at {}", i + 1);
        }
        let roots: Vec<_> = (0..=2 * MAX as u64)
            .map(|n| tree.root_at(n).unwrap())
            .collect();
        for (n, root) in roots.iter().enumerate() {
            assert_eq!(*root, naive_root::<H>(&hashes[..n]), "root_at({n})");
        }
        (tree, hashes, roots)
    }

    fn flip(hash: &[u8], bit: usize) -> Vec<u8> {
        let mut h = hash.to_vec();
        let byte = bit / 8 % h.len();
        h[byte] ^= 1 << (bit % 8);
        h
    }

    fn bytes<T: AsRef<[u8]>>(proof: &[T]) -> Vec<Vec<u8>> {
        proof.iter().map(|h| h.as_ref().to_vec()).collect()
    }

    #[track_caller]
    fn rejected(result: Result<(), ProofError>, what: impl fmt::Display) {
        assert!(result.is_err(), "accepted: {what}");
    }

    fn inclusion_properties<H: Hasher>() {
        let (tree, hashes, roots) = fixture::<H>();
        assert_eq!(
            tree.inclusion_proof(0, 0),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
        let beyond = 2 * MAX as u64 + 1;
        assert_eq!(
            tree.inclusion_proof(0, beyond),
            Err(ProofError::SizeBeyondTree {
                size: beyond,
                len: beyond - 1
            })
        );
        for n in 1..=MAX {
            let size = n as u64;
            assert!(matches!(
                tree.inclusion_proof(size, size),
                Err(ProofError::IndexOutOfRange { .. })
            ));
            for i in 0..n {
                let index = i as u64;
                let proof = tree.inclusion_proof(index, size).unwrap();
                assert_eq!(proof, naive_path::<H>(i, &hashes[..n]), "proof {i} in {n}");
                let leaf = &hashes[i];
                let root = &roots[n];
                let verify = |leaf: &[u8], index, size, proof: &[Vec<u8>], root: &[u8]| {
                    verify_inclusion::<H>(leaf, index, size, proof, root)
                };
                let good = bytes(&proof);
                let case = |what: &str| format!("{what}, leaf {i} in {n}");
                verify(leaf.as_ref(), index, size, &good, root.as_ref()).unwrap();

                // A changed leaf, root or proof hash.
                for bit in [0, 77, 255] {
                    rejected(
                        verify(&flip(leaf.as_ref(), bit), index, size, &good, root.as_ref()),
                        case("flipped leaf"),
                    );
                    rejected(
                        verify(leaf.as_ref(), index, size, &good, &flip(root.as_ref(), bit)),
                        case("flipped root"),
                    );
                    for j in 0..good.len() {
                        let mut bad = good.clone();
                        bad[j] = flip(&bad[j], bit);
                        rejected(
                            verify(leaf.as_ref(), index, size, &bad, root.as_ref()),
                            case("flipped proof"),
                        );
                    }
                }
                // Hashes dropped, added or reordered.
                let mut variants = vec![
                    [good.clone(), vec![root.as_ref().to_vec()]].concat(),
                    [vec![root.as_ref().to_vec()], good.clone()].concat(),
                    [good.clone(), vec![Vec::new()]].concat(),
                ];
                if !good.is_empty() {
                    variants.push(good[1..].to_vec());
                    variants.push(good[..good.len() - 1].to_vec());
                    variants.push([good.clone(), vec![good[0].clone()]].concat());
                }
                if good.len() >= 2 {
                    let mut swapped = good.clone();
                    swapped.swap(0, 1);
                    variants.push(swapped);
                }
                for bad in &variants {
                    rejected(
                        verify(leaf.as_ref(), index, size, bad, root.as_ref()),
                        case("edited proof"),
                    );
                }
                // Another leaf's hash, another index, another size.
                if n > 1 {
                    let other = hashes[(i + 1) % n].as_ref();
                    rejected(
                        verify(other, index, size, &good, root.as_ref()),
                        case("other leaf"),
                    );
                }
                for other in [
                    index.wrapping_sub(1),
                    index + 1,
                    index ^ 1,
                    index ^ 2,
                    u64::MAX,
                ] {
                    if other != index {
                        rejected(
                            verify(leaf.as_ref(), other, size, &good, root.as_ref()),
                            case(&format!("index {other}")),
                        );
                    }
                }
                for other in [n - 1, n + 1, 2 * n] {
                    if other > i && other != n {
                        let other_root = roots[other].as_ref();
                        rejected(
                            verify(leaf.as_ref(), index, other as u64, &good, other_root),
                            case(&format!("size {other}")),
                        );
                    }
                }
            }
        }
    }

    fn consistency_properties<H: Hasher>() {
        let (tree, hashes, roots) = fixture::<H>();
        let none: &[Vec<u8>] = &[];
        let beyond = 2 * MAX as u64 + 1;
        assert_eq!(
            tree.consistency_proof(1, beyond),
            Err(ProofError::SizeBeyondTree {
                size: beyond,
                len: beyond - 1
            })
        );
        for n2 in 0..=MAX {
            let size2 = n2 as u64;
            let root2 = roots[n2].as_ref();
            // From the empty tree: nothing to prove, and an error both ways.
            assert_eq!(
                tree.consistency_proof(0, size2),
                Err(ProofError::EmptyFirstTree { size2 })
            );
            assert_eq!(
                verify_consistency::<H>(0, size2, roots[0].as_ref(), root2, none),
                Err(ProofError::EmptyFirstTree { size2 })
            );
            assert_eq!(
                tree.consistency_proof(size2 + 1, size2),
                Err(ProofError::SizesOutOfOrder {
                    size1: size2 + 1,
                    size2
                })
            );
            for n1 in 1..=n2 {
                let size1 = n1 as u64;
                let root1 = roots[n1].as_ref();
                let proof = tree.consistency_proof(size1, size2).unwrap();
                assert_eq!(
                    proof,
                    naive_subproof::<H>(n1, &hashes[..n2], true),
                    "{n1} to {n2}"
                );
                let good = bytes(&proof);
                let verify = |size1, size2, root1: &[u8], root2: &[u8], proof: &[Vec<u8>]| {
                    verify_consistency::<H>(size1, size2, root1, root2, proof)
                };
                let case = |what: &str| format!("{what}, {n1} to {n2}");
                verify(size1, size2, root1, root2, &good).unwrap();

                if n1 != n2 {
                    rejected(
                        verify(size1, size2, root2, root1, &good),
                        case("swapped roots"),
                    );
                }
                rejected(
                    verify(size1, size2, roots[n1 - 1].as_ref(), root2, &good),
                    case("wrong root1"),
                );
                rejected(
                    verify(size1, size2, root1, roots[n2 + 1].as_ref(), &good),
                    case("wrong root2"),
                );
                rejected(
                    verify(size2 + 1, size2, root1, root2, &good),
                    case("size1 > size2"),
                );
                for bit in [0, 100, 255] {
                    rejected(
                        verify(size1, size2, &flip(root1, bit), root2, &good),
                        case("flipped root1"),
                    );
                    rejected(
                        verify(size1, size2, root1, &flip(root2, bit), &good),
                        case("flipped root2"),
                    );
                    for j in 0..good.len() {
                        let mut bad = good.clone();
                        bad[j] = flip(&bad[j], bit);
                        rejected(
                            verify(size1, size2, root1, root2, &bad),
                            case("flipped proof"),
                        );
                    }
                }
                let mut variants = vec![
                    [good.clone(), vec![root1.to_vec()]].concat(),
                    [good.clone(), vec![root2.to_vec()]].concat(),
                    [vec![root1.to_vec()], good.clone()].concat(),
                    [vec![root2.to_vec()], good.clone()].concat(),
                    [good.clone(), vec![Vec::new()]].concat(),
                ];
                if !good.is_empty() {
                    variants.push(good[1..].to_vec());
                    variants.push(good[..good.len() - 1].to_vec());
                    variants.push([vec![good[0].clone()], good.clone()].concat());
                }
                if good.len() >= 2 {
                    let mut swapped = good.clone();
                    swapped.swap(0, 1);
                    variants.push(swapped);
                }
                for bad in &variants {
                    rejected(
                        verify(size1, size2, root1, root2, bad),
                        case("edited proof"),
                    );
                }
                // A proof for other sizes, against the roots of those
                // sizes. (Against the roots given it may fit: see "What a
                // proof does not prove" in the module docs.)
                let others = [
                    (n1 - 1, n2),
                    (n1 + 1, n2),
                    (n1 ^ 2, n2),
                    (n1, n2 - 1),
                    (n1, n2 + 1),
                    (n1, 2 * n2),
                    (n1, n2 / 2),
                ];
                for (o1, o2) in others {
                    if (o1, o2) != (n1, n2) {
                        let (r1, r2) = (roots[o1].as_ref(), roots[o2].as_ref());
                        let what = case(&format!("sizes {o1} to {o2}"));
                        rejected(verify(o1 as u64, o2 as u64, r1, r2, &good), what);
                    }
                }
            }
        }
    }

    #[test]
    fn inclusion_properties_blake3() {
        inclusion_properties::<Blake3>();
    }

    #[test]
    fn inclusion_properties_sha256() {
        inclusion_properties::<Sha256>();
    }

    #[test]
    fn consistency_properties_blake3() {
        consistency_properties::<Blake3>();
    }

    #[test]
    fn consistency_properties_sha256() {
        consistency_properties::<Sha256>();
    }

    /// The edge alone gives every root the whole tree gives, and
    /// [`Subtrees`] fed the leaves in one pass gives every proof.
    #[test]
    fn frontier_and_subtrees_agree_with_the_tree() {
        let (tree, hashes, roots) = fixture::<Blake3>();
        let mut edge = Frontier::<Blake3>::new();
        assert_eq!(edge.root(), roots[0]);
        for (i, h) in hashes.iter().enumerate() {
            assert_eq!(edge.push_hash(*h), i as u64);
            assert_eq!(edge.root(), roots[i + 1], "frontier root at {}", i + 1);
            assert_eq!(edge.nodes.len(), edge.len().count_ones() as usize);
        }
        let made = |ranges: Vec<Range>| {
            let mut sub = Subtrees::<Blake3>::new(ranges);
            for h in &hashes[..sub.needs() as usize] {
                sub.push_hash(*h);
            }
            sub.finish().unwrap()
        };
        for size in 1..=2 * MAX as u64 {
            for index in 0..size {
                assert_eq!(
                    made(inclusion_ranges(index, size)),
                    tree.inclusion_proof(index, size).unwrap(),
                    "inclusion of {index} in {size}"
                );
            }
            for size1 in 1..size {
                assert_eq!(
                    made(consistency_ranges(size1, size)),
                    tree.consistency_proof(size1, size).unwrap(),
                    "consistency from {size1} to {size}"
                );
            }
        }
        let mut short = Subtrees::<Blake3>::new(inclusion_ranges(3, 10));
        short.push_hash(hashes[0]);
        assert_eq!(
            short.finish(),
            Err(ProofError::SizeBeyondTree { size: 10, len: 1 })
        );
    }
}
