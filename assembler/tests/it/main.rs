//! The assembler's integration tests: one binary, one module per area.

mod boot;
mod build;
mod containerfile;
mod ext4;
mod inspect;
mod outputs;
mod registry;
mod support;
