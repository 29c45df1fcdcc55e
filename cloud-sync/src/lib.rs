//! The path from the rig to the cloud, as the rig sees it.
//!
//! It will own the batch wire format shared by the edge and the cloud, device identity
//! (Ed25519 keys, challenge–response) on the client side, and the resilient uploader that deletes
//! buffered rows only after the cloud acknowledged them.
//!
//! Nothing is implemented yet: the crate exists so that the workspace has its final shape.
#![forbid(unsafe_code)]
