//! Who may move a post where: draft -> in_review -> approved -> published -> expired; a
//! draft without approval-required topics may be published directly; anything may be
//! archived; an approver never approves their own post.

use chorus_api::content::PostStatus;
use chorus_kit::{Caller, Role, ServiceError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    SubmitForReview,
    Approve,
    RequestChanges,
    Publish,
    Archive,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::SubmitForReview => "submit_for_review",
            Action::Approve => "approve",
            Action::RequestChanges => "request_changes",
            Action::Publish => "publish",
            Action::Archive => "archive",
        }
    }
}

const CURATORS: &[Role] = &[Role::Curator, Role::Admin];
const APPROVERS: &[Role] = &[Role::Approver, Role::Admin];

/// The status after `action`, or why it is not allowed.
pub fn next(
    caller: &Caller,
    status: PostStatus,
    action: Action,
    created_by: &str,
    needs_approval: bool,
) -> Result<PostStatus, ServiceError> {
    let refuse = || {
        ServiceError::conflict(format!(
            "a {} post cannot be moved by {}",
            status.as_str(),
            action.name()
        ))
    };
    match action {
        Action::SubmitForReview => {
            caller.require_any(CURATORS)?;
            match status {
                PostStatus::Draft => Ok(PostStatus::InReview),
                _ => Err(refuse()),
            }
        }
        Action::Approve => {
            caller.require_any(APPROVERS)?;
            if caller.user_id == created_by {
                return Err(ServiceError::forbidden(
                    "a post is approved by someone other than its author",
                ));
            }
            match status {
                PostStatus::InReview => Ok(PostStatus::Approved),
                _ => Err(refuse()),
            }
        }
        Action::RequestChanges => {
            caller.require_any(APPROVERS)?;
            match status {
                PostStatus::InReview | PostStatus::Approved => Ok(PostStatus::Draft),
                _ => Err(refuse()),
            }
        }
        Action::Publish => {
            caller.require_any(CURATORS)?;
            match status {
                PostStatus::Approved => Ok(PostStatus::Published),
                PostStatus::Draft if !needs_approval => Ok(PostStatus::Published),
                PostStatus::Draft | PostStatus::InReview => Err(ServiceError::conflict(
                    "this post needs an approver's approval before it is published",
                )),
                _ => Err(refuse()),
            }
        }
        Action::Archive => {
            caller.require_any(CURATORS)?;
            match status {
                PostStatus::Archived => Err(refuse()),
                _ => Ok(PostStatus::Archived),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(user: &str, roles: &[Role]) -> Caller {
        Caller {
            tenant_id: "t".into(),
            user_id: user.into(),
            roles: roles.to_vec(),
        }
    }

    #[test]
    fn the_review_path_needs_a_second_person() {
        let curator = caller("cora", &[Role::Curator]);
        let approver = caller("abe", &[Role::Approver]);
        assert_eq!(
            next(
                &curator,
                PostStatus::Draft,
                Action::SubmitForReview,
                "cora",
                true
            )
            .unwrap(),
            PostStatus::InReview
        );
        assert_eq!(
            next(
                &approver,
                PostStatus::InReview,
                Action::Approve,
                "cora",
                true
            )
            .unwrap(),
            PostStatus::Approved
        );
        let self_approval = caller("cora", &[Role::Curator, Role::Approver]);
        assert_eq!(
            next(
                &self_approval,
                PostStatus::InReview,
                Action::Approve,
                "cora",
                true
            )
            .unwrap_err()
            .code,
            chorus_kit::ErrorCode::Forbidden
        );
        assert_eq!(
            next(&curator, PostStatus::InReview, Action::Approve, "x", true)
                .unwrap_err()
                .code,
            chorus_kit::ErrorCode::Forbidden
        );
        assert_eq!(
            next(
                &curator,
                PostStatus::Approved,
                Action::Publish,
                "cora",
                true
            )
            .unwrap(),
            PostStatus::Published
        );
    }

    #[test]
    fn drafts_publish_directly_only_without_approval_topics() {
        let curator = caller("cora", &[Role::Curator]);
        assert_eq!(
            next(&curator, PostStatus::Draft, Action::Publish, "cora", false).unwrap(),
            PostStatus::Published
        );
        let refused = next(&curator, PostStatus::Draft, Action::Publish, "cora", true).unwrap_err();
        assert!(refused.message.contains("approval"));
        assert!(
            next(
                &curator,
                PostStatus::Archived,
                Action::Publish,
                "cora",
                false
            )
            .is_err()
        );
        let advocate = caller("ada", &[Role::Advocate]);
        assert!(next(&advocate, PostStatus::Draft, Action::Publish, "cora", false).is_err());
    }
}
