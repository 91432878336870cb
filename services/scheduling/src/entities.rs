pub mod share {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "shares")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub user_id: String,
        pub post_id: String,
        pub account_id: String,
        pub network: String,
        pub caption: String,
        pub text: String,
        pub link_code: String,
        pub target_url: String,
        /// The post's image published with the share (Instagram needs one), if any.
        pub image_url: Option<String>,
        pub image_alt: Option<String>,
        /// scheduled, due, published, failed, needs_reconnect, cancelled
        pub status: String,
        pub due_at: DateTimeUtc,
        /// Trace context of the request that created the share, continued when it is due.
        pub traceparent: Option<String>,
        pub tracestate: Option<String>,
        pub external_id: Option<String>,
        pub external_url: Option<String>,
        pub failure_reason: Option<String>,
        pub created_at: DateTimeUtc,
        pub published_at: Option<DateTimeUtc>,
        pub updated_at: DateTimeUtc,
        /// The posting slot the share holds, when it was placed into one.
        pub slot_at: Option<DateTimeUtc>,
        /// The (hashed) Idempotency-Key of the request that created the share.
        pub request_key: Option<String>,
        /// What a due share waits for, and until when (when known).
        pub waiting_for: Option<String>,
        pub waiting_until: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod posting_slots {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "posting_slots")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub time_zone: String,
        pub slots: String,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
