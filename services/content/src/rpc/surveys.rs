//! Pulse surveys and eNPS. Who answered is kept apart from what was answered: a response
//! row holds the answers, the period and the department only; a participation row says
//! that someone answered, to allow one answer per period. Figures need five answers.

use super::{CURATORS, ContentService, parse_json, record_audit};
use crate::domain::{decode_list, surveys as logic};
use crate::entities::{member, participation, response, survey};
use chorus_api::content::Targeting;
use chorus_api::surveys::{
    ANONYMITY_THRESHOLD, Answer, DepartmentResult, ENPS_QUESTION, PeriodScore, Question,
    QuestionKind, QuestionResult, Recurrence, ResultsQuery, SubmitAnswers, Survey, SurveyInput,
    SurveyResults,
};
use chorus_events::content::v1 as events;
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait, TryInsertResult,
};
use std::collections::BTreeMap;

fn recurrence_name(recurrence: Recurrence) -> &'static str {
    match recurrence {
        Recurrence::Once => "once",
        Recurrence::Weekly => "weekly",
        Recurrence::Monthly => "monthly",
        Recurrence::Quarterly => "quarterly",
    }
}

fn parse_recurrence(name: &str) -> Recurrence {
    match name {
        "weekly" => Recurrence::Weekly,
        "monthly" => Recurrence::Monthly,
        "quarterly" => Recurrence::Quarterly,
        _ => Recurrence::Once,
    }
}

/// Whether a survey's targeting includes the member.
pub(crate) fn targets(targeting: &Targeting, member: &member::Model) -> bool {
    let roles = decode_list(&member.roles);
    (targeting.departments.is_empty()
        || targeting
            .departments
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&member.department)))
        && (targeting.locations.is_empty()
            || targeting
                .locations
                .iter()
                .any(|l| l.eq_ignore_ascii_case(&member.location)))
        && (targeting.languages.is_empty()
            || targeting
                .languages
                .iter()
                .any(|l| l.eq_ignore_ascii_case(&member.language)))
        && (targeting.roles.is_empty()
            || targeting
                .roles
                .iter()
                .any(|role| roles.iter().any(|name| name == role.as_str())))
}

impl ContentService {
    fn to_survey(&self, model: &survey::Model, answered: bool) -> Survey {
        let recurrence = parse_recurrence(&model.recurrence);
        Survey {
            id: model.id.clone(),
            title: model.title.clone(),
            questions: parse_json(&model.questions),
            recurrence,
            targeting: parse_json(&model.targeting),
            created_at: model.created_at,
            current_period: logic::period(recurrence, chrono::Utc::now()),
            answered,
        }
    }

