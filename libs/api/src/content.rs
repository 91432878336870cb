use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContentType {
    Brand,
    EmployerBranding,
    IndustryInsight,
    CompanyNews,
    Event,
    Award,
    Csr,
    EmployeeGenerated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PostStatus {
    Draft,
    Published,
    Archived,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"title": "We are hiring in Lyon", "commentary": "Our Lyon team is growing: 12 open roles in engineering.",
    "link_url": "https://careers.acme.example/lyon", "topics": ["jobs", "engineering"], "content_type": "employer_branding", "language": "en"}))]
pub struct CreatePost {
    pub title: String,
    /// Suggested text; advocates edit it before sharing.
    pub commentary: String,
    /// http(s) link the post promotes.
    pub link_url: String,
    #[serde(default)]
    pub topics: Vec<String>,
    pub content_type: ContentType,
    #[serde(default = "default_language")]
    pub language: String,
}

fn default_language() -> String {
    "en".to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Post {
    pub id: String,
    pub title: String,
    pub commentary: String,
    pub link_url: String,
    pub topics: Vec<String>,
    pub content_type: ContentType,
    pub language: String,
    pub status: PostStatus,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PostRef {
    pub post_id: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
pub struct FeedQuery {
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<u32>,
}
