//! The content library: posts, their variants and captions, targeting, lifecycle,
//! compliance rules, employee submissions, the advocate's feed, and surveys.

use chorus_kit::Role;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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

impl ContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Brand => "brand",
            ContentType::EmployerBranding => "employer_branding",
            ContentType::IndustryInsight => "industry_insight",
            ContentType::CompanyNews => "company_news",
            ContentType::Event => "event",
            ContentType::Award => "award",
            ContentType::Csr => "csr",
            ContentType::EmployeeGenerated => "employee_generated",
        }
    }

    pub fn parse(text: &str) -> Option<ContentType> {
        serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
    }
}

/// Where a post is in its life: draft -> in_review -> approved -> published -> expired, or
/// archived from any state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PostStatus {
    Draft,
    InReview,
    Approved,
    Published,
    Expired,
    Archived,
}

impl PostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PostStatus::Draft => "draft",
            PostStatus::InReview => "in_review",
            PostStatus::Approved => "approved",
            PostStatus::Published => "published",
            PostStatus::Expired => "expired",
            PostStatus::Archived => "archived",
        }
    }

    pub fn parse(text: &str) -> Option<PostStatus> {
        serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Image,
    Video,
}

/// A picture or video attached to a post (stored elsewhere; Chorus keeps the reference).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"url": "https://cdn.acme.example/lyon.jpg", "kind": "image", "mime_type": "image/jpeg",
    "size_bytes": 245000, "alt_text": "The Lyon office at sunset"}))]
pub struct MediaRef {
    /// http(s) URL of the file.
    pub url: String,
    pub kind: MediaKind,
    /// image/jpeg, image/png, image/gif, image/webp, video/mp4 or video/quicktime.
    pub mime_type: String,
    /// At most 8 MB for images and 200 MB for videos.
    pub size_bytes: u64,
    /// Description for people using screen readers; required for images.
    #[serde(default)]
    pub alt_text: String,
}

/// A suggested text for one network; several per network keep advocates from all posting
/// the same words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"network": "x", "text": "We are hiring in Lyon! #jobs"}))]
pub struct SuggestedCaption {
    /// linkedin, x, facebook, instagram, mastodon or bluesky.
    pub network: String,
    pub text: String,
}

/// The post in another language: not a copy of headquarters' text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Variant {
    /// BCP 47 language tag (`fr`, `pl`).
    pub language: String,
    pub title: String,
    pub commentary: String,
    #[serde(default)]
    pub captions: Vec<SuggestedCaption>,
}

/// Who sees a post. An empty list means everyone on that axis.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Targeting {
    #[serde(default)]
    pub departments: Vec<String>,
    #[serde(default)]
    pub locations: Vec<String>,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub languages: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"title": "We are hiring in Lyon", "commentary": "Our Lyon team is growing: 12 open roles in engineering.",
    "link_url": "https://careers.acme.example/lyon", "topics": ["jobs", "engineering"], "content_type": "employer_branding", "language": "en",
    "captions": [{"network": "linkedin", "text": "Our Lyon team is hiring engineers, come and work with me!"},
                 {"network": "x", "text": "We're hiring in Lyon #jobs"}],
    "variants": [{"language": "fr", "title": "On recrute à Lyon", "commentary": "12 postes ouverts en ingénierie."}],
    "targeting": {"departments": ["engineering", "hr"]}}))]
