//! The content service's tables. Lists are stored `,a,b,` (see `domain::encode_list`).

macro_rules! entity {
    ($module:ident, $table:literal, { $($body:tt)* }) => {
        pub mod $module {
            use sea_orm::entity::prelude::*;

            #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
            #[sea_orm(table_name = $table)]
            pub struct Model {
                $($body)*
            }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}

entity!(post, "posts", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub title: String,
    pub commentary: String,
    pub link_url: String,
    pub topics: String,
    pub content_type: String,
    pub language: String,
    pub status: String,
    /// JSON array of media references.
    pub media: String,
    /// JSON array of suggested captions.
    pub captions: String,
    pub has_image: bool,
    pub read_only: bool,
    pub available_from: Option<DateTimeUtc>,
    pub available_until: Option<DateTimeUtc>,
    pub target_departments: String,
    pub target_locations: String,
    pub target_roles: String,
    pub target_languages: String,
    /// Lower-cased title and commentary of every language, for search.
    pub search_text: String,
    pub created_by: String,
    pub submitted_by: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub published_at: Option<DateTimeUtc>,
    pub version: i64,
});

entity!(variant, "post_variants", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub post_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub language: String,
    pub tenant_id: String,
    pub title: String,
    pub commentary: String,
    pub captions: String,
});

entity!(member, "members", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub display_name: String,
    pub department: String,
    pub location: String,
    pub language: String,
    pub roles: String,
    pub active: bool,
    pub show_my_shares: bool,
});

entity!(follow, "follows", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub topic: String,
});

entity!(post_share, "post_shares", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub post_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub shares: i64,
});

entity!(rule, "compliance_rules", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    pub value: String,
    pub content_types: String,
    pub created_by: String,
    pub created_at: DateTimeUtc,
});

entity!(submission, "submissions", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub author: String,
    pub title: String,
    pub link_url: String,
    pub text: String,
    pub topics: String,
    pub status: String,
    pub reason: Option<String>,
    pub post_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTimeUtc>,
});

entity!(audit, "audit_log", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub at: DateTimeUtc,
});

entity!(audit_setting, "audit_settings", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    pub retention_days: i32,
    pub updated_by: String,
    pub updated_at: DateTimeUtc,
});

entity!(survey, "surveys", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub title: String,
    pub questions: String,
    pub recurrence: String,
    pub targeting: String,
    pub created_by: String,
    pub created_at: DateTimeUtc,
});

entity!(response, "survey_responses", {
    /// Random, not time-ordered: a response cannot be matched to a participation by its id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub survey_id: String,
    pub period: String,
    pub department: String,
    pub answers: String,
});

entity!(participation, "survey_participation", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub survey_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub period: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub tenant_id: String,
});
