//! Chorus event contracts: the Rust types generated from `proto-schemas/`, and the one
//! place where subject names, stream names and CloudEvents types are spelled.
//!
//! Subject scheme: `chorus.<tenant>.<domain>.<event>.v<N>`, so that an integrator can be
//! given exactly `chorus.<tenant>.>`.

pub mod content {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/chorus.content.v1.rs"));
    }
}
pub mod share {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/chorus.share.v1.rs"));
    }
}
pub mod engagement {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/chorus.engagement.v1.rs"));
    }
}
pub mod gamification {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/chorus.gamification.v1.rs"));
    }
}
pub mod notification {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/chorus.notification.v1.rs"));
    }
}
pub mod identity {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/chorus.identity.v1.rs"));
    }
}

mod time;
pub use time::{from_timestamp, to_timestamp};

/// Root of every subject.
pub const SUBJECT_ROOT: &str = "chorus";

/// One JetStream stream per domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Domain {
    /// Token in the subject (`chorus.<tenant>.<token>.…`).
    pub token: &'static str,
    /// Name of the JetStream stream holding the domain's events.
    pub stream: &'static str,
}

pub const CONTENT: Domain = Domain {
    token: "content",
    stream: "CHORUS_CONTENT",
};
pub const SHARE: Domain = Domain {
    token: "share",
    stream: "CHORUS_SHARE",
};
pub const ENGAGEMENT: Domain = Domain {
    token: "engagement",
    stream: "CHORUS_ENGAGEMENT",
};
pub const GAMIFICATION: Domain = Domain {
    token: "gamification",
    stream: "CHORUS_GAMIFICATION",
};
pub const NOTIFICATION: Domain = Domain {
    token: "notification",
    stream: "CHORUS_NOTIFICATION",
};
pub const USER: Domain = Domain {
    token: "user",
    stream: "CHORUS_USER",
};

/// Every domain, for creating streams at start.
pub const DOMAINS: &[Domain] = &[CONTENT, SHARE, ENGAGEMENT, GAMIFICATION, NOTIFICATION, USER];

impl Domain {
    /// The subjects a domain's stream captures: `chorus.*.<domain>.>`.
    pub fn stream_subjects(&self) -> String {
        format!("{SUBJECT_ROOT}.*.{}.>", self.token)
    }
}

/// A fact that Chorus publishes: one protobuf message type, one subject per tenant.
pub trait Event: prost::Message + Default + Clone + Send + Sync + 'static {
    const DOMAIN: Domain;
    /// Event name in the subject, past tense (`published`, `points_awarded`).
    const NAME: &'static str;
    const VERSION: u32;
    /// Full protobuf name, used as CloudEvents `type` and `ce-type` header.
    const TYPE: &'static str;

    /// The tenant the event belongs to (every event carries it).
    fn tenant_id(&self) -> &str;

    /// The subject this event is published on.
    fn subject(&self) -> String {
        subject_for::<Self>(self.tenant_id())
    }

    /// Filter matching this event type across tenants: `chorus.*.<domain>.<name>.v<N>`.
    fn filter() -> String {
        format!(
            "{SUBJECT_ROOT}.*.{}.{}.v{}",
            Self::DOMAIN.token,
            Self::NAME,
            Self::VERSION
        )
    }
}

/// Subject of an event type for one tenant.
pub fn subject_for<E: Event>(tenant_id: &str) -> String {
    debug_assert!(
        is_valid_tenant_token(tenant_id),
        "tenant id must be a subject-safe token"
    );
    format!(
        "{SUBJECT_ROOT}.{tenant_id}.{}.{}.v{}",
        E::DOMAIN.token,
        E::NAME,
        E::VERSION
    )
}

/// Tenant ids are subject tokens: lowercase letters, digits and dashes, 1 to 40 long,
/// starting with a letter or digit.
pub fn is_valid_tenant_token(tenant_id: &str) -> bool {
    !tenant_id.is_empty()
        && tenant_id.len() <= 40
        && tenant_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !tenant_id.starts_with('-')
}