pub struct PostInput {
    pub title: String,
    /// Suggested text; advocates edit it before sharing.
    pub commentary: String,
    /// http(s) link the post promotes; UTM parameters are added per share.
    pub link_url: String,
    #[serde(default)]
    pub topics: Vec<String>,
    pub content_type: ContentType,
    /// Language of the default text.
    #[serde(default = "default_language")]
    pub language: String,
    #[serde(default)]
    pub media: Vec<MediaRef>,
    #[serde(default)]
    pub captions: Vec<SuggestedCaption>,
    #[serde(default)]
    pub variants: Vec<Variant>,
    #[serde(default)]
    pub targeting: Targeting,
    /// Internal news: shown in the feed, never shareable.
    #[serde(default)]
    pub read_only: bool,
    /// Visible to advocates from this time (default: when published).
    #[serde(default)]
    pub available_from: Option<chrono::DateTime<chrono::Utc>>,
    /// Expires at this time.
    #[serde(default)]
    pub available_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// Kept for callers of the first API version: a post is created from a `PostInput`.
pub type CreatePost = PostInput;

fn default_language() -> String {
    "en".to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdatePost {
    pub post_id: String,
    /// The version the caller read (ETag); the update fails when the post changed since.
    pub expected_version: Option<i64>,
    pub post: PostInput,
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
    pub media: Vec<MediaRef>,
    pub captions: Vec<SuggestedCaption>,
    pub variants: Vec<Variant>,
    pub targeting: Targeting,
    pub read_only: bool,
    pub available_from: Option<chrono::DateTime<chrono::Utc>>,
    pub available_until: Option<chrono::DateTime<chrono::Utc>>,
    pub created_by: String,
    /// The advocate whose submission became this post.
    pub submitted_by: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Increases with every change; sent as the ETag.
    pub version: i64,
    /// Published shares of this post.
    pub share_count: u64,
    /// Colleagues who shared it.
    pub shared_by_colleagues: u64,
    /// Names of the colleagues who shared it and agreed to be shown.
    pub shared_by_visible: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PostRef {
    pub post_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SurveyRef {
    pub survey_id: String,
}

/// Who hears of a newly published post (internal: for notifications).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostAudience {
    /// Active members the post is targeted at who follow one of its topics, or every
    /// targeted member when the post names a target group.
    pub user_ids: Vec<String>,
}

/// A lifecycle move: submit for review, approve, request changes, publish, archive.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transition {
    #[serde(default)]
    pub post_id: String,
    /// Why (required to request changes or archive).
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
// Read from the query string: without this, utoipa declares the fields as path parameters.
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// Words to search in titles and commentary.
    pub q: Option<String>,
    /// Only posts with this topic.
    pub topic: Option<String>,
}

/// A post as an advocate sees it in the feed: in their language when a variant exists.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FeedItem {
    pub post_id: String,
    pub title: String,
    pub commentary: String,
    pub language: String,
    pub captions: Vec<SuggestedCaption>,
    pub link_url: String,
    pub topics: Vec<String>,
    pub content_type: ContentType,
    pub media: Vec<MediaRef>,
    pub read_only: bool,
    pub published_at: chrono::DateTime<chrono::Utc>,
    pub available_until: Option<chrono::DateTime<chrono::Utc>>,
    /// The post has a topic the advocate follows.
    pub followed_topic: bool,
    pub shared_by_me: bool,
    pub shared_by_colleagues: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Topics {
    pub topics: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopicRef {
    pub topic: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContentPreferences {
    /// Show my name among the colleagues who shared a post.
    pub show_my_shares: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComplianceKind {
    /// A term that may not appear in posts or captions.
    BannedTerm,
    /// A disclosure (such as `#employee`) appended to shares of the given content types.
    MandatoryDisclosure,
    /// Posts with this topic must be approved before publication.
    ApprovalTopic,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"kind": "mandatory_disclosure", "value": "#employee", "content_types": ["brand", "award"]}))]
pub struct ComplianceRuleInput {
    pub kind: ComplianceKind,
    pub value: String,
    /// For disclosures: the content types they apply to (empty = all).
    #[serde(default)]
    pub content_types: Vec<ContentType>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ComplianceRule {
    pub id: String,
    pub kind: ComplianceKind,
    pub value: String,
    pub content_types: Vec<ContentType>,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleRef {
    pub rule_id: String,
}

/// A broken rule, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Violation {
    pub rule_id: String,
    pub kind: ComplianceKind,
    pub value: String,
    /// title, commentary, caption, variant:<lang>, caption:<network>
    pub field: String,
    /// Character offset of the match in the field.
    pub position: Option<usize>,
    pub message: String,
}

/// What the gateway asks before scheduling a share.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckCaption {
    pub post_id: String,
    pub network: String,
    pub caption: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaptionChecked {
    /// The caption with any mandatory disclosure appended.
    pub caption: String,
    pub link_url: String,
    pub has_image: bool,
    /// The post's first image (what image networks such as Instagram publish) and its
    /// description for screen readers.
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default)]
    pub image_alt: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"title": "Our team at the hackathon", "link_url": "https://blog.example.org/hackathon",
    "text": "We built a carbon tracker in 48 hours", "topics": ["engineering"]}))]
pub struct SubmissionInput {
    pub title: String,
    pub link_url: String,
    pub text: String,
    #[serde(default)]
    pub topics: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionStatus {
    Pending,
    Approved,
    Rejected,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Submission {
    pub id: String,
    pub author: String,
    pub title: String,
    pub link_url: String,
    pub text: String,
    pub topics: Vec<String>,
    pub status: SubmissionStatus,
    pub reason: Option<String>,
    /// The post it became, once approved.
    pub post_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    #[serde(default)]
    pub submission_id: String,
    /// Required to reject.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
// Read from the query string: without this, utoipa declares the fields as path parameters.
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    /// Filter by status.
    pub status: Option<String>,
}

/// Which audit entries to list (admins), newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub cursor: Option<String>,
    /// Entries per page (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Only this person's actions.
    pub actor: Option<String>,
    /// Only actions starting with this, e.g. `post.` or `POST /v1/contests`.
    pub action: Option<String>,
    /// From this time on (RFC 3339).
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Before this time (RFC 3339).
    pub to: Option<chrono::DateTime<chrono::Utc>>,
}

/// How long the tenant's audit log keeps entries.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"retention_days": 730}))]
pub struct AuditSettings {
    /// 30 to 3650 days (default 365); older entries are deleted.
    pub retention_days: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub at: chrono::DateTime<chrono::Utc>,
}
