//! The path from the rig to the cloud, as the rig sees it.
//!
//! This crate owns the batch wire format shared by the edge and the cloud ([`wire`]), the
//! match summary the rig sends when a match ends ([`summary`]), the device's identity and the
//! messages of its challenge–response ([`identity`], [`protocol`]), and the resilient uploader
//! that marks buffered rows synced only after the cloud acknowledged them ([`uploader`]).
#![forbid(unsafe_code)]

pub mod identity;
pub mod protocol;
pub mod summary;
pub mod uploader;
pub mod wire;