/// Extracts the tenant from a subject `chorus.<tenant>.…`.
pub fn tenant_of_subject(subject: &str) -> Option<&str> {
    let mut tokens = subject.split('.');
    if tokens.next()? != SUBJECT_ROOT {
        return None;
    }
    tokens.next()
}

macro_rules! event {
    ($ty:ty, $domain:expr, $name:literal, $version:literal, $full:literal) => {
        impl Event for $ty {
            const DOMAIN: Domain = $domain;
            const NAME: &'static str = $name;
            const VERSION: u32 = $version;
            const TYPE: &'static str = $full;
            fn tenant_id(&self) -> &str {
                &self.tenant_id
            }
        }
    };
}

event!(
    content::v1::PostPublished,
    CONTENT,
    "published",
    1,
    "chorus.content.v1.PostPublished"
);
event!(
    content::v1::PostUpdated,
    CONTENT,
    "updated",
    1,
    "chorus.content.v1.PostUpdated"
);
event!(
    content::v1::PostArchived,
    CONTENT,
    "archived",
    1,
    "chorus.content.v1.PostArchived"
);
event!(
    content::v1::PostTransitioned,
    CONTENT,
    "transitioned",
    1,
    "chorus.content.v1.PostTransitioned"
);
event!(
    content::v1::PostExpired,
    CONTENT,
    "expired",
    1,
    "chorus.content.v1.PostExpired"
);
event!(
    content::v1::ActionAudited,
    CONTENT,
    "action_audited",
    1,
    "chorus.content.v1.ActionAudited"
);
event!(
    content::v1::SubmissionCreated,
    CONTENT,
    "submission_created",
    1,
    "chorus.content.v1.SubmissionCreated"
);
event!(
    content::v1::SubmissionApproved,
    CONTENT,
    "submission_approved",
    1,
    "chorus.content.v1.SubmissionApproved"
);
event!(
    content::v1::SubmissionRejected,
    CONTENT,
    "submission_rejected",
    1,
    "chorus.content.v1.SubmissionRejected"
);
event!(
    content::v1::SurveyAnswered,
    CONTENT,
    "survey_answered",
    1,
    "chorus.content.v1.SurveyAnswered"
);
event!(
    content::v1::SurveyOpened,
    CONTENT,
    "survey_opened",
    1,
    "chorus.content.v1.SurveyOpened"
);
event!(
    share::v1::ShareRequested,
    SHARE,
    "requested",
    1,
    "chorus.share.v1.ShareRequested"
);
event!(
    share::v1::ShareScheduled,
    SHARE,
    "scheduled",
    1,
    "chorus.share.v1.ShareScheduled"
);
/// Partitions of `share.due`: each account hashes to one, so that a network's publisher
/// replicas split the accounts and each account has exactly one owner.
pub const SHARE_DUE_PARTITIONS: u32 = 64;

/// The partition of an account (FNV-1a of its id, stable across versions and machines).
pub fn share_due_partition(account_id: &str) -> u32 {
    let hash = account_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    (hash % u64::from(SHARE_DUE_PARTITIONS)) as u32
}

/// The subjects of `share.due` for one network's partitions, across tenants.
pub fn share_due_filters(network: &str, partitions: impl IntoIterator<Item = u32>) -> Vec<String> {
    partitions
        .into_iter()
        .map(|partition| format!("{SUBJECT_ROOT}.*.share.due.v1.{network}.{partition}"))
        .collect()
}

