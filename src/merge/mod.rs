//! Bringing the results together: conflicts between completed branches
//! ([`conflicts`], also shown by po-watch and po-summarize), the order
//! branches are merged in ([`order`]), and `po-merge`'s integration run
//! ([`integrate`]), rendered by [`render`].

pub mod conflicts;
pub mod integrate;
pub mod order;
pub mod render;

pub use integrate::{Options, Outcome, Report, Step, run};
