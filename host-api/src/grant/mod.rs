//! Grants: what one task holds, for how long, and who may end it.

pub mod live;
