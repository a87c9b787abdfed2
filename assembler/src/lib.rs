//! The engine behind `assemble`: a Containerfile becomes an image in a local store of
//! content-addressed snapshots, one per RUN/COPY/ADD, exported as OCI or Docker images.
//!
//! - [`containerfile`]: the Containerfile syntax; [`dockerignore`]: what COPY, ADD and context
//!   bind mounts leave out (`.containerignore`, `.dockerignore`, `--exclude`).
//! - [`apkcmd`]: apk's commands carried out natively on a step's root; [`apkshim`]: the
//!   static `/sbin/apk` that reaches them from RUN steps of images without apk.
//! - [`store`]: snapshots, tags, the step cache and logs on disk; [`bases`]: bases extracted
//!   once into it, the lower directories of [`overlay`]'s copy-on-write build roots.
//! - [`layer`]: scanning a root, writing what changed as a layer, applying and squashing layers.
//! - [`sandbox`]: running commands inside an image root (bubblewrap).
//! - [`config`]: the image config and its OCI JSON.
//! - [`fsimage`]: ext4 and squashfs filesystems of an image's root, for VMs.
//! - [`init`]: `--init s6`, the supervised main service and `/init` as entrypoint.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod apkcmd;
pub mod apkshim;
pub mod bases;
pub mod build;
pub mod cli;
pub mod commands;
pub mod config;
pub mod containerfile;
pub mod dockerignore;
pub mod export;
pub mod fsimage;
pub mod init;
pub mod layer;
mod oci;
pub mod overlay;
pub mod packages;
pub mod program;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod sandbox;
pub mod store;
