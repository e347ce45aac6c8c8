//! Where tasks come from: a GitHub issue, a markdown file or stdin, or a cpo
//! parallel directory's manifest.

pub mod manifest;
