//! The assembler's integration tests: one binary, one module per area.

mod apkcache;
mod build;
mod chown;
mod containerfile;
mod hostile;
mod layers;
mod nosandbox;
mod outputs;
mod registry;
mod s6;
mod support;
