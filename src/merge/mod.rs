//! Bringing the results together: the order branches are merged in
//! ([`order`]) and `po-merge`'s integration run ([`integrate`]), rendered by
//! [`render`]. The merges and conflict predictions it shares with po-spawn,
//! po-watch and po-summarize are [`crate::integration`]'s.

pub mod integrate;
pub mod order;
pub mod render;

pub use integrate::{Options, Outcome, Report, Step, run};
