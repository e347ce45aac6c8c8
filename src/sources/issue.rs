//! A GitHub issue as a source: `gh issue view N`, and the issues of this
//! repository its items refer to (`- [ ] #123`), whose titles and bodies
//! become the tasks'. References to other repositories stay links (see
//! [`super::refs`]).

use super::refs::{self, Local};
use super::{Extracted, markdown};
use crate::error::{Error, Result};
use crate::forge::{Gh, Issue};

/// The master issue and the tasks in its body.
pub struct IssueSource {
    pub issue: Issue,
    pub extracted: Extracted,
}

/// Read issue `number` and its sub-tasks (only the `sections` named, if
/// any); referenced issues of this repository are read too.
pub fn load(gh: &Gh, number: u64, sections: &[String]) -> Result<IssueSource> {
    let mut issue = gh.issue_view(number)?;
    issue.body = super::normalize(&issue.body);
    let mut extracted = markdown::extract_with(&issue.body, sections)
        .map_err(|detail| Error::parse(format!("issue #{number}"), detail))?;
    // The master issue's URL names the repository; `gh repo view` if not.
    let local = match refs::repo_of_url(&issue.url) {
        Some(r) => Local::Known(r),
        None => Local::Ask,
    };
    refs::resolve(&mut extracted, gh, local);
    for task in &mut extracted.tasks {
        if let Some(sub) = task.sub_issue {
            let linked = gh.issue_view(sub)?;
            task.title = linked.title.trim().to_string();
            let body = super::normalize(&linked.body);
            task.body = if task.body.is_empty() {
                body
            } else {
                format!("{body}\n\n{}", task.body)
            };
        }
    }
    Ok(IssueSource { issue, extracted })
}