/// `share.due` is addressed `chorus.<tenant>.share.due.v1.<network>.<partition>`: one
/// consumer per network, partitions split between a network's publisher replicas.
impl Event for share::v1::ShareDue {
    const DOMAIN: Domain = SHARE;
    const NAME: &'static str = "due";
    const VERSION: u32 = 1;
    const TYPE: &'static str = "chorus.share.v1.ShareDue";
    fn tenant_id(&self) -> &str {
        &self.tenant_id
    }
    fn subject(&self) -> String {
        format!(
            "{}.{}.{}",
            subject_for::<Self>(&self.tenant_id),
            self.network,
            share_due_partition(&self.account_id)
        )
    }
    fn filter() -> String {
        format!("{SUBJECT_ROOT}.*.share.due.v1.>")
    }
}
event!(
    share::v1::AccountDisconnected,
    SHARE,
    "account_disconnected",
    1,
    "chorus.share.v1.AccountDisconnected"
);
event!(
    share::v1::AccountExpiring,
    SHARE,
    "account_expiring",
    1,
    "chorus.share.v1.AccountExpiring"
);
event!(
    share::v1::SharePublished,
    SHARE,
    "published",
    1,
    "chorus.share.v1.SharePublished"
);
event!(
    share::v1::ShareFailed,
    SHARE,
    "failed",
    1,
    "chorus.share.v1.ShareFailed"
);
event!(
    share::v1::ShareUnconfirmed,
    SHARE,
    "unconfirmed",
    1,
    "chorus.share.v1.ShareUnconfirmed"
);
event!(
    share::v1::ShareWaiting,
    SHARE,
    "waiting",
    1,
    "chorus.share.v1.ShareWaiting"
);
event!(
    share::v1::ShareNeedsReconnect,
    SHARE,
    "needs_reconnect",
    1,
    "chorus.share.v1.ShareNeedsReconnect"
);
event!(
    share::v1::ShareCancelled,
    SHARE,
    "cancelled",
    1,
    "chorus.share.v1.ShareCancelled"
);
event!(
    engagement::v1::LinkClicked,
    ENGAGEMENT,
    "link_clicked",
    1,
    "chorus.engagement.v1.LinkClicked"
);
event!(
    engagement::v1::EngagementRecorded,
    ENGAGEMENT,
    "recorded",
    1,
    "chorus.engagement.v1.EngagementRecorded"
);
event!(
    gamification::v1::PointsAwarded,
    GAMIFICATION,
    "points_awarded",
    1,
    "chorus.gamification.v1.PointsAwarded"
);
event!(
    gamification::v1::BadgeEarned,
    GAMIFICATION,
    "badge_earned",
    1,
    "chorus.gamification.v1.BadgeEarned"
);
event!(
    gamification::v1::ContestStarted,
    GAMIFICATION,
    "contest_started",
    1,
    "chorus.gamification.v1.ContestStarted"
);
event!(
    gamification::v1::ContestEnding,
    GAMIFICATION,
    "contest_ending",
    1,
    "chorus.gamification.v1.ContestEnding"
);
event!(
    gamification::v1::ContestFinished,
    GAMIFICATION,
    "contest_finished",
    1,
    "chorus.gamification.v1.ContestFinished"
);
event!(
    notification::v1::NotificationDelivered,
    NOTIFICATION,
    "delivered",
    1,
    "chorus.notification.v1.NotificationDelivered"
);
event!(
    notification::v1::WebhookEndpointDisabled,
    NOTIFICATION,
    "webhook_disabled",
    1,
    "chorus.notification.v1.WebhookEndpointDisabled"
);
event!(
    identity::v1::UserCreated,
    USER,
    "created",
    1,
    "chorus.identity.v1.UserCreated"
);
event!(
    identity::v1::UserUpdated,
    USER,
    "updated",
    1,
    "chorus.identity.v1.UserUpdated"
);
event!(
    identity::v1::UserDeactivated,
    USER,
    "deactivated",
    1,
    "chorus.identity.v1.UserDeactivated"
);
event!(
    identity::v1::UserErased,
    USER,
    "erased",
    1,
    "chorus.identity.v1.UserErased"
);

/// The profile that `user.created` and `user.updated` both carry: services that keep a copy
/// of people handle both events with one function.
pub trait UserProfileEvent: Event {
    fn user_id(&self) -> &str;
    fn display_name(&self) -> &str;
    fn department(&self) -> &str;
    fn location(&self) -> &str;
    fn language(&self) -> &str;
    fn roles(&self) -> &[String];
}

