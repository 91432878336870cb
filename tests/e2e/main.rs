//! End-to-end tests of the whole system: real nats-server, real databases (SQLite and
//! PostgreSQL), the network simulator, every service, driven through the gateway's API.

mod analytics;
mod api_keys;
mod audit;
mod bad_input;
mod bus;
mod channels;
mod content;
mod crash;
mod demo;
mod gamification;
mod harness;
mod isolation;
mod nats_permissions;
mod notifications;
mod people;
mod pipeline;
mod privacy;
mod publishing;
mod scim;
mod sso;
mod webhooks;