    async fn find_survey(&self, caller: &Caller, survey_id: &str) -> ServiceResult<survey::Model> {
        survey::Entity::find_by_id(survey_id.to_string())
            .filter(survey::Column::TenantId.eq(caller.tenant_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no survey {survey_id}")))
    }

    pub async fn create_survey(&self, caller: Caller, input: SurveyInput) -> ServiceResult<Survey> {
        caller.require_any(CURATORS)?;
        let title = crate::domain::validate::title(&input.title)?;
        logic::validate_questions(&input.questions).map_err(ServiceError::invalid)?;
        crate::domain::validate::targeting(&input.targeting)?;
        let questions: Vec<Question> = input
            .questions
            .into_iter()
            .map(|mut question| {
                if question.kind == QuestionKind::Enps {
                    question.text = ENPS_QUESTION.to_string();
                    question.min = Some(0);
                    question.max = Some(10);
                }
                question
            })
            .collect();
        let row = survey::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            tenant_id: Set(caller.tenant_id.clone()),
            title: Set(title),
            questions: Set(serde_json::to_string(&questions).unwrap_or_default()),
            recurrence: Set(recurrence_name(input.recurrence).to_string()),
            targeting: Set(serde_json::to_string(&input.targeting).unwrap_or_default()),
            created_by: Set(caller.user_id.clone()),
            created_at: Set(chrono::Utc::now()),
        };
        let txn = self.db.begin().await?;
        let model = survey::Entity::insert(row)
            .exec_with_returning(&txn)
            .await?;
        record_audit(
            &txn,
            &caller,
            "survey.create",
            &model.id,
            model.title.clone(),
        )
        .await?;
        let opened = events::SurveyOpened {
            tenant_id: caller.tenant_id.clone(),
            survey_id: model.id.clone(),
            title: model.title.clone(),
            recurrence: model.recurrence.clone(),
            created_by: caller.user_id.clone(),
            opened_at: Some(chorus_events::to_timestamp(model.created_at)),
        };
        self.outbox.enqueue(&txn, &opened).await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(self.to_survey(&model, false))
    }

    /// Curators see every survey; others the surveys aimed at them, with whether they answered.
    pub async fn list_surveys(
        &self,
        caller: Caller,
        _request: chorus_api::Empty,
    ) -> ServiceResult<Vec<Survey>> {
        let rows = survey::Entity::find()
            .filter(survey::Column::TenantId.eq(caller.tenant_id.clone()))
            .order_by_desc(survey::Column::Id)
            .all(&self.db)
            .await?;
        let is_curator = CURATORS.iter().any(|role| caller.has(*role));
        let member = self.member(&caller).await?;
        let mut surveys = Vec::new();
        for row in rows {
            let targeting: Targeting = parse_json(&row.targeting);
            if !is_curator && !targets(&targeting, &member) {
                continue;
            }
            let period = logic::period(parse_recurrence(&row.recurrence), chrono::Utc::now());
            let answered =
                participation::Entity::find_by_id((row.id.clone(), period, caller.user_id.clone()))
                    .one(&self.db)
                    .await?
                    .is_some();
            surveys.push(self.to_survey(&row, answered));
        }
        Ok(surveys)
    }

    /// Records anonymous answers, once per person and period.
    #[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id, survey_id = %request.survey_id))]
    pub async fn answer_survey(
        &self,
        caller: Caller,
        request: SubmitAnswers,
    ) -> ServiceResult<Survey> {
        let found = self.find_survey(&caller, &request.survey_id).await?;
        let member = self.member(&caller).await?;
        if !targets(&parse_json(&found.targeting), &member) {
            return Err(ServiceError::not_found(format!(
                "no survey {}",
                request.survey_id
            )));
        }
        let questions: Vec<Question> = parse_json(&found.questions);
        logic::validate_answers(&questions, &request.answers).map_err(ServiceError::invalid)?;
        let period = logic::period(parse_recurrence(&found.recurrence), chrono::Utc::now());
        let txn = self.db.begin().await?;
        let taken = participation::Entity::insert(participation::ActiveModel {
            survey_id: Set(found.id.clone()),
            period: Set(period.clone()),
            user_id: Set(caller.user_id.clone()),
            tenant_id: Set(caller.tenant_id.clone()),
        })
        .on_conflict_do_nothing_on([
            participation::Column::SurveyId,
            participation::Column::Period,
            participation::Column::UserId,
        ])
        .exec(&txn)
        .await?;
        if matches!(taken, TryInsertResult::Conflicted) {
            txn.rollback().await?;
            return Err(ServiceError::conflict(format!(
                "you already answered this survey for {period}"
            )));
        }
        let answers: Vec<Answer> = request.answers;
        response::Entity::insert(response::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            tenant_id: Set(caller.tenant_id.clone()),
            survey_id: Set(found.id.clone()),
            period: Set(period.clone()),
            department: Set(member.department.clone()),
            answers: Set(serde_json::to_string(&answers).unwrap_or_default()),
        })
        .exec_without_returning(&txn)
        .await?;
        let event = events::SurveyAnswered {
            tenant_id: caller.tenant_id.clone(),
            survey_id: found.id.clone(),
            user_id: caller.user_id.clone(),
            period: period.clone(),
        };
        self.outbox
            .enqueue_with_id(
                &txn,
                &event,
                format!("survey-answered-{}-{period}-{}", found.id, caller.user_id),
            )
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(self.to_survey(&found, true))
    }

