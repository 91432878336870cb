//! Bluesky adapter (see NETWORKS.md). Not implemented yet: every call reports a configuration error.

use crate::{
    AppCredentials, Network, NetworkAdapter, NetworkError, PostMetrics, PostRequest, PostedRef,
    Profile, TokenSet,
};

pub struct Bluesky {
    #[allow(dead_code)]
    credentials: AppCredentials,
}

impl Bluesky {
    pub fn new(credentials: AppCredentials) -> Bluesky {
        Bluesky { credentials }
    }
}

fn not_yet() -> NetworkError {
    NetworkError::Configuration("the bluesky adapter is not implemented yet".to_string())
}

#[async_trait::async_trait]
impl NetworkAdapter for Bluesky {
    fn network(&self) -> Network {
        Network::Bluesky
    }

    fn authorize_url(&self, _state: &str, _code_challenge: &str) -> String {
        String::new()
    }

    async fn exchange_code(&self, _code: &str, _verifier: &str) -> Result<TokenSet, NetworkError> {
        Err(not_yet())
    }

    async fn refresh(&self, _refresh_token: &str) -> Result<TokenSet, NetworkError> {
        Err(not_yet())
    }

    async fn profile(&self, _access_token: &str) -> Result<Profile, NetworkError> {
        Err(not_yet())
    }

    async fn publish(&self, _token: &str, _post: &PostRequest) -> Result<PostedRef, NetworkError> {
        Err(not_yet())
    }

    async fn find_post(
        &self,
        _token: &str,
        _post: &PostRequest,
    ) -> Result<Option<PostedRef>, NetworkError> {
        Err(not_yet())
    }

    async fn metrics(&self, _token: &str, _external_id: &str) -> Result<PostMetrics, NetworkError> {
        Err(not_yet())
    }
}
