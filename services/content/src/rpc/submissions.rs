//! Employee submissions: an advocate proposes content; a curator approves it (it becomes a
//! post crediting its author) or rejects it with a reason.

use super::{CURATORS, ContentService, record_audit};
use crate::domain::{decode_list, encode_list, validate};
use crate::entities::{post, submission};
use chorus_api::Page;
use chorus_api::content::{
    ContentType, Decision, ListQuery, PostInput, Submission, SubmissionInput, SubmissionStatus,
};
use chorus_events::content::v1 as events;
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};

fn to_submission(model: submission::Model) -> Submission {
    Submission {
        status: match model.status.as_str() {
            "approved" => SubmissionStatus::Approved,
            "rejected" => SubmissionStatus::Rejected,
            _ => SubmissionStatus::Pending,
        },
        topics: decode_list(&model.topics),
        id: model.id,
        author: model.author,
        title: model.title,
        link_url: model.link_url,
        text: model.text,
        reason: model.reason,
        post_id: model.post_id,
        created_at: model.created_at,
        decided_by: model.decided_by,
        decided_at: model.decided_at,
    }
}

impl ContentService {
    pub async fn create_submission(
        &self,
        caller: Caller,
        input: SubmissionInput,
    ) -> ServiceResult<Submission> {
        caller.require_any(&[Role::Advocate])?;
        let title = validate::title(&input.title)?;
        validate::http_url("link_url", &input.link_url)?;
        validate::commentary("text", &input.text)?;
        let topics = validate::topics(&input.topics)?;
        let row = submission::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            tenant_id: Set(caller.tenant_id.clone()),
            author: Set(caller.user_id.clone()),
            title: Set(title),
            link_url: Set(input.link_url.clone()),
            text: Set(input.text.clone()),
            topics: Set(encode_list(&topics)),
            status: Set("pending".to_string()),
            reason: Set(None),
            post_id: Set(None),
            created_at: Set(chrono::Utc::now()),
            decided_by: Set(None),
            decided_at: Set(None),
        };
        let txn = self.db.begin().await?;
        let model = submission::Entity::insert(row)
            .exec_with_returning(&txn)
            .await?;
        let created = chorus_events::content::v1::SubmissionCreated {
            tenant_id: model.tenant_id.clone(),
            submission_id: model.id.clone(),
            author: model.author.clone(),
            title: model.title.clone(),
            created_at: Some(chorus_events::to_timestamp(model.created_at)),
        };
        self.outbox.enqueue(&txn, &created).await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(to_submission(model))
    }

    /// Curators see every submission; advocates their own.
    pub async fn list_submissions(
        &self,
        caller: Caller,
        query: ListQuery,
    ) -> ServiceResult<Page<Submission>> {
        let limit = query.limit.unwrap_or(20).clamp(1, 100) as u64;
        let mut select = submission::Entity::find()
            .filter(submission::Column::TenantId.eq(caller.tenant_id.clone()));
        if !CURATORS.iter().any(|role| caller.has(*role)) {
            select = select.filter(submission::Column::Author.eq(caller.user_id.clone()));
        }
        if let Some(status) = &query.status {
            select = select.filter(submission::Column::Status.eq(status.clone()));
        }
        if let Some(cursor) = &query.cursor {
            select = select.filter(submission::Column::Id.lt(cursor.clone()));
        }
        let mut rows = select
            .order_by_desc(submission::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|row| row.id.clone())
        } else {
            None
        };
        Ok(Page {
            items: rows.into_iter().map(to_submission).collect(),
            next_cursor,
        })
    }

    async fn pending(
        &self,
        caller: &Caller,
        submission_id: &str,
    ) -> ServiceResult<submission::Model> {
        caller.require_any(CURATORS)?;
        let found = submission::Entity::find_by_id(submission_id.to_string())
            .filter(submission::Column::TenantId.eq(caller.tenant_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no submission {submission_id}")))?;
        if found.status != "pending" {
            return Err(ServiceError::conflict(format!(
                "the submission is already {}",
                found.status
            )));
        }
        Ok(found)
    }

    /// Approves: the submission becomes an approved post crediting its author.
    pub async fn approve_submission(
        &self,
        caller: Caller,
        decision: Decision,
    ) -> ServiceResult<Submission> {
        let found = self.pending(&caller, &decision.submission_id).await?;
        let input = PostInput {
            title: found.title.clone(),
            commentary: found.text.clone(),
            link_url: found.link_url.clone(),
            topics: decode_list(&found.topics),
            content_type: ContentType::EmployeeGenerated,
            language: "en".to_string(),
            media: vec![],
            captions: vec![],
            variants: vec![],
            targeting: Default::default(),
            read_only: false,
            available_from: None,
            available_until: None,
        };
        let post = self
            .insert_post(
                &caller,
                &input,
                &found.title,
                &decode_list(&found.topics),
                "en",
                Some(found.author.clone()),
            )
            .await?;
        let now = chrono::Utc::now();
        let txn = self.db.begin().await?;
        post::Entity::update_many()
            .col_expr(
                post::Column::Status,
                sea_orm::sea_query::Expr::value("approved"),
            )
            .filter(post::Column::Id.eq(post.id.clone()))
            .exec(&txn)
            .await?;
        let mut row: submission::ActiveModel = found.clone().into();
        row.status = Set("approved".to_string());
        row.post_id = Set(Some(post.id.clone()));
        row.decided_by = Set(Some(caller.user_id.clone()));
        row.decided_at = Set(Some(now));
        let updated = row.update(&txn).await?;
        let event = events::SubmissionApproved {
            tenant_id: caller.tenant_id.clone(),
            submission_id: found.id.clone(),
            author_id: found.author.clone(),
            post_id: post.id.clone(),
            approved_by: caller.user_id.clone(),
        };
        self.outbox
            .enqueue_with_id(&txn, &event, format!("submission-approved-{}", found.id))
            .await?;
        record_audit(
            &txn,
            &caller,
            "submission.approve",
            &found.id,
            format!("post {}", post.id),
        )
        .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(to_submission(updated))
    }

    pub async fn reject_submission(
        &self,
        caller: Caller,
        decision: Decision,
    ) -> ServiceResult<Submission> {
        let reason = decision
            .reason
            .clone()
            .unwrap_or_default()
            .trim()
            .to_string();
        if reason.is_empty() {
            return Err(ServiceError::invalid("tell the author why (reason)"));
        }
        let found = self.pending(&caller, &decision.submission_id).await?;
        let txn = self.db.begin().await?;
        let mut row: submission::ActiveModel = found.clone().into();
        row.status = Set("rejected".to_string());
        row.reason = Set(Some(reason.clone()));
        row.decided_by = Set(Some(caller.user_id.clone()));
        row.decided_at = Set(Some(chrono::Utc::now()));
        let updated = row.update(&txn).await?;
        let event = events::SubmissionRejected {
            tenant_id: caller.tenant_id.clone(),
            submission_id: found.id.clone(),
            author_id: found.author.clone(),
            rejected_by: caller.user_id.clone(),
            reason: reason.clone(),
        };
        self.outbox
            .enqueue_with_id(&txn, &event, format!("submission-rejected-{}", found.id))
            .await?;
        record_audit(&txn, &caller, "submission.reject", &found.id, reason).await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(to_submission(updated))
    }
}
