//! The assembler's integration tests: one binary, one module per area.

mod apkcache;
mod apkshim;
mod bases;
mod boot;
mod build;
mod chown;
mod containerfile;
mod ext4;
mod fidelity;
mod hostile;
mod inspect;
mod layers;
mod messages;
mod mounts;
mod nosandbox;
mod onbuild;
mod outputs;
mod registry;
mod s6;
mod support;
