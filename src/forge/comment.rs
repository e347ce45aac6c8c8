//! One comment per orchestration on its master issue, kept up to date.
//!
//! The comment carries a hidden marker, `<!-- po-summary:<id> -->`. A later
//! `po-summarize --post-comment` (after a `--retry`, say) finds its own earlier
//! comment by that marker and edits it, instead of adding one per run.

use super::Gh;
use crate::error::Result;

/// What [`upsert`] did, with the comment's URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Posted {
    Created(String),
    Updated(String),
}

/// The hidden line that identifies orchestration `id`'s summary comment.
pub fn marker(id: &str) -> String {
    format!("<!-- po-summary:{id} -->")
}

/// `body` with orchestration `id`'s marker as its last line.
pub fn with_marker(body: &str, id: &str) -> String {
    format!("{}\n\n{}\n", body.trim_end(), marker(id))
}

/// Post `body` on issue `issue`, or edit the comment this user posted there
/// earlier for orchestration `id` (the newest one, if there are several).
pub fn upsert(gh: &Gh, issue: u64, id: &str, body: &str) -> Result<Posted> {
    let marker = marker(id);
    let text = with_marker(body, id);
    let mine = gh
        .issue_comments(issue)?
        .into_iter()
        .filter(|c| c.viewer_did_author && c.body.contains(&marker))
        .filter_map(|c| c.database_id().map(|n| (n, c.url)))
        .next_back();
    match mine {
        Some((comment, url)) => {
            gh.comment_edit(comment, &text)?;
            Ok(Posted::Updated(url))
        }
        None => gh.issue_comment(issue, &text).map(Posted::Created),
    }
}
