//! End-to-end tests of the whole system: real nats-server, real databases (SQLite and
//! PostgreSQL), the network simulator, every service, driven through the gateway's API.

mod analytics;
mod api_keys;
mod bad_input;
mod bus;
mod channels;
mod content;
mod crash;
mod demo;
mod gamification;
mod harness;
mod notifications;
mod pipeline;
mod publishing;
mod sso;
mod webhooks;
