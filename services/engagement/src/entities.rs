pub mod link {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "links")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code: String,
        pub tenant_id: String,
        pub share_id: String,
        pub user_id: String,
        pub post_id: String,
        pub network: String,
        pub target_url: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod tracked_share {
    use sea_orm::entity::prelude::*;

    /// A published share whose network metrics are polled.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tracked_shares")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub share_id: String,
        pub tenant_id: String,
        pub user_id: String,
        pub post_id: String,
        pub network: String,
        pub external_id: String,
        pub published_at: DateTimeUtc,
        /// Index into the poll schedule of the next poll.
        pub poll_index: i32,
        pub next_poll_at: Option<DateTimeUtc>,
        /// Set when the network signalled activity (a webhook): read the metrics again
        /// now, outside the schedule.
        pub refresh_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod metric_total {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "metric_totals")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub share_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub metric: String,
        pub tenant_id: String,
        pub total: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod visitor {
    use sea_orm::entity::prelude::*;

    /// One row per share, day and visitor hash: the unique-visitor count.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "visitors")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub share_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub day: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub visitor_hash: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod member {
    use sea_orm::entity::prelude::*;

    /// People of the tenant, from identity's events: departments and enabled advocates.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub display_name: String,
        pub department: String,
        pub advocate: bool,
        pub active: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod post {
    use sea_orm::entity::prelude::*;

    /// Published posts, from content's events: titles and topics for reports.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "posts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub post_id: String,
        pub title: String,
        /// `,a,b,`
        pub topics: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod observation {
    use sea_orm::entity::prelude::*;

    /// One recorded change of one metric (append-only): the source of every report.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "observations")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: String,
        /// Day in the tenant's time zone, `YYYY-MM-DD`.
        pub day: String,
        pub at: DateTimeUtc,
        pub share_id: String,
        pub user_id: String,
        pub post_id: String,
        pub network: String,
        pub department: String,
        /// share, click, bot_click, unique_visitor, reaction, comment, reshare, impression, submission_approved
        pub metric: String,
        pub delta: i64,
        /// The advocate's audience on the network (share observations).
        pub audience: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod settings {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "analytics_settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        pub time_zone: String,
        pub currency: String,
        pub reaction_weight: f64,
        /// JSON array of network rates.
        pub rates: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
