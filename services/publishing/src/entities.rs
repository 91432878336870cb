pub mod account {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "accounts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub user_id: String,
        pub network: String,
        pub external_id: String,
        pub display_name: String,
        /// connected, needs_reconnect, disconnected
        pub status: String,
        /// Id of the key that encrypted the tokens.
        pub key_id: String,
        pub access_token: Vec<u8>,
        pub refresh_token: Option<Vec<u8>>,
        pub access_expires_at: Option<DateTimeUtc>,
        pub refresh_expires_at: Option<DateTimeUtc>,
        /// The member's audience size on the network, when it tells.
        pub audience_size: Option<i64>,
        pub connected_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// The expiry the advocate was last reminded of (`share.account_expiring`).
        pub expiry_reminded_for: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod oauth_state {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "oauth_states")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub state: String,
        pub tenant_id: String,
        pub user_id: String,
        pub network: String,
        pub code_verifier: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod publication {
    use sea_orm::entity::prelude::*;

    /// One share's publication: the record of every attempt, written before each call.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "publications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub share_id: String,
        pub tenant_id: String,
        pub user_id: String,
        pub post_id: String,
        pub account_id: String,
        pub network: String,
        pub text: String,
        /// The post's image, published where the network takes one.
        pub image_url: Option<String>,
        pub image_alt: Option<String>,
        pub link_code: String,
        pub target_url: String,
        /// publishing, published, failed, needs_reconnect
        pub status: String,
        pub attempts: i32,
        /// True while a call may have reached the network without its answer recorded.
        pub in_flight: bool,
        pub external_id: Option<String>,
        pub external_url: Option<String>,
        pub last_error: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub published_at: Option<DateTimeUtc>,
        /// The fencing token of the delivery working on the publication; only its holder
        /// calls the network or records an outcome.
        pub lease: Option<String>,
        /// When the lease ends unless its holder renews it.
        pub lease_until: Option<DateTimeUtc>,
        /// What an attempt left on the network before the post existed (Instagram's
        /// container id), for the next attempt to continue with.
        pub attempt_ref: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
