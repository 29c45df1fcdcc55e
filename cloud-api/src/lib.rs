//! The cloud service (axum).
//!
//! It will own device enrolment and authentication, batch ingest into ClickHouse, and the
//! coaches' API and web page, every query scoped by the organisation in the caller's token.
//!
//! Nothing is implemented yet: the crate exists so that the workspace has its final shape.
#![forbid(unsafe_code)]
