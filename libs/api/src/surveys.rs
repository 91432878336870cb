//! Pulse surveys and eNPS. Answers are anonymous: no API ever links an answer to a person,
//! and results by department appear only when at least five people answered.

use crate::content::Targeting;
use serde::{Deserialize, Serialize};

/// Fewest answers behind any published figure.
pub const ANONYMITY_THRESHOLD: u64 = 5;

/// The eNPS question, asked as written.
pub const ENPS_QUESTION: &str = "How likely are you to recommend our company as a place to work?";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// A number between `min` and `max`.
    Scale,
    /// One of `options`.
    Choice,
    /// Free text.
    Text,
    /// The eNPS question, 0 to 10.
    Enps,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Question {
    /// Short id, unique in the survey.
    pub id: String,
    pub kind: QuestionKind,
    /// Ignored for eNPS (the standard wording is used).
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Recurrence {
    Once,
    Weekly,
    Monthly,
    Quarterly,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"title": "Monthly pulse", "recurrence": "monthly", "questions": [
    {"id": "enps", "kind": "enps"},
    {"id": "workload", "kind": "scale", "text": "How manageable is your workload?", "min": 1, "max": 5},
    {"id": "tools", "kind": "choice", "text": "Which tool helps you most?", "options": ["Chorus", "Email", "Chat"]},
    {"id": "idea", "kind": "text", "text": "One thing we should change?"}]}))]
pub struct SurveyInput {
    pub title: String,
    /// One to ten questions.
    pub questions: Vec<Question>,
    pub recurrence: Recurrence,
    #[serde(default)]
    pub targeting: Targeting,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Survey {
    pub id: String,
    pub title: String,
    pub questions: Vec<Question>,
    pub recurrence: Recurrence,
    pub targeting: Targeting,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The period answers go to now (`2026-W48`, `2026-11`, `2026-Q4`, `once`).
    pub current_period: String,
    /// For the caller: whether they already answered this period.
    pub answered: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Answer {
    pub question_id: String,
    /// A number for scale and eNPS, a string for choice and text.
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubmitAnswers {
    #[serde(default)]
    pub survey_id: String,
    pub answers: Vec<Answer>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
// Read from the query string: without this, utoipa declares the fields as path parameters.
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    #[serde(default)]
    pub survey_id: String,
    /// Period to report; the current one when absent.
    pub period: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Enps {
    /// % promoters (9-10) minus % detractors (0-6), from -100 to 100.
    pub score: f64,
    pub promoters: u64,
    pub passives: u64,
    pub detractors: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuestionResult {
    pub question_id: String,
    pub kind: QuestionKind,
    pub answers: u64,
    /// Mean of scale answers.
    pub mean: Option<f64>,
    /// Count per option for choices.
    pub counts: Vec<(String, u64)>,
    /// Free-text answers, in no particular order.
    pub texts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DepartmentResult {
    pub department: String,
    pub responses: u64,
    pub enps: Option<Enps>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PeriodScore {
    pub period: String,
    pub responses: u64,
    pub enps: Option<Enps>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SurveyResults {
    pub survey_id: String,
    pub period: String,
    pub responses: u64,
    /// Absent when fewer than five people answered.
    pub enps: Option<Enps>,
    /// Empty when fewer than five people answered.
    pub questions: Vec<QuestionResult>,
    /// Departments with at least five answers.
    pub departments: Vec<DepartmentResult>,
    /// Departments left out because fewer than five people answered there.
    pub departments_below_threshold: u64,
    /// Every period, oldest first (periods under the threshold show no score).
    pub trend: Vec<PeriodScore>,
}
