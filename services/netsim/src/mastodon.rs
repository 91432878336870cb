//! Mastodon, as netsim simulates it (see NETWORKS.md). Not simulated yet.

use crate::state::SimState;
use axum::Router;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
}
