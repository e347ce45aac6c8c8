//! A GitHub issue as a source: `gh issue view N`, and the issues its
//! checklist items refer to (`- [ ] #123`), whose titles and bodies become the
//! tasks'.

use super::{Extracted, markdown};
use crate::error::Result;
use crate::forge::{Gh, Issue};

/// The master issue and the tasks in its body.
pub struct IssueSource {
    pub issue: Issue,
    pub extracted: Extracted,
}

/// Read issue `number` and its sub-tasks; referenced issues are read too.
pub fn load(gh: &Gh, number: u64) -> Result<IssueSource> {
    let mut issue = gh.issue_view(number)?;
    issue.body = super::normalize(&issue.body);
    let mut extracted = markdown::extract(&issue.body);
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
