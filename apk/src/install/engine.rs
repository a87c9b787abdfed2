//! The transaction: world change → resolution → fetch and verify → extract → database.

use std::path::Path;

use super::{InstallError, InstallOptions, InstallReport};
use crate::dep::Dependency;

/// What the caller asks for.
pub(super) enum Change<'a> {
    Add(&'a [Dependency]),
    Del(&'a [String]),
}

pub(super) fn run(
    _root: &Path,
    _change: Change<'_>,
    _opts: &InstallOptions,
) -> Result<InstallReport, InstallError> {
    Ok(InstallReport::default())
}
