//! The assembler's integration tests: one binary, one module per area.

mod boot;
mod build;
mod containerfile;
mod ext4;
mod hostile;
mod inspect;
mod layers;
mod outputs;
mod registry;
mod s6;
mod support;
