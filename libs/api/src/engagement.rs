use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResolveLink {
    pub code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkTarget {
    pub tenant_id: String,
    pub share_id: String,
    pub target_url: String,
}

/// Engagement totals of one share.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShareStats {
    pub share_id: String,
    pub clicks: i64,
    pub bot_clicks: i64,
    pub unique_visitors: i64,
    pub reactions: i64,
    pub comments: i64,
    pub reshares: i64,
    pub impressions: i64,
}
