use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub points: i64,
    pub action: String,
    pub source_event_id: String,
    pub share_id: Option<String>,
    pub awarded_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PointsSummary {
    pub user_id: String,
    pub balance: i64,
    /// Newest first.
    pub entries: Vec<LedgerEntry>,
}