    /// Results of a period: eNPS, per-question figures, departments with five answers or
    /// more, and the trend across periods.
    pub async fn survey_results(
        &self,
        caller: Caller,
        query: ResultsQuery,
    ) -> ServiceResult<SurveyResults> {
        caller.require_any(&[Role::Curator, Role::Admin, Role::Approver])?;
        let found = self.find_survey(&caller, &query.survey_id).await?;
        let questions: Vec<Question> = parse_json(&found.questions);
        let period = query.period.clone().unwrap_or_else(|| {
            logic::period(parse_recurrence(&found.recurrence), chrono::Utc::now())
        });
        let all = response::Entity::find()
            .filter(response::Column::SurveyId.eq(found.id.clone()))
            .filter(response::Column::TenantId.eq(caller.tenant_id.clone()))
            .all(&self.db)
            .await?;
        let enps_question = questions
            .iter()
            .find(|question| question.kind == QuestionKind::Enps)
            .map(|q| q.id.clone());
        let score_of = |row: &response::Model| -> Option<i64> {
            let question_id = enps_question.as_ref()?;
            let answers: Vec<Answer> = parse_json(&row.answers);
            answers
                .iter()
                .find(|answer| &answer.question_id == question_id)?
                .value
                .as_i64()
        };
        let mut by_period: BTreeMap<String, Vec<&response::Model>> = BTreeMap::new();
        for row in &all {
            by_period.entry(row.period.clone()).or_default().push(row);
        }
        let trend = by_period
            .iter()
            .map(|(name, rows)| {
                let enough = rows.len() as u64 >= ANONYMITY_THRESHOLD;
                let scores: Vec<i64> = rows.iter().filter_map(|row| score_of(row)).collect();
                PeriodScore {
                    period: name.clone(),
                    responses: rows.len() as u64,
                    enps: if enough { logic::enps(&scores) } else { None },
                }
            })
            .collect();
        let rows: Vec<&response::Model> = by_period.get(&period).cloned().unwrap_or_default();
        let responses = rows.len() as u64;
        let enough = responses >= ANONYMITY_THRESHOLD;
        let mut results = SurveyResults {
            survey_id: found.id.clone(),
            period: period.clone(),
            responses,
            enps: None,
            questions: vec![],
            departments: vec![],
            departments_below_threshold: 0,
            trend,
        };
        if !enough {
            return Ok(results);
        }
        let scores: Vec<i64> = rows.iter().filter_map(|row| score_of(row)).collect();
        results.enps = logic::enps(&scores);
        let parsed: Vec<Vec<Answer>> = rows.iter().map(|row| parse_json(&row.answers)).collect();
        for question in &questions {
            let values: Vec<&serde_json::Value> = parsed
                .iter()
                .filter_map(|answers| {
                    answers
                        .iter()
                        .find(|answer| answer.question_id == question.id)
                        .map(|a| &a.value)
                })
                .collect();
            let mut result = QuestionResult {
                question_id: question.id.clone(),
                kind: question.kind,
                answers: values.len() as u64,
                mean: None,
                counts: vec![],
                texts: vec![],
            };
            match question.kind {
                QuestionKind::Scale | QuestionKind::Enps => {
                    let numbers: Vec<i64> =
                        values.iter().filter_map(|value| value.as_i64()).collect();
                    if !numbers.is_empty() {
                        let mean = numbers.iter().sum::<i64>() as f64 / numbers.len() as f64;
                        result.mean = Some((mean * 100.0).round() / 100.0);
                    }
                }
                QuestionKind::Choice => {
                    result.counts = question
                        .options
                        .iter()
                        .map(|option| {
                            (
                                option.clone(),
                                values
                                    .iter()
                                    .filter(|value| value.as_str() == Some(option))
                                    .count() as u64,
                            )
                        })
                        .collect();
                }
                QuestionKind::Text => {
                    let mut texts: Vec<String> = values
                        .iter()
                        .filter_map(|value| value.as_str().map(str::to_string))
                        .collect();
                    texts.sort();
                    result.texts = texts;
                }
            }
            results.questions.push(result);
        }
        let mut departments: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        let mut department_sizes: BTreeMap<String, u64> = BTreeMap::new();
        for row in &rows {
            *department_sizes.entry(row.department.clone()).or_default() += 1;
            if let Some(score) = score_of(row) {
                departments
                    .entry(row.department.clone())
                    .or_default()
                    .push(score);
            }
        }
        for (department, size) in department_sizes {
            if size >= ANONYMITY_THRESHOLD && !department.is_empty() {
                let scores = departments.get(&department).cloned().unwrap_or_default();
                results.departments.push(DepartmentResult {
                    department,
                    responses: size,
                    enps: logic::enps(&scores),
                });
            } else {
                results.departments_below_threshold += 1;
            }
        }
        Ok(results)
    }
}

impl ContentService {
    /// The active members a survey is aimed at, its author aside (internal: called by
    /// notifications as the system).
    pub async fn survey_audience(
        &self,
        caller: Caller,
        request: chorus_api::content::SurveyRef,
    ) -> ServiceResult<chorus_api::content::PostAudience> {
        if caller.user_id != "system" || !caller.roles.is_empty() {
            return Err(ServiceError::forbidden(
                "the audience of a survey is internal",
            ));
        }
        let survey = survey::Entity::find_by_id(request.survey_id.clone())
            .filter(survey::Column::TenantId.eq(caller.tenant_id.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no survey {}", request.survey_id)))?;
        let targeting: Targeting = serde_json::from_str(&survey.targeting).unwrap_or_default();
        let members = member::Entity::find()
            .filter(member::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(member::Column::Active.eq(true))
            .all(&self.db)
            .await?;
        Ok(chorus_api::content::PostAudience {
            user_ids: members
                .into_iter()
                .filter(|member| member.user_id != survey.created_by)
                .filter(|member| targets(&targeting, member))
                .map(|member| member.user_id)
                .collect(),
        })
    }
}
