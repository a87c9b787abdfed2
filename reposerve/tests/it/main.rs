//! Integration tests of the real `reposerve` binary on 127.0.0.1.

mod auth;
mod cli;
mod crash;
mod deploy;
mod operate;
mod s3;
mod support;
mod tls;
mod upload;
