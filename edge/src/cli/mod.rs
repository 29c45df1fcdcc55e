//! Subcommands of `polyvision-edge` that are more than a few lines.

pub(crate) mod demo;
pub(crate) mod detect;
pub(crate) mod process;
pub(crate) mod recording;
pub(crate) mod store;
pub(crate) mod track;