macro_rules! user_profile {
    ($ty:ty) => {
        impl UserProfileEvent for $ty {
            fn user_id(&self) -> &str {
                &self.user_id
            }
            fn display_name(&self) -> &str {
                &self.display_name
            }
            fn department(&self) -> &str {
                &self.department
            }
            fn location(&self) -> &str {
                &self.location
            }
            fn language(&self) -> &str {
                &self.language
            }
            fn roles(&self) -> &[String] {
                &self.roles
            }
        }
    };
}

user_profile!(identity::v1::UserCreated);
user_profile!(identity::v1::UserUpdated);

static DESCRIPTORS: std::sync::LazyLock<prost_reflect::DescriptorPool> =
    std::sync::LazyLock::new(|| {
        prost_reflect::DescriptorPool::decode(
            include_bytes!(concat!(env!("OUT_DIR"), "/chorus_descriptors.bin")).as_ref(),
        )
        .expect("the descriptors compiled by build.rs decode")
    });

/// The JSON form of an event's protobuf payload given its full type name (`ce-type`):
/// the proto3 JSON mapping with the proto field names (snake_case), every field present,
/// 64-bit integers as numbers and timestamps as RFC 3339. `None` for an unknown type or
/// a payload that does not decode.
pub fn payload_json(type_name: &str, payload: &[u8]) -> Option<serde_json::Value> {
    let descriptor = DESCRIPTORS.get_message_by_name(type_name)?;
    let message = prost_reflect::DynamicMessage::decode(descriptor, payload).ok()?;
    let options = prost_reflect::SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false)
        .stringify_64_bit_integers(false);
    message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .ok()
}

/// The name of an event type as integrators see it: its subject without
/// `chorus.<tenant>.` and without partition tokens, e.g. `share.published.v1`.
pub fn type_name_of_subject(subject: &str) -> Option<&str> {
    let rest = subject.strip_prefix(SUBJECT_ROOT)?.strip_prefix('.')?;
    let (_tenant, name) = rest.split_once('.')?;
    // domain.event.vN, then any partition tokens (share.due.v1.<network>.<partition>).
    let end = name
        .match_indices('.')
        .nth(2)
        .map(|(index, _)| index)
        .unwrap_or(name.len());
    let name = &name[..end];
    (name.split('.').count() == 3).then_some(name)
}

/// Every event type name (`share.published.v1`, …), in catalogue order.
pub fn event_type_names() -> Vec<String> {
    catalogue()
        .into_iter()
        .filter_map(|(subject, _)| type_name_of_subject(&subject).map(str::to_string))
        .collect()
}

