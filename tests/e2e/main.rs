//! End-to-end tests of the whole system: real nats-server, real databases (SQLite and
//! PostgreSQL), the network simulator, every service, driven through the gateway's API.

mod bad_input;
mod content;
mod crash;
mod harness;
mod pipeline;
