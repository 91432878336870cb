//! Request and response types shared by the gateway and the services (JSON on the wire,
//! described in the OpenAPI document through `utoipa::ToSchema`).

pub mod content;
pub mod engagement;
pub mod gamification;
pub mod identity;
pub mod notifications;
pub mod publishing;
pub mod scheduling;
pub mod surveys;

use serde::{Deserialize, Serialize};

/// A page of results with an opaque cursor for the next one.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// An empty request or answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Empty {}
