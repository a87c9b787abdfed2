//! The GitLab side of the pipeline, checked without a GitLab: the `ci/` scripts run on
//! sample files in temporary directories, every template and example `.gitlab-ci.yml` is
//! parsed and its keys checked against GitLab's keywords, and `gitlab-ci-local` (installed
//! by ci/setup) resolves and runs the example projects.

mod bump_apkbuild;
mod bump_containerfile;
mod bump_manifest;
mod ci_test;
mod dependencies;
mod deploy;
mod downstream;
mod e2e;
mod gitlab_api;
mod gitlab_ci_local;
mod properties;
mod quickstart;
mod setup;
mod shellcheck;
mod support;
mod yaml;
