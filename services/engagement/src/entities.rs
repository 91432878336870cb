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
