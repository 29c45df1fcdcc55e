//! Subcommands of `polyvision-edge` that are more than a few lines.

pub(crate) mod track;