/// Every event type as (subject pattern with `{tenant}`, full type name): the catalogue
/// that `proto-schemas/asyncapi.yaml` must list (checked by a test).
pub fn catalogue() -> Vec<(String, &'static str)> {
    fn row<E: Event>() -> (String, &'static str) {
        let subject = format!(
            "{SUBJECT_ROOT}.{{tenant}}.{}.{}.v{}",
            E::DOMAIN.token,
            E::NAME,
            E::VERSION
        );
        (subject, E::TYPE)
    }
    vec![
        row::<content::v1::PostPublished>(),
        row::<content::v1::PostUpdated>(),
        row::<content::v1::PostArchived>(),
        row::<content::v1::PostTransitioned>(),
        row::<content::v1::PostExpired>(),
        row::<content::v1::SubmissionCreated>(),
        row::<content::v1::ActionAudited>(),
        row::<content::v1::SubmissionApproved>(),
        row::<content::v1::SubmissionRejected>(),
        row::<content::v1::SurveyAnswered>(),
        row::<content::v1::SurveyOpened>(),
        row::<share::v1::ShareRequested>(),
        row::<share::v1::ShareScheduled>(),
        row::<share::v1::ShareDue>(),
        row::<share::v1::SharePublished>(),
        row::<share::v1::ShareFailed>(),
        row::<share::v1::ShareUnconfirmed>(),
        row::<share::v1::ShareWaiting>(),
        row::<share::v1::ShareNeedsReconnect>(),
        row::<share::v1::ShareCancelled>(),
        row::<share::v1::AccountDisconnected>(),
        row::<share::v1::AccountExpiring>(),
        row::<engagement::v1::LinkClicked>(),
        row::<engagement::v1::EngagementRecorded>(),
        row::<gamification::v1::PointsAwarded>(),
        row::<gamification::v1::BadgeEarned>(),
        row::<gamification::v1::ContestStarted>(),
        row::<gamification::v1::ContestEnding>(),
        row::<gamification::v1::ContestFinished>(),
        row::<notification::v1::NotificationDelivered>(),
        row::<notification::v1::WebhookEndpointDisabled>(),
        row::<identity::v1::UserCreated>(),
        row::<identity::v1::UserUpdated>(),
        row::<identity::v1::UserDeactivated>(),
        row::<identity::v1::UserErased>(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_scheme() {
        let event = share::v1::SharePublished {
            tenant_id: "t42".into(),
            ..Default::default()
        };
        assert_eq!(event.subject(), "chorus.t42.share.published.v1");
        assert_eq!(
            share::v1::SharePublished::filter(),
            "chorus.*.share.published.v1"
        );
        assert_eq!(
            tenant_of_subject("chorus.t42.share.published.v1"),
            Some("t42")
        );
        assert_eq!(SHARE.stream_subjects(), "chorus.*.share.>");
    }

    #[test]
    fn tenant_tokens_are_subject_safe() {
        assert!(is_valid_tenant_token("acme-2"));
        assert!(!is_valid_tenant_token("acme.corp"));
        assert!(!is_valid_tenant_token("Acme"));
        assert!(!is_valid_tenant_token(""));
        assert!(!is_valid_tenant_token("a*"));
    }

    #[test]
    fn share_due_is_addressed_by_network_and_account_partition() {
        let due = share::v1::ShareDue {
            tenant_id: "acme".into(),
            account_id: "acc-1".into(),
            network: "x".into(),
            ..Default::default()
        };
        let partition = share_due_partition("acc-1");
        assert!(partition < SHARE_DUE_PARTITIONS);
        assert_eq!(
            due.subject(),
            format!("chorus.acme.share.due.v1.x.{partition}")
        );
        assert_eq!(
            share_due_filters("x", [partition]),
            vec![format!("chorus.*.share.due.v1.x.{partition}")]
        );
        // Accounts spread over the partitions.
        let used: std::collections::HashSet<u32> = (0..1_000)
            .map(|index| share_due_partition(&format!("account-{index}")))
            .collect();
        assert_eq!(used.len(), SHARE_DUE_PARTITIONS as usize);
    }

    #[test]
    fn events_render_as_json_under_their_integrator_names() {
        let event = gamification::v1::PointsAwarded {
            tenant_id: "acme".into(),
            user_id: "ada".into(),
            points: 20,
            ..Default::default()
        };
        let json = payload_json(
            "chorus.gamification.v1.PointsAwarded",
            &prost::Message::encode_to_vec(&event),
        )
        .unwrap();
        assert_eq!(json["tenant_id"], "acme");
        assert_eq!(json["points"], 20);
        // Every field is present, defaults included.
        assert_eq!(json["action"], "");
        assert!(payload_json("chorus.nothing.v1.Missing", &[]).is_none());
        assert_eq!(
            type_name_of_subject("chorus.acme.share.due.v1.x.3"),
            Some("share.due.v1")
        );
        assert_eq!(
            type_name_of_subject("chorus.acme.share.published.v1"),
            Some("share.published.v1")
        );
        assert_eq!(type_name_of_subject("chorus.acme.share"), None);
        let names = event_type_names();
        assert!(names.contains(&"notification.webhook_disabled.v1".to_string()));
        assert_eq!(names.len(), catalogue().len());
    }

    #[test]
    fn asyncapi_lists_every_subject() {
        let asyncapi = include_str!("../../../proto-schemas/asyncapi.yaml");
        for (subject, type_name) in catalogue() {
            assert!(
                asyncapi.contains(&subject),
                "asyncapi.yaml misses subject {subject}"
            );
            assert!(
                asyncapi.contains(type_name),
                "asyncapi.yaml misses message {type_name}"
            );
        }
    }
}
